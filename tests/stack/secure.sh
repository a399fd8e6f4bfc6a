#!/usr/bin/env bash
# Maestro with its gRPC source server secured, as production runs it: two more
# instances of the stack's Maestro (same binary, same database, so they serve
# the same consumers and agents), each with TLS and one authentication type.
#
#   secure.sh up       certificates, RBAC and tokens, then start both servers
#   secure.sh down | status | env
#
#   maestro-mtls    --grpc-authn-type=mtls: the client certificate's CN is the
#                   user and its O the groups (--grpc-client-ca-file)
#   maestro-token   --grpc-authn-type=token: `authorization: Bearer <token>`,
#                   checked with a TokenReview; REST over HTTPS too, since the
#                   clients never send a token over plaintext
# Both authorize every Publish and Subscribe with a SubjectAccessReview
# against the stack's kube-apiserver: verb pub or sub on the non-resource URL
# /sources/<source ID> (maestro cmd/maestro/server/grpc_server.go and
# pkg/client/grpcauthorizer/kube_authorizer.go at the pinned version). Maestro
# reaches the API server as the ServiceAccount maestro-authorizer, bound to
# the built-in ClusterRole system:auth-delegator.
#
# Several instances on one database is Maestro's own HA layout: an instance
# learns of new resources and status changes through PostgreSQL LISTEN/NOTIFY,
# and the instance whose broker holds a consumer's agent sends it the spec. So
# a work published to a secured instance reaches the stack's agents, and its
# status comes back on the secured instance's Subscribe stream.
#
# What the tests get (under $SECURE_DIR, exported by `env`):
#   pki/ca.crt                          signs the servers' and clients' certificates
#   pki/hyperfleet-client.{crt,key}     CN=hyperfleet-adapter, O=hyperfleet: granted
#   pki/stranger-client.{crt,key}       CN=stranger, O=strangers: no grant
#   pki/rogue-client.{crt,key}          CN=hyperfleet-adapter, O=hyperfleet, but
#                                       signed by another CA (pki/rogue-ca.crt)
#   tokens/hyperfleet-adapter.token     ServiceAccount maestro-secure/hyperfleet-adapter: granted
#   tokens/stranger.token               ServiceAccount maestro-secure/stranger: no grant
# The grant: ClusterRole maestro-secure-source, verbs pub and sub on
# /sources/$SECURE_SOURCE_ID, bound to group hyperfleet and to the
# hyperfleet-adapter ServiceAccount.
#
# Needs maestro.sh up (database, binary) and kube.sh up (authorizer).
set -euo pipefail
# shellcheck source=tests/stack/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

: "${SECURE_SOURCE_ID:=hyperfleet-secure-e2e}"
: "${SECURE_NAMESPACE:=maestro-secure}"
: "${MAESTRO_LOG_VERBOSITY:=2}"
SECURE_DIR="$STACK_DIR/secure"
PKI="$SECURE_DIR/pki"
TOKENS="$SECURE_DIR/tokens"
MAESTRO_BIN="$TOOLS_CACHE_DIR/maestro/$MAESTRO_VERSION/maestro"
# The main instance's database settings (maestro.sh writes them).
DB_SECRETS="$STACK_DIR/maestro/secrets"
AUTHORIZER_KUBECONFIG="$SECURE_DIR/authorizer.kubeconfig"
# Valid as long as a stack plausibly runs; `up` makes new ones when it starts
# the servers.
TOKEN_DURATION=8760h

# instance NAME -> "authn http grpc broker metrics health"
declare -A INSTANCES=(
  [maestro-mtls]="mtls $MAESTRO_MTLS_HTTP_PORT $MAESTRO_MTLS_GRPC_PORT $MAESTRO_MTLS_BROKER_PORT $MAESTRO_MTLS_METRICS_PORT $MAESTRO_MTLS_HEALTH_PORT"
  [maestro-token]="token $MAESTRO_TOKEN_HTTP_PORT $MAESTRO_TOKEN_GRPC_PORT $MAESTRO_TOKEN_BROKER_PORT $MAESTRO_TOKEN_METRICS_PORT $MAESTRO_TOKEN_HEALTH_PORT"
)

# ---------------------------------------------------------------- helpers

_secure_kube_env() {
  local line
  while IFS= read -r line; do
    case $line in
    "export KUBECONFIG="* | "export KUBECTL="* | "export KUBE_APISERVER="*) eval "$line" ;;
    esac
  done < <(bash "$STACK_SCRIPTS_DIR/kube.sh" env)
  [[ -n ${KUBECONFIG:-} && -f $KUBECONFIG ]] || die secure "no kubeconfig from kube.sh env; start kube first (tests/stack/kube.sh up)"
  [[ -n ${KUBECTL:-} && -x $KUBECTL ]] || die secure "no kubectl from kube.sh env (${KUBECTL:-unset})"
}

_kubectl() { "$KUBECTL" --kubeconfig="$KUBECONFIG" "$@"; }

# _secure_cert NAME SUBJECT EXT CA : key and certificate NAME signed by CA
# (a basename in $PKI), unless they exist.
_secure_cert() {
  local name=$1 subject=$2 ext=$3 ca=$4
  [[ -s $PKI/$name.crt && -s $PKI/$name.key ]] && return 0
  openssl req -new -nodes -newkey rsa:2048 -sha256 -keyout "$PKI/$name.key" \
    -subj "$subject" -out "$PKI/$name.csr" 2>/dev/null
  printf '%s\n' "$ext" >"$PKI/$name.ext"
  openssl x509 -req -sha256 -days 3650 -in "$PKI/$name.csr" -CA "$PKI/$ca.crt" -CAkey "$PKI/$ca.key" \
    -CAcreateserial -extfile "$PKI/$name.ext" -out "$PKI/$name.crt" 2>/dev/null
  rm -f "$PKI/$name.csr" "$PKI/$name.ext"
}

_secure_ca() {
  local name=$1 cn=$2
  [[ -s $PKI/$name.crt && -s $PKI/$name.key ]] && return 0
  openssl req -x509 -new -nodes -newkey rsa:2048 -sha256 -days 3650 \
    -keyout "$PKI/$name.key" -subj "/CN=$cn" -out "$PKI/$name.crt" 2>/dev/null
}

_secure_pki() {
  require_cmd secure openssl
  mkdir -p "$PKI"
  chmod 0700 "$SECURE_DIR" "$PKI"
  local client='basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth'
  _secure_ca ca "maestro-operator stack secure CA"
  _secure_ca rogue-ca "a CA Maestro does not trust"
  _secure_cert server "/CN=maestro-secure" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,IP:$STACK_HOST" ca
  _secure_cert hyperfleet-client "/O=hyperfleet/CN=hyperfleet-adapter" "$client" ca
  _secure_cert stranger-client "/O=strangers/CN=stranger" "$client" ca
  _secure_cert rogue-client "/O=hyperfleet/CN=hyperfleet-adapter" "$client" rogue-ca
  chmod 0600 "$PKI"/*.key
}

_secure_rbac() {
  _kubectl apply --server-side --field-manager=maestro-operator-stack -f - >/dev/null <<EOF || die secure "kubectl apply of the RBAC for the secured instances failed"
apiVersion: v1
kind: Namespace
metadata:
  name: $SECURE_NAMESPACE
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: maestro-authorizer
  namespace: $SECURE_NAMESPACE
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: maestro-secure-authorizer
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: system:auth-delegator
subjects:
- kind: ServiceAccount
  name: maestro-authorizer
  namespace: $SECURE_NAMESPACE
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: hyperfleet-adapter
  namespace: $SECURE_NAMESPACE
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: stranger
  namespace: $SECURE_NAMESPACE
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: maestro-secure-source
rules:
- nonResourceURLs: ["/sources/$SECURE_SOURCE_ID"]
  verbs: ["pub", "sub"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: maestro-secure-source
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: maestro-secure-source
subjects:
- kind: Group
  apiGroup: rbac.authorization.k8s.io
  name: hyperfleet
- kind: ServiceAccount
  name: hyperfleet-adapter
  namespace: $SECURE_NAMESPACE
EOF
}

# _secure_token SA FILE : a fresh token of the ServiceAccount into FILE.
_secure_token() {
  local token
  token=$(_kubectl create token "$1" -n "$SECURE_NAMESPACE" --duration="$TOKEN_DURATION") ||
    die secure "kubectl create token $1 failed"
  (umask 077 && printf '%s\n' "$token" >"$2.tmp")
  mv -f "$2.tmp" "$2"
}

_secure_credentials() {
  mkdir -p "$TOKENS"
  chmod 0700 "$TOKENS"
  _secure_token hyperfleet-adapter "$TOKENS/hyperfleet-adapter.token"
  _secure_token stranger "$TOKENS/stranger.token"
  _secure_token maestro-authorizer "$SECURE_DIR/authorizer.token"
  local ca
  ca=$(_kubectl config view --raw --minify -o jsonpath='{.clusters[0].cluster.certificate-authority-data}')
  # tokenFile, not token: client-go re-reads it, so a refreshed token needs
  # no restart.
  (umask 077 && cat >"$AUTHORIZER_KUBECONFIG" <<EOF)
apiVersion: v1
kind: Config
clusters:
- name: maestro-stack
  cluster:
    server: $KUBE_APISERVER
    certificate-authority-data: $ca
users:
- name: maestro-authorizer
  user:
    tokenFile: $SECURE_DIR/authorizer.token
contexts:
- name: maestro-stack
  context: {cluster: maestro-stack, user: maestro-authorizer}
current-context: maestro-stack
EOF
}

_secure_healthy() {
  local name=$1 authn http grpc broker metrics health
  read -r authn http grpc broker metrics health <<<"${INSTANCES[$name]}"
  proc_alive "$name" && [[ $(http_code "http://$STACK_HOST:$health/healthcheck") == 200 ]] &&
    port_open "$STACK_HOST" "$grpc"
}

_secure_start() {
  local name=$1 authn http grpc broker metrics health port extra=()
  read -r authn http grpc broker metrics health <<<"${INSTANCES[$name]}"
  proc_alive "$name" && return 0
  for port in "$http" "$grpc" "$broker" "$metrics" "$health"; do
    port_open "$STACK_HOST" "$port" && die secure "$STACK_HOST:$port ($name) is already taken by a process this stack did not start"
  done
  [[ $authn == mtls ]] && extra+=("--grpc-client-ca-file=$PKI/ca.crt")
  # A bearer token must not cross plaintext: the token instance serves its
  # REST API over HTTPS too (the clients refuse http:// with a token).
  [[ $authn == token ]] && extra+=(--enable-https "--https-cert-file=$PKI/server.crt" "--https-key-file=$PKI/server.key")
  log secure "starting $name (--grpc-authn-type=$authn, gRPC on $STACK_HOST:$grpc; log: $(proc_logfile "$name"))"
  MAESTRO_ENV=development proc_start "$name" "$MAESTRO_BIN" server \
    --server-hostname="$STACK_HOST" \
    --http-server-bindport="$http" \
    --enable-grpc-server=true \
    --grpc-server-bindport="$grpc" \
    --grpc-tls-cert-file="$PKI/server.crt" \
    --grpc-tls-key-file="$PKI/server.key" \
    --grpc-authn-type="$authn" \
    --grpc-authorizer-config="$AUTHORIZER_KUBECONFIG" \
    "${extra[@]}" \
    --message-broker-type=grpc \
    --grpc-broker-bindport="$broker" \
    --metrics-server-bindport="$metrics" \
    --health-check-server-bindport="$health" \
    "--db-host-file=$DB_SECRETS/db.host" \
    "--db-port-file=$DB_SECRETS/db.port" \
    "--db-name-file=$DB_SECRETS/db.name" \
    "--db-user-file=$DB_SECRETS/db.user" \
    "--db-password-file=$DB_SECRETS/db.password" \
    --db-sslmode=disable \
    --v="$MAESTRO_LOG_VERBOSITY"
}

_secure_wait() {
  local name=$1 authn http grpc broker metrics health logfile
  read -r authn http grpc broker metrics health <<<"${INSTANCES[$name]}"
  logfile=$(proc_logfile "$name")
  wait_for_port secure "$STACK_HOST" "$grpc" "$STACK_WAIT_TIMEOUT" "$logfile" "$name"
  wait_for_http secure "http://$STACK_HOST:$health/healthcheck" "$STACK_WAIT_TIMEOUT" "$logfile" "$name"
}

# -------------------------------------------------------------- lifecycle

secure_up() {
  local name all=1 t0=$SECONDS
  for name in "${!INSTANCES[@]}"; do
    _secure_healthy "$name" || all=0
  done
  if ((all)); then
    log secure "already running"
    return 0
  fi
  [[ -x $MAESTRO_BIN && -s $DB_SECRETS/db.password ]] ||
    die secure "Maestro is not set up; start it first: tests/stack/maestro.sh up (or tests/stack/stack.sh up)"
  # Right after a database restart Maestro is running but not yet healthy
  # again (its health check pings the database): give it time.
  local deadline=$((SECONDS + 60))
  until "$STACK_SCRIPTS_DIR/maestro.sh" status >/dev/null; do
    ((SECONDS < deadline)) ||
      die secure "Maestro is not running (its migration owns the database); start it first: tests/stack/maestro.sh up"
    sleep 1
  done
  _secure_kube_env
  ensure_stack_dirs
  _secure_pki
  _secure_rbac
  _secure_credentials
  for name in "${!INSTANCES[@]}"; do
    # Found alive but unhealthy: wait for it (it may be starting), or replace it.
    proc_adopt "$name" "$STACK_WAIT_TIMEOUT" TERM - _secure_healthy "$name" || _secure_start "$name"
  done
  for name in "${!INSTANCES[@]}"; do
    _secure_wait "$name"
  done
  log secure "ready after $((SECONDS - t0))s: mTLS gRPC on $STACK_HOST:$MAESTRO_MTLS_GRPC_PORT, token gRPC on $STACK_HOST:$MAESTRO_TOKEN_GRPC_PORT"
}

secure_down() {
  local name
  for name in "${!INSTANCES[@]}"; do
    if proc_alive "$name"; then
      log secure "stopping $name"
      proc_stop "$name" TERM 30
    fi
  done
  log secure "stopped"
}

secure_status() {
  local name up=0 parts=()
  for name in maestro-mtls maestro-token; do
    if _secure_healthy "$name"; then
      up=$((up + 1))
      parts+=("$name=$(proc_pid "$name")")
    elif proc_alive "$name"; then
      parts+=("$name=starting")
    else
      parts+=("$name=stopped")
    fi
  done
  if ((up == 0)) && [[ ${parts[*]} != *starting* ]]; then
    echo "secure: stopped"
    return 3
  fi
  echo "secure: ${parts[*]} mtls=https://$STACK_HOST:$MAESTRO_MTLS_GRPC_PORT token=https://$STACK_HOST:$MAESTRO_TOKEN_GRPC_PORT source=$SECURE_SOURCE_ID certs=$PKI"
  ((up == 2)) || return 1
}

secure_env() {
  printf 'export MAESTRO_SECURE_DIR=%q\n' "$SECURE_DIR"
  printf 'export MAESTRO_SECURE_SOURCE_ID=%q\n' "$SECURE_SOURCE_ID"
  printf 'export MAESTRO_MTLS_GRPC_ENDPOINT=%q\n' "https://$STACK_HOST:$MAESTRO_MTLS_GRPC_PORT"
  printf 'export MAESTRO_MTLS_HTTP_ENDPOINT=%q\n' "http://$STACK_HOST:$MAESTRO_MTLS_HTTP_PORT"
  printf 'export MAESTRO_TOKEN_GRPC_ENDPOINT=%q\n' "https://$STACK_HOST:$MAESTRO_TOKEN_GRPC_PORT"
  printf 'export MAESTRO_TOKEN_HTTP_ENDPOINT=%q\n' "https://$STACK_HOST:$MAESTRO_TOKEN_HTTP_PORT"
}

component_main secure "$@"
