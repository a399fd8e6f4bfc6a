#!/usr/bin/env bash
# A real Kubernetes control plane for the tests: etcd, kube-apiserver and
# kube-controller-manager, built from their Go modules (tests/kube/go.mod) and
# run on loopback. No kubelet, no scheduler, no containers: objects are stored,
# validated, admitted and authorized exactly as in a cluster, and the
# controllers that need no nodes run (see "controller-manager" below).
#
#   kube.sh build       build the binaries (and helm) into $TOOLS_CACHE_DIR
#                       unless already there
#   kube.sh up          build if needed, start etcd, kube-apiserver and
#                       kube-controller-manager; no-op when already healthy
#   kube.sh down        stop them (state is kept: the next up reuses it)
#   kube.sh reset       down, then delete the etcd data and certificates
#   kube.sh status      one line; exit 0 running, 3 stopped, 1 partly running
#   kube.sh env         `export` lines: KUBECONFIG, KUBE_APISERVER, KUBECTL, HELM
#   kube.sh kubeconfig  print the admin kubeconfig's path
#
# Settings (tests/stack/env.sh): KUBE_VERSION, ETCD_VERSION, HELM_VERSION,
# KUBE_APISERVER_PORT, ETCD_CLIENT_PORT, ETCD_PEER_PORT,
# KUBE_CONTROLLER_MANAGER_PORT. Here only:
#   KUBE_CONTROLLER_MANAGER=0   do not run kube-controller-manager (see below)
#   KUBE_SERVICE_CIDR           virtual Service IP range (default 10.96.0.0/16;
#                               never routed: nothing here runs kube-proxy)
#   KUBE_WAIT_TIMEOUT           seconds to wait for each component (180)
#
# What runs without a controller-manager, and why we run one:
#   * kube-apiserver alone stores and serves every object, runs admission and
#     RBAC, and bootstraps the default RBAC roles, the `default`, `kube-system`
#     and `kube-public` namespaces and the `kubernetes` Service.
#   * Deleting a namespace only marks it Terminating: the namespace controller
#     (in kube-controller-manager) empties it and removes the finalizer.
#   * Garbage collection (ownerReferences, foreground/background cascading
#     deletion) is the garbage-collector controller's job.
#   * A Deployment gets ReplicaSets and Pods only from the deployment and
#     replicaset controllers. Pods stay Pending here (no scheduler, no kubelet).
#   * The `default` ServiceAccount of each namespace and the kube-root-ca.crt
#     ConfigMap come from the serviceaccount and root-ca-publisher controllers;
#     the ServiceAccount admission plugin rejects a Pod whose ServiceAccount
#     does not exist, so without them no Pod can be created.
# kube-controller-manager gives all of that for little (see tests/kube/README.md
# for the measured cost), so it runs by default. With KUBE_CONTROLLER_MANAGER=0
# it does not, and the ServiceAccount admission plugin is disabled instead, so
# Pods (and workloads' pod templates, which are not admitted as Pods anyway)
# can still be created.
set -euo pipefail

# shellcheck source=tests/stack/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

: "${KUBE_CONTROLLER_MANAGER:=1}"
: "${KUBE_SERVICE_CIDR:=10.96.0.0/16}"
: "${KUBE_WAIT_TIMEOUT:=180}"

KUBE_MODULE_DIR="$STACK_REPO_ROOT/tests/kube"
HELM_MODULE_DIR="$STACK_REPO_ROOT/tests/kube/helm"
KUBE_BIN_DIR="$TOOLS_CACHE_DIR/kube/$KUBE_VERSION"
HELM_BIN_DIR="$TOOLS_CACHE_DIR/helm/$HELM_VERSION"
KUBE_STATE_DIR="$STACK_DIR/kube"
KUBE_PKI_DIR="$KUBE_STATE_DIR/pki"
KUBE_KUBECONFIG="$KUBE_STATE_DIR/kubeconfig"
KUBE_KCM_KUBECONFIG="$KUBE_STATE_DIR/controller-manager.kubeconfig"
KUBE_TOKEN_FILE="$KUBE_PKI_DIR/tokens.csv"
ETCD_DATA_DIR="$STACK_DIR/etcd"
KUBE_APISERVER_URL="https://$STACK_HOST:$KUBE_APISERVER_PORT"
ETCD_URL="http://$STACK_HOST:$ETCD_CLIENT_PORT"

# Binaries built from tests/kube: name -> main package.
KUBE_BINARIES=(
  "kube-apiserver=k8s.io/kubernetes/cmd/kube-apiserver"
  "kube-controller-manager=k8s.io/kubernetes/cmd/kube-controller-manager"
  "kubectl=k8s.io/kubernetes/cmd/kubectl"
  # etcd's main package is the root of the server module (main.go calling
  # etcdmain.Main), the same binary etcd's own release builds.
  "etcd=go.etcd.io/etcd/server/v3"
)

# ----------------------------------------------------------------- build

kube_go() {
  if ! command -v go >/dev/null 2>&1 && [[ -x /usr/local/go/bin/go ]]; then
    PATH="/usr/local/go/bin:$PATH"
  fi
  require_cmd kube go
  # GOFLAGS from the caller's environment (e.g. -mod=mod) must not rewrite the
  # pinned go.mod; -buildvcs=false because the module is not its own repository.
  GOFLAGS="-mod=readonly -buildvcs=false" go "$@"
}

# kube_check_pins : the versions env.sh names must be the ones go.mod pins.
kube_check_pins() {
  grep -qE "^\s*(require\s+)?k8s\.io/kubernetes $KUBE_VERSION\b" "$KUBE_MODULE_DIR/go.mod" ||
    die kube "KUBE_VERSION=$KUBE_VERSION but tests/kube/go.mod pins another k8s.io/kubernetes"
  grep -qE "^\s*(require\s+)?go\.etcd\.io/etcd/server/v3 $ETCD_VERSION\b" "$KUBE_MODULE_DIR/go.mod" ||
    die kube "ETCD_VERSION=$ETCD_VERSION but tests/kube/go.mod pins another go.etcd.io/etcd/server/v3"
  grep -qE "^\s*(require\s+)?helm\.sh/helm/v3 $HELM_VERSION\b" "$HELM_MODULE_DIR/go.mod" ||
    die kube "HELM_VERSION=$HELM_VERSION but tests/kube/helm/go.mod pins another helm.sh/helm/v3"
}

# kube_module_info MODULE@VERSION FIELD : a field (Hash or Time) of the
# module's proxy .info, which the module cache keeps; empty when unknown.
kube_module_info() {
  local info
  info=$(cd "$KUBE_MODULE_DIR" && kube_go mod download -json "$1" 2>/dev/null |
    sed -n 's/^[[:space:]]*"Info": "\(.*\)",\{0,1\}$/\1/p') || true
  [[ -n $info && -f $info ]] || return 0
  tr -d '\n' <"$info" | sed -n "s/.*\"$2\": *\"\([^\"]*\)\".*/\1/p"
}

# kube_ldflags : strip symbols, and stamp the release's version into the
# binaries as the Kubernetes release build does (hack/lib/version.sh sets the
# same variables). Without it the API server reports v0.0.0-master to clients,
# and helm's kubeVersion checks and kubectl's skew warnings misfire.
kube_ldflags() {
  local v=${KUBE_VERSION#v} major minor commit date pkg flags="-s -w"
  major=${v%%.*}
  minor=${v#*.}
  minor=${minor%%.*}
  commit=$(kube_module_info "k8s.io/kubernetes@$KUBE_VERSION" Hash)
  date=$(kube_module_info "k8s.io/kubernetes@$KUBE_VERSION" Time)
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    flags+=" -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
    flags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=${date:-1970-01-01T00:00:00Z}"
    [[ -n $commit ]] && flags+=" -X $pkg.gitCommit=$commit"
  done
  printf '%s' "$flags"
}

# helm_ldflags : as helm's Makefile: its version, and the Kubernetes minor
# version its client libraries speak (the default .Capabilities.KubeVersion of
# `helm template`, and what `helm lint` checks deprecations against).
helm_ldflags() {
  local kv major minor
  kv=$(cd "$HELM_MODULE_DIR" && kube_go list -m -f '{{.Version}}' k8s.io/client-go)
  kv=${kv#v}
  major=$((${kv%%.*} + 1))
  minor=${kv#*.}
  minor=${minor%%.*}
  printf '%s' "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION \
-X helm.sh/helm/v3/internal/version.gitTreeState=clean \
-X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=$major -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$minor \
-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=$major -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$minor"
}

# kube_build_one MODULE_DIR OUT_DIR NAME PACKAGE LDFLAGS : build PACKAGE into
# OUT_DIR/NAME unless the binary there was built from the same go.mod, go.sum
# and flags (OUT_DIR/NAME.key). Appends the wall time to OUT_DIR/build-times.log.
kube_build_one() {
  local moddir=$1 out=$2 name=$3 pkg=$4 ldflags=$5 key start secs
  key=$(cat "$moddir/go.mod" "$moddir/go.sum" <(printf '%s\n%s\n' "$pkg" "$ldflags") | sha256sum | cut -d' ' -f1)
  if [[ -x $out/$name && -f $out/$name.key && $(<"$out/$name.key") == "$key" ]]; then
    return 0
  fi
  log kube "building $name ($pkg) into $out; a cold build takes many minutes"
  start=$SECONDS
  (cd "$moddir" && kube_go build -trimpath -ldflags="$ldflags" -o "$out/$name.tmp" "$pkg") ||
    die kube "go build $pkg failed"
  mv -f "$out/$name.tmp" "$out/$name"
  printf '%s\n' "$key" >"$out/$name.key"
  secs=$((SECONDS - start))
  printf '%s %s %ss nproc=%s go=%s\n' "$(date -Is)" "$name" "$secs" "$(nproc)" \
    "$(kube_go env GOVERSION)" >>"$out/build-times.log"
  log kube "built $name in ${secs}s"
}

kube_build() {
  kube_check_pins
  mkdir -p "$KUBE_BIN_DIR" "$HELM_BIN_DIR"
  # One build at a time per cache (parallel stack runs share it).
  exec 9>"$TOOLS_CACHE_DIR/kube/.build.lock"
  flock 9
  local entry ldflags=""
  for entry in "${KUBE_BINARIES[@]}"; do
    local name=${entry%%=*} pkg=${entry#*=}
    if [[ $name == kube* && -z $ldflags ]]; then ldflags=$(kube_ldflags); fi
    if [[ $name == kube* ]]; then
      kube_build_one "$KUBE_MODULE_DIR" "$KUBE_BIN_DIR" "$name" "$pkg" "$ldflags"
    else
      kube_build_one "$KUBE_MODULE_DIR" "$KUBE_BIN_DIR" "$name" "$pkg" "-s -w"
    fi
  done
  kube_build_one "$HELM_MODULE_DIR" "$HELM_BIN_DIR" helm helm.sh/helm/v3/cmd/helm "$(helm_ldflags)"
  exec 9>&-
}

# kube_have_binaries : true when every binary is built (no rebuild check).
kube_have_binaries() {
  local entry
  for entry in "${KUBE_BINARIES[@]}"; do
    [[ -x $KUBE_BIN_DIR/${entry%%=*} ]] || return 1
  done
  [[ -x $HELM_BIN_DIR/helm ]]
}

# ------------------------------------------------------------------ pki

# kube_pki : once per state directory: a CA, the API server's serving
# certificate, the ServiceAccount token signing key pair, the static tokens and
# the kubeconfigs. No front-proxy (requestheader) CA: that only authenticates
# aggregated API servers, and the stack runs none.
kube_pki() {
  require_cmd kube openssl
  mkdir -p "$KUBE_PKI_DIR"
  chmod 0700 "$KUBE_STATE_DIR" "$KUBE_PKI_DIR" 2>/dev/null || true
  local d=$KUBE_PKI_DIR
  (
    umask 077
    if [[ ! -s $d/ca.crt || ! -s $d/ca.key ]]; then
      openssl req -x509 -new -nodes -newkey rsa:2048 -sha256 -days 3650 \
        -keyout "$d/ca.key" -out "$d/ca.crt" -subj "/CN=maestro-operator-stack-ca" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,digitalSignature,keyCertSign,cRLSign" 2>/dev/null
      rm -f "$d/apiserver.crt"
    fi
    if [[ ! -s $d/apiserver.crt || ! -s $d/apiserver.key ]]; then
      # The first address of the Service range is the `kubernetes` Service's
      # ClusterIP: in the SANs as a real cluster's certificate has it.
      local svc_ip
      svc_ip=$(kube_first_service_ip)
      openssl req -new -nodes -newkey rsa:2048 -sha256 -keyout "$d/apiserver.key" \
        -out "$d/apiserver.csr" -subj "/CN=kube-apiserver" 2>/dev/null
      printf '%s\n' \
        "basicConstraints=critical,CA:FALSE" \
        "keyUsage=critical,digitalSignature,keyEncipherment" \
        "extendedKeyUsage=serverAuth" \
        "subjectAltName=IP:127.0.0.1,IP:$STACK_HOST,IP:$svc_ip,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local" \
        >"$d/apiserver.ext"
      openssl x509 -req -sha256 -days 3650 -in "$d/apiserver.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" \
        -CAcreateserial -out "$d/apiserver.crt" -extfile "$d/apiserver.ext" 2>/dev/null
      rm -f "$d/apiserver.csr"
    fi
    if [[ ! -s $d/sa.key || ! -s $d/sa.pub ]]; then
      openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$d/sa.key" 2>/dev/null
      openssl pkey -in "$d/sa.key" -pubout -out "$d/sa.pub"
    fi
    [[ -s $d/admin.token ]] || openssl rand -hex 32 >"$d/admin.token"
    [[ -s $d/controller-manager.token ]] || openssl rand -hex 32 >"$d/controller-manager.token"
    # Static tokens (token,user,uid,"groups"). admin is in system:masters,
    # which the RBAC bootstrap binds to cluster-admin (and which bypasses
    # authorization). The controller-manager authenticates as
    # system:kube-controller-manager, which the bootstrap policy grants what it
    # needs to mint a token per controller (--use-service-account-credentials).
    printf '%s,admin,admin,"system:masters"\n%s,system:kube-controller-manager,system:kube-controller-manager\n' \
      "$(<"$d/admin.token")" "$(<"$d/controller-manager.token")" >"$KUBE_TOKEN_FILE"
    kube_write_kubeconfig "$KUBE_KUBECONFIG" admin "$(<"$d/admin.token")"
    kube_write_kubeconfig "$KUBE_KCM_KUBECONFIG" system:kube-controller-manager "$(<"$d/controller-manager.token")"
  )
}

# kube_first_service_ip : the first host address of KUBE_SERVICE_CIDR (IPv4).
kube_first_service_ip() {
  local net=${KUBE_SERVICE_CIDR%/*} a b c e
  IFS=. read -r a b c e <<<"$net"
  printf '%s.%s.%s.%s' "$a" "$b" "$c" "$((e + 1))"
}

# kube_write_kubeconfig FILE USER TOKEN
kube_write_kubeconfig() {
  local file=$1 user=$2 token=$3 ca
  ca=$(base64 -w0 <"$KUBE_PKI_DIR/ca.crt")
  cat >"$file.tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: maestro-stack
  cluster:
    server: $KUBE_APISERVER_URL
    certificate-authority-data: $ca
users:
- name: $user
  user:
    token: $token
contexts:
- name: maestro-stack
  context:
    cluster: maestro-stack
    user: $user
    namespace: default
current-context: maestro-stack
EOF
  mv -f "$file.tmp" "$file"
}

# --------------------------------------------------------------- waiting

# kube_wait WHO TIMEOUT PIDNAME CMD... : run CMD until it succeeds; fail with
# the log's tail when PIDNAME dies or TIMEOUT passes.
kube_wait() {
  local who=$1 timeout=$2 pidname=$3
  shift 3
  local deadline=$((SECONDS + timeout)) logfile
  logfile=$(proc_logfile "$pidname")
  until "$@" >/dev/null 2>&1; do
    if ! proc_alive "$pidname"; then
      tail_log "$logfile" 40
      die "$who" "$pidname exited; see $logfile"
    fi
    if ((SECONDS >= deadline)); then
      tail_log "$logfile" 40
      die "$who" "not ready after ${timeout}s: $*; see $logfile"
    fi
    sleep 0.5
  done
}

# kube_api PATH : GET PATH from the API server as admin; fails unless 200.
kube_api() {
  curl -sf --max-time 5 --cacert "$KUBE_PKI_DIR/ca.crt" \
    -H "Authorization: Bearer $(<"$KUBE_PKI_DIR/admin.token")" "$KUBE_APISERVER_URL$1"
}

kube_etcd_healthy() {
  local body
  body=$(curl -sf --max-time 5 "$ETCD_URL/health") && [[ $body == *'"health":"true"'* ]]
}
kube_apiserver_ready() { [[ -f $KUBE_PKI_DIR/admin.token ]] && kube_api /readyz >/dev/null; }
# kube_apiserver_usable : ready, and the bootstrap RBAC roles tests need are
# there (/readyz waits for the RBAC bootstrap hook, not for the roles).
kube_apiserver_usable() {
  kube_apiserver_ready && kube_api /apis/rbac.authorization.k8s.io/v1/clusterroles/cluster-admin >/dev/null
}
# kube_apiserver_shutting_down : it served (its log since its start says so)
# but its port is closed: a SIGTERMed API server stops listening at once, then
# drains its watches for up to 60 s before it exits.
kube_apiserver_shutting_down() {
  ! port_open "$STACK_HOST" "$KUBE_APISERVER_PORT" &&
    proc_log_since_start kube-apiserver | grep -F 'Serving securely on' >/dev/null
}
kube_kcm_healthy() {
  # Serves on a self-signed certificate it makes in memory; /healthz is one of
  # its always-allowed paths.
  curl -skf --max-time 5 "https://$STACK_HOST:$KUBE_CONTROLLER_MANAGER_PORT/healthz" >/dev/null
}
# kube_kcm_ready : healthy, and the serviceaccount controller has run (Pods in
# `default` need its `default` ServiceAccount).
kube_kcm_ready() {
  kube_kcm_healthy && kube_api /api/v1/namespaces/default/serviceaccounts/default >/dev/null
}

# kube_port_free WHO PORT PIDNAME : fail when PORT is taken by anything but ours.
kube_port_free() {
  if ! proc_alive "$3" && port_open "$STACK_HOST" "$2"; then
    die "$1" "$STACK_HOST:$2 is already in use by another process"
  fi
}

# ----------------------------------------------------------- components

kube_start_etcd() {
  if proc_adopt etcd "$KUBE_WAIT_TIMEOUT" TERM - kube_etcd_healthy; then
    log etcd "healthy (pid $(proc_pid etcd))"
    return 0
  fi
  kube_port_free etcd "$ETCD_CLIENT_PORT" etcd
  kube_port_free etcd "$ETCD_PEER_PORT" etcd
  mkdir -p "$ETCD_DATA_DIR"
  chmod 0700 "$ETCD_DATA_DIR"
  log etcd "starting on $ETCD_URL (data $ETCD_DATA_DIR)"
  # One member, plain HTTP on loopback only. --unsafe-no-fsync: the data is
  # disposable test state, and fsync per write is what makes etcd (and so
  # every API write) slow on a shared disk; a crash may lose the last writes.
  # etcd reads every ETCD_* environment variable as a flag (env.sh exports
  # ETCD_VERSION, ETCD_CLIENT_PORT, ...): start it without them.
  local unset_etcd=() v
  for v in $(compgen -e); do
    [[ $v == ETCD_* ]] && unset_etcd+=(-u "$v")
  done
  proc_start etcd env "${unset_etcd[@]}" "$KUBE_BIN_DIR/etcd" \
    --name=stack \
    --data-dir="$ETCD_DATA_DIR" \
    --listen-client-urls="$ETCD_URL" \
    --advertise-client-urls="$ETCD_URL" \
    --listen-peer-urls="http://$STACK_HOST:$ETCD_PEER_PORT" \
    --initial-advertise-peer-urls="http://$STACK_HOST:$ETCD_PEER_PORT" \
    --initial-cluster="stack=http://$STACK_HOST:$ETCD_PEER_PORT" \
    --initial-cluster-state=new \
    --unsafe-no-fsync \
    --log-level=warn
  kube_wait etcd "$KUBE_WAIT_TIMEOUT" etcd kube_etcd_healthy
  log etcd "healthy"
}

kube_start_apiserver() {
  # A second SIGTERM makes a shutting-down API server exit at once.
  if proc_adopt kube-apiserver "$KUBE_WAIT_TIMEOUT" TERM kube_apiserver_shutting_down kube_apiserver_usable; then
    log kube-apiserver "ready (pid $(proc_pid kube-apiserver))"
    return 0
  fi
  kube_port_free kube-apiserver "$KUBE_APISERVER_PORT" kube-apiserver
  local d=$KUBE_PKI_DIR extra=()
  if [[ $KUBE_CONTROLLER_MANAGER == 0 ]]; then
    # No serviceaccount controller makes `default` ServiceAccounts, and this
    # plugin rejects Pods whose ServiceAccount is missing.
    extra+=(--disable-admission-plugins=ServiceAccount)
  fi
  log kube-apiserver "starting on $KUBE_APISERVER_URL"
  # Flags, and why:
  #   --etcd-servers                  the etcd above (the only storage)
  #   --bind-address/--secure-port    HTTPS on loopback only
  #   --advertise-address             the address the `kubernetes` Service's
  #                                   endpoints name; loopback: nothing else
  #   --endpoint-reconciler-type=none ...but Endpoints may not hold a loopback
  #                                   address, so the reconciler that writes
  #                                   them would only log errors: off. The
  #                                   `kubernetes` Service exists, endpointless.
  #   --tls-cert-file/-private-key    serving certificate signed by our CA
  #   --client-ca-file                x509 client certificates from our CA
  #                                   authenticate too (CN=user, O=group)
  #   --token-auth-file               static bearer tokens (admin, controller-manager)
  #   --authorization-mode=Node,RBAC  real authorization, as in production
  #   --service-account-issuer/...    required: signs and verifies ServiceAccount
  #     -key-file/-signing-key-file   tokens (TokenRequest, `kubectl create token`)
  #   --service-cluster-ip-range      required: allocates Services' ClusterIPs
  #   --cert-dir                      where it would write any self-made cert
  #                                   (not /var/run/kubernetes)
  #   --profiling=false               no /debug/pprof
  proc_start kube-apiserver "$KUBE_BIN_DIR/kube-apiserver" \
    --etcd-servers="$ETCD_URL" \
    --bind-address="$STACK_HOST" \
    --secure-port="$KUBE_APISERVER_PORT" \
    --advertise-address="$STACK_HOST" \
    --endpoint-reconciler-type=none \
    --tls-cert-file="$d/apiserver.crt" \
    --tls-private-key-file="$d/apiserver.key" \
    --client-ca-file="$d/ca.crt" \
    --token-auth-file="$KUBE_TOKEN_FILE" \
    --authorization-mode=Node,RBAC \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$d/sa.pub" \
    --service-account-signing-key-file="$d/sa.key" \
    --service-cluster-ip-range="$KUBE_SERVICE_CIDR" \
    --cert-dir="$d" \
    --profiling=false \
    "${extra[@]}"
  kube_wait kube-apiserver "$KUBE_WAIT_TIMEOUT" kube-apiserver kube_apiserver_usable
  log kube-apiserver "ready"
}

kube_start_controller_manager() {
  [[ $KUBE_CONTROLLER_MANAGER == 0 ]] && return 0
  if proc_adopt kube-controller-manager "$KUBE_WAIT_TIMEOUT" TERM - kube_kcm_ready; then
    log kube-controller-manager "ready (pid $(proc_pid kube-controller-manager))"
    return 0
  fi
  kube_port_free kube-controller-manager "$KUBE_CONTROLLER_MANAGER_PORT" kube-controller-manager
  local d=$KUBE_PKI_DIR
  log kube-controller-manager "starting"
  # Flags, and why:
  #   --kubeconfig, --authentication-/--authorization-kubeconfig
  #                                   its API server identity, and where it
  #                                   checks who calls its own HTTPS port
  #   --authentication-skip-lookup    do not read the requestheader (front-proxy)
  #                                   CA from kube-system: there is none, and
  #                                   looking for it only logs errors
  #   --bind-address/--secure-port    its health/metrics port on loopback
  #   --leader-elect=false            one instance: starts at once
  #   --use-service-account-credentials  each controller acts as its own
  #                                   kube-system ServiceAccount, with the
  #                                   bootstrap RBAC roles (as kubeadm does)
  #   --service-account-private-key-file  fills in token Secrets of type
  #                                   kubernetes.io/service-account-token
  #   --root-ca-file                  published as kube-root-ca.crt per namespace
  #   --cluster-signing-*             signs approved CertificateSigningRequests
  #   --service-cluster-ip-range      for the ServiceCIDR controller
  proc_start kube-controller-manager "$KUBE_BIN_DIR/kube-controller-manager" \
    --kubeconfig="$KUBE_KCM_KUBECONFIG" \
    --authentication-kubeconfig="$KUBE_KCM_KUBECONFIG" \
    --authorization-kubeconfig="$KUBE_KCM_KUBECONFIG" \
    --authentication-skip-lookup=true \
    --bind-address="$STACK_HOST" \
    --secure-port="$KUBE_CONTROLLER_MANAGER_PORT" \
    --leader-elect=false \
    --use-service-account-credentials=true \
    --service-account-private-key-file="$d/sa.key" \
    --root-ca-file="$d/ca.crt" \
    --cluster-signing-cert-file="$d/ca.crt" \
    --cluster-signing-key-file="$d/ca.key" \
    --service-cluster-ip-range="$KUBE_SERVICE_CIDR" \
    --profiling=false
  kube_wait kube-controller-manager "$KUBE_WAIT_TIMEOUT" kube-controller-manager kube_kcm_ready
  log kube-controller-manager "ready"
}

# kube_healthy : every component runs and answers its readiness check.
kube_healthy() {
  proc_alive etcd && proc_alive kube-apiserver && kube_etcd_healthy && kube_apiserver_usable &&
    { [[ $KUBE_CONTROLLER_MANAGER == 0 ]] || { proc_alive kube-controller-manager && kube_kcm_healthy; }; }
}

# ------------------------------------------------------------- commands

# kube_close_inherited_fds : close every descriptor above 2 this script got
# from its caller (bash keeps the script itself on 255), so the daemons do not
# inherit them: a caller's lock file (flock) would otherwise stay locked for as
# long as etcd or the API server runs.
kube_close_inherited_fds() {
  local fd
  for fd in "/proc/$$/fd/"*; do
    fd=${fd##*/}
    if [[ $fd =~ ^[0-9]+$ ]] && ((fd > 2 && fd != 255)); then
      eval "exec $fd>&-" 2>/dev/null || true
    fi
  done
}

kube_up() {
  if kube_healthy; then
    log kube "already running at $KUBE_APISERVER_URL"
    return 0
  fi
  kube_close_inherited_fds
  require_cmd kube curl openssl flock
  kube_have_binaries || log kube "binaries not built yet: building (cold: tens of minutes on 2 cores)"
  kube_build
  ensure_stack_dirs
  kube_pki
  kube_start_etcd
  kube_start_apiserver
  kube_start_controller_manager
  log kube "up: KUBECONFIG=$KUBE_KUBECONFIG"
}

kube_down() {
  # Reverse order; the API server drains requests on SIGTERM.
  local name
  for name in kube-controller-manager kube-apiserver etcd; do
    if proc_alive "$name"; then
      log "$name" "stopping"
      proc_stop "$name" TERM 60
    fi
  done
}

kube_reset() {
  kube_down
  log kube "deleting $ETCD_DATA_DIR and $KUBE_STATE_DIR"
  rm -rf "$ETCD_DATA_DIR" "$KUBE_STATE_DIR"
}

kube_status() {
  local name up=0 total=0 parts=()
  local names=(etcd kube-apiserver)
  [[ $KUBE_CONTROLLER_MANAGER == 0 ]] || names+=(kube-controller-manager)
  local -A check=([etcd]=kube_etcd_healthy [kube-apiserver]=kube_apiserver_ready [kube-controller-manager]=kube_kcm_healthy)
  local alive=0 pid
  for name in "${names[@]}"; do
    total=$((total + 1))
    if pid=$(proc_pid "$name"); then
      alive=$((alive + 1))
      if "${check[$name]}"; then
        up=$((up + 1))
        parts+=("$name=$pid")
      else
        parts+=("$name=$pid(not ready)")
      fi
    else
      parts+=("$name=stopped")
    fi
  done
  if ((up == total)); then
    echo "kube: running at $KUBE_APISERVER_URL (${parts[*]})"
    return 0
  elif ((alive == 0)); then
    echo "kube: stopped"
    return 3
  fi
  echo "kube: degraded (${parts[*]})"
  return 1
}

kube_env() {
  printf 'export KUBECONFIG=%q\n' "$KUBE_KUBECONFIG"
  printf 'export KUBE_APISERVER=%q\n' "$KUBE_APISERVER_URL"
  printf 'export KUBECTL=%q\n' "$KUBE_BIN_DIR/kubectl"
  printf 'export HELM=%q\n' "$HELM_BIN_DIR/helm"
}

kube_kubeconfig() { printf '%s\n' "$KUBE_KUBECONFIG"; }

component_main kube "$@"
