# shellcheck shell=bash
# Shared settings of the local real stack. Sourced by every script in
# tests/stack; each value can be overridden from the environment.
#
# Pinned versions live here so one file says what the stack runs.

STACK_REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

# Where the stack keeps its state (data directories, pid files, certificates,
# kubeconfig) and logs. A temporary directory, readable by the unprivileged
# user PostgreSQL runs as.
: "${STACK_DIR:=${TMPDIR:-/tmp}/maestro-operator-stack}"
: "${STACK_LOG_DIR:=$STACK_DIR/logs}"

# Built tools (maestro, kube-apiserver, etcd, helm) are cached per version
# under the user's cache directory, so a fresh clone reuses them.
: "${TOOLS_CACHE_DIR:=${XDG_CACHE_HOME:-$HOME/.cache}/maestro-operator/tools}"

# Pinned versions.
: "${MAESTRO_MODULE:=github.com/openshift-online/maestro}"
: "${MAESTRO_VERSION:=v0.0.0-20260728214804-a6f773d61d5b}"
# The Kubernetes control plane (tests/kube/go.mod pins the same versions;
# tests/stack/kube.sh refuses to build when they disagree) and helm
# (tests/kube/helm/go.mod).
: "${KUBE_VERSION:=v1.35.3}"
: "${ETCD_VERSION:=v3.6.5}"
: "${HELM_VERSION:=v3.20.2}"
# promtool (tests/stack/promtool.sh), from the prometheus module pinned in
# tests/tools/promtool/go.mod (module v0.316.0 is Prometheus 3.16.0).
: "${PROMETHEUS_VERSION:=v0.316.0}"
# Jaeger v2 (tests/stack/jaeger.sh), from the jaeger module pinned in
# tests/tools/jaeger/go.mod (module v1.75.0 ships the v2 binary cmd/jaeger).
: "${JAEGER_VERSION:=v1.75.0}"

# Loopback ports. Defaults avoid Maestro's own defaults so a developer's other
# Maestro does not collide with the test stack.
: "${STACK_HOST:=127.0.0.1}"
: "${PG_PORT:=15432}"
: "${MAESTRO_HTTP_PORT:=18000}"
: "${MAESTRO_GRPC_PORT:=18090}"
: "${MAESTRO_BROKER_PORT:=18091}"
: "${MAESTRO_METRICS_PORT:=18080}"
: "${MAESTRO_HEALTH_PORT:=18083}"
# The two secured instances (secure.sh): TLS with mTLS or token authentication.
: "${MAESTRO_MTLS_HTTP_PORT:=18010}"
: "${MAESTRO_MTLS_GRPC_PORT:=18092}"
: "${MAESTRO_MTLS_BROKER_PORT:=18093}"
: "${MAESTRO_MTLS_METRICS_PORT:=18081}"
: "${MAESTRO_MTLS_HEALTH_PORT:=18084}"
: "${MAESTRO_TOKEN_HTTP_PORT:=18020}"
: "${MAESTRO_TOKEN_GRPC_PORT:=18094}"
: "${MAESTRO_TOKEN_BROKER_PORT:=18095}"
: "${MAESTRO_TOKEN_METRICS_PORT:=18082}"
: "${MAESTRO_TOKEN_HEALTH_PORT:=18085}"
# A second plain instance on the same database (maestro.sh: maestro-peer), the
# fault suite's maestro-instance-killed.
: "${MAESTRO_PEER_HTTP_PORT:=18030}"
: "${MAESTRO_PEER_GRPC_PORT:=18096}"
: "${MAESTRO_PEER_BROKER_PORT:=18097}"
: "${MAESTRO_PEER_METRICS_PORT:=18086}"
: "${MAESTRO_PEER_HEALTH_PORT:=18087}"
: "${KUBE_APISERVER_PORT:=16443}"
: "${ETCD_CLIENT_PORT:=12379}"
: "${ETCD_PEER_PORT:=12380}"
: "${KUBE_CONTROLLER_MANAGER_PORT:=16257}"

# The consumers the stack registers (and, with the API server, runs agents for).
# Four, so fleet rollouts (MaestroApplySet) have real groups and failures.
: "${STACK_CONSUMERS:=cluster-west-1 cluster-east-2 cluster-west-3 cluster-east-4}"
# Their labels in Maestro, `consumer:key=value,key=value` separated by
# spaces; maestro.sh sets them at registration and adds missing ones later
# (labels set by others are kept).
: "${STACK_CONSUMER_LABELS:=cluster-west-1:env=prod,region=west cluster-east-2:env=prod,region=east cluster-west-3:env=staging,region=west cluster-east-4:env=staging,region=east}"

export STACK_REPO_ROOT STACK_DIR STACK_LOG_DIR TOOLS_CACHE_DIR MAESTRO_MODULE MAESTRO_VERSION \
  STACK_HOST PG_PORT MAESTRO_HTTP_PORT MAESTRO_GRPC_PORT MAESTRO_BROKER_PORT MAESTRO_METRICS_PORT \
  MAESTRO_HEALTH_PORT KUBE_APISERVER_PORT ETCD_CLIENT_PORT ETCD_PEER_PORT STACK_CONSUMERS STACK_CONSUMER_LABELS
export KUBE_VERSION ETCD_VERSION HELM_VERSION PROMETHEUS_VERSION JAEGER_VERSION KUBE_CONTROLLER_MANAGER_PORT
export MAESTRO_MTLS_HTTP_PORT MAESTRO_MTLS_GRPC_PORT MAESTRO_MTLS_BROKER_PORT MAESTRO_MTLS_METRICS_PORT \
  MAESTRO_MTLS_HEALTH_PORT MAESTRO_TOKEN_HTTP_PORT MAESTRO_TOKEN_GRPC_PORT MAESTRO_TOKEN_BROKER_PORT \
  MAESTRO_TOKEN_METRICS_PORT MAESTRO_TOKEN_HEALTH_PORT
export MAESTRO_PEER_HTTP_PORT MAESTRO_PEER_GRPC_PORT MAESTRO_PEER_BROKER_PORT MAESTRO_PEER_METRICS_PORT \
  MAESTRO_PEER_HEALTH_PORT
