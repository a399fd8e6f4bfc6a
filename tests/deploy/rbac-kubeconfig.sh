#!/usr/bin/env bash
# Writes a kubeconfig that authenticates as the chart's ServiceAccount, so
# the operator (or a test) runs with exactly the permissions the chart
# grants: real RBAC authorization by the API server, no admin rights.
#
#   rbac-kubeconfig.sh -n NAMESPACE [-r RELEASE | -s SERVICEACCOUNT] [-d DURATION] -o FILE
#
#   -n  the release's namespace
#   -r  the Helm release (default maestro-operator): its Deployment names the
#       ServiceAccount; or
#   -s  the ServiceAccount itself
#   -d  token lifetime (default 2h; the API server may cap it)
#   -o  where to write the kubeconfig (mode 0600)
#
# Uses KUBECONFIG (an admin's) to mint the token with the TokenRequest API
# (`kubectl create token`) and copies the cluster's server and CA from it.
#   OPERATOR_KUBECONFIG=$(mktemp) && rbac-kubeconfig.sh -n maestro-system -o "$OPERATOR_KUBECONFIG"
set -euo pipefail
# shellcheck source=tests/deploy/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

namespace="" release="maestro-operator" sa="" duration="2h" out=""
while getopts "n:r:s:d:o:h" opt; do
  case $opt in
  n) namespace=$OPTARG ;;
  r) release=$OPTARG ;;
  s) sa=$OPTARG ;;
  d) duration=$OPTARG ;;
  o) out=$OPTARG ;;
  *) usage_exit 2,17 ;;
  esac
done
[[ -n $namespace ]] || die "-n NAMESPACE is required"
[[ -n $out ]] || die "-o FILE is required"
stack_tools
require_api_server

if [[ -z $sa ]]; then
  sa=$("$KUBECTL" -n "$namespace" get deployment \
    -l "app.kubernetes.io/instance=$release,app.kubernetes.io/component=controller-manager" \
    -o jsonpath='{.items[0].spec.template.spec.serviceAccountName}') ||
    die "cannot read the Deployment of release $release in $namespace"
  [[ -n $sa ]] || die "no Deployment of release $release in $namespace (is the chart installed? use -s SA)"
fi
"$KUBECTL" -n "$namespace" get serviceaccount "$sa" >/dev/null || die "no ServiceAccount $sa in $namespace"

token=$("$KUBECTL" -n "$namespace" create token "$sa" --duration "$duration")
server=$("$KUBECTL" config view --minify --raw -o jsonpath='{.clusters[0].cluster.server}')
ca_data=$("$KUBECTL" config view --minify --raw -o jsonpath='{.clusters[0].cluster.certificate-authority-data}')
if [[ -z $ca_data ]]; then
  ca_file=$("$KUBECTL" config view --minify --raw -o jsonpath='{.clusters[0].cluster.certificate-authority}')
  [[ -n $ca_file && -f $ca_file ]] || die "the current kubeconfig names no CA for $server"
  ca_data=$(base64 -w0 <"$ca_file")
fi

umask 077
tmp="$out.tmp.$$"
cat >"$tmp" <<KUBECONFIG
apiVersion: v1
kind: Config
clusters:
  - name: cluster
    cluster:
      server: $server
      certificate-authority-data: $ca_data
users:
  - name: system:serviceaccount:$namespace:$sa
    user:
      token: $token
contexts:
  - name: $sa@cluster
    context:
      cluster: cluster
      user: system:serviceaccount:$namespace:$sa
      namespace: $namespace
current-context: $sa@cluster
KUBECONFIG
mv "$tmp" "$out"
say "wrote $out: ServiceAccount $namespace/$sa on $server (token valid $duration)"
