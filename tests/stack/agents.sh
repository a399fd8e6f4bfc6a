#!/usr/bin/env bash
# Real Maestro agents for the local stack: one `maestro agent` process per
# consumer in $STACK_CONSUMERS, each subscribed to Maestro's gRPC agent broker
# and applying what it receives to the stack's kube-apiserver.
#
#   agents.sh up       install the AppliedManifestWork CRD, start the agents that
#                      are not running, wait until each is subscribed; a no-op
#                      when every agent is already healthy
#   agents.sh down     stop every agent (their AppliedManifestWorks, and the
#                      objects they applied, stay in the API server)
#   agents.sh status   one line; exit 0 all running, 3 none, 1 some
#   agents.sh env      `export MAESTRO_AGENT_IDS=consumer=id,...` for tests
#
# Needs `maestro.sh up` (the binary, which is server and agent in one, and the
# broker on $MAESTRO_BROKER_PORT) and `kube.sh up` (the API server and kubectl).
#
# Settings (environment), besides those of env.sh:
#   AGENTS_BASE_PORT        first loopback port of the agents' HTTPS health and
#                           metrics servers; the Nth consumer (0-based) gets
#                           AGENTS_BASE_PORT+N (default 18100)
#   AGENT_LOG_VERBOSITY     klog -v of the agents (default 2)
#   AGENT_STATUS_SYNC_INTERVAL  how often an agent re-reads status and feedback
#                           values of applied objects (default 7s; the agent's
#                           own default is 10s, see "Why not 10s" below)
#   AGENTS_NAMESPACE        namespace for the agents' Kubernetes Events
#                           (default maestro-agent, as Maestro's Helm chart)
#   AGENTS_WAIT_TIMEOUT     seconds `up` waits for all agents to subscribe
#                           (default $STACK_WAIT_TIMEOUT)
#   AGENTS_WATCHDOG         1 (default): run the watchdog (below)
#   AGENTS_WATCHDOG_INTERVAL  seconds between its rounds (default 5)
#   AGENTS_RESTART_BACKOFF_MAX  most seconds it waits before retrying an agent
#                           that did not come back (default 60; from 5, doubling)
#   AGENTS_STUCK_DELETE_AFTER  seconds in which the agent must confirm at least
#                           one of its deletions pending over half that long,
#                           or the watchdog calls them stuck (default 60)
#   AGENTS_UNDELIVERED_AFTER  seconds a bundle version may stay unacknowledged
#                           by the agent before the watchdog acts (default 30)
#   AGENTS_RESYNC_SAFE      most bundles (deleting ones included, all sources)
#                           a consumer may hold for the watchdog to restart its
#                           agent (default 100; see "Resync wedge" below)
#   AGENTS_WEDGE_AFTER      seconds an agent may wait for the first event after
#                           its resync request before it counts as wedged
#                           (default 30)
#   AGENT_KUBE_API_QPS, AGENT_KUBE_API_BURST  the agents' API-server client
#                           limits (default 200 and 400; the agent's own 50 and
#                           100 make a deletion of hundreds of works crawl)
#
# Agent flags (maestro agent --help; confirmed in the sources pinned by
# tests/tools/maestro/go.mod: maestro cmd/maestro/agent/cmd.go, ocm
# pkg/work/spoke/options.go and spokeagent.go, library-go
# pkg/controller/controllercmd/{cmd,flags}.go, sdk-go
# pkg/cloudevents/generic/options/grpc/options.go):
#   --consumer-name                 the consumer (cluster) whose works it receives
#   --workload-source-driver=grpc   receive works from Maestro's gRPC broker...
#   --workload-source-config        ...described by a YAML file (sdk-go GRPCConfig):
#                                   only `url:` here, no caFile/clientCertFile/
#                                   token: the stack's broker is plaintext
#   --cloudevents-client-id         this agent's CloudEvents client ID
#   --kubeconfig                    the cluster it applies to (controllercmd)
#   --listen                        its HTTPS server (healthz, metrics); without
#                                   it the agent binds 0.0.0.0:8443
#   --namespace                     where it records Kubernetes Events
#   --status-sync-interval, -v
#   --kube-api-qps, --kube-api-burst  the limiter every API-server call of the
#                                   agent shares (maestro cmd/maestro/agent/
#                                   cmd.go addFlags; ocm's default 50 / 100)
#
# Two agents on one API server. Each agent names the AppliedManifestWork of a
# work `<hub hash>-<work name>`, where the hub hash is sha256(broker URL) and
# the work name is the bundle's resource ID (Maestro sends the agent the
# resource ID as the name). The maestro agent has no --agent-id flag, so its
# agent ID (AppliedManifestWork spec.agentID) is that hub hash too. With the
# same broker URL both agents would share hub hash and agent ID, and each
# would take the other's AppliedManifestWorks for its own: the
# unmanaged-AppliedManifestWork controller of one agent, not finding the
# other consumer's work, marks it for eviction (status.evictionStartTime; it
# deletes it, and so garbage-collects its objects, after
# --appliedmanifestwork-eviction-grace-period, 1h), while the owning agent
# clears the mark again: a write every second or so, for ever (seen on this
# stack). So each agent gets its own broker URL: the same address in gRPC
# target form with the consumer as a query, `dns:///HOST:PORT?agent=NAME`.
# gRPC's dns resolver dials only the path (HOST:PORT) and ignores the query,
# so the URLs differ, and with them hub hash and agent ID, while the
# connection is the same.
#
# How a test tells what each consumer received (both agents apply into the
# same API server, and manifests carry their own namespaces):
#   * every object an agent applies (unless the work orphans it) has an
#     ownerReference to the AppliedManifestWork of its work: kind
#     AppliedManifestWork, name `<agent ID>-<resource ID>`;
#   * that AppliedManifestWork's spec.manifestWorkName is the resource ID,
#     which is derived from source, consumer and work name, and its
#     spec.agentID / spec.hubHash name the agent; `agents.sh env` exports
#     MAESTRO_AGENT_IDS=consumer=agentID,... to compare with;
#   * its status.appliedResources lists what it applied (orphaned objects
#     included), and it carries the work's labels.
#
# Why not 10s: an agent re-syncs each work's status on a timer that starts
# when it applied the work, and the operator (pollInterval 10s by default)
# and the tests find a work Ready on the same 10 s beat, then delete it. A
# delete that reaches the agent while its status patch for that work is in
# flight is lost (sdk-go's agent ManifestWork client, Patch: it writes back
# the copy it read before the delete, and a delete does not bump the
# resource version it compares), and the agent never confirms the deletion
# until it reconnects and resyncs. Seen on this stack: a work deleted at
# exactly 10.07 s after it was applied stayed "deleting" for good. 7s keeps
# the two beats apart.
#
# The 7 s beat makes the race rare, not impossible: status patches also
# follow every apply, so a work deleted within a second of being applied can
# lose its delete too (seen once in ~300 deletions). The agent recovers only
# when it reconnects: it then resyncs and receives the pending delete again.
# So `up` also starts a watchdog (process agents-watchdog, its own log) that
# every 5 s lists the bundles Maestro has held marked deleting for each
# agent's consumer for over half of AGENTS_STUCK_DELETE_AFTER (30 s), and
# restarts that consumer's agent (at most once a minute, and only under the
# resync limit below) when none of them has been confirmed (left that list)
# for AGENTS_STUCK_DELETE_AFTER seconds (60). Younger deletions do not count,
# so other clients' deletions, confirmed in seconds, do not pass for progress
# on a lost one (a single lost delete gets its restart about 90 s after it
# was recorded). It judges progress, not the age of the oldest deletion,
# because a deletion of hundreds of works takes minutes on the pinned agent
# (one 2 s loop publishes the confirmations, docs/deletion-stall.md finding
# 2), and a restart in the middle of one is what wedges an agent. It acts only on
# deletions Maestro has recorded, so it cannot hide a client that failed to
# ask for one. A delete that reached an agent while the API server was down
# is not retried by the agent (seen on this stack), so when the API server
# returns, an agent whose consumer has deletions pending is restarted at once.
#
# The same blind spot loses specs: Maestro tells its dispatcher about a new
# bundle version with PostgreSQL NOTIFY, and a notification sent while its
# LISTEN connection is down (a database restart: the pinned Maestro's
# pq.Listener reconnects after 10 s to a minute, pkg/db/db_session/default.go)
# is gone for good; nothing re-sends the spec until the agent reconnects.
# Seen in the fault suite: after a 60 s PostgreSQL outage, works published
# right after it never reached the cluster-west-1 agent (bundle at version 2,
# the agent's report still on version 1, for minutes). So the watchdog also
# restarts an agent when one of its consumer's live bundles has had a version
# the agent has not reported on for AGENTS_UNDELIVERED_AFTER seconds (30 by
# default), at most once a minute. The operator shows such objects as
# Progressing ("the agent ... last reported on bundle version 1; waiting for
# version 2"), which is the truth it can see.
#
# The watchdog also supervises the agents: one that is gone (killed, crashed,
# or exited at start-up) or whose /healthz has failed for three rounds is
# restarted, and the watchdog waits until it has subscribed again. One that
# does not come back is retried after 5 s, then 10, 20, ... at most
# AGENTS_RESTART_BACKOFF_MAX seconds. An agent exits at once when it starts
# while the API server is down (it reads the extension-apiserver-
# authentication ConfigMap first), while a running agent rides out an outage;
# so the watchdog does nothing, neither supervision nor the deletion check,
# while the stack's API server does not answer /readyz (with the stack's CA
# and admin token), and resumes when it does. (A delete that reached an agent
# during the outage is not retried by the agent, seen on this stack: once the
# API server is back, the deletion check restarts that agent at once, and the
# resync finishes the deletion.) Every action and every
# hold-off is a line in agents-watchdog.log. The watchdog and `up`/`down` take
# turns through a lock ($STACK_RUN_DIR/agents.lock), and `up` restarts a
# watchdog that runs an older copy of this script.
#
# Resync wedge (docs/deletion-stall.md, finding 3). A restarted agent starts
# with an empty store and sends a resync request; the pinned Maestro answers
# with every bundle of the consumer (deleting ones included) inside that RPC,
# through a 100-slot channel, while the agent's transport holds the mutex its
# reader needs. Beyond about 100 bundles (the exact point depends on their
# size) the two wait on each other for good, and the stuck broker blocks
# Maestro's single spec worker for every consumer. Hence:
#   * the watchdog restarts an agent (stuck deletions, unacknowledged
#     versions, failing /healthz, a wedge) only while its consumer holds at
#     most AGENTS_RESYNC_SAFE bundles (default 100: GET resource-bundles with
#     search=consumer_name='X', size=1, `total`; every source, deleting rows
#     included). Above that it logs once per episode "NOT restarting it:
#     would wedge: N bundles, see docs/deletion-stall.md", writes
#     $STACK_RUN_DIR/agent-CONSUMER.would-wedge, and `status` says degraded.
#     An agent that is gone is still started (nothing else would serve the
#     consumer), with a line saying its resync may wedge; so does `up`;
#   * wedge check: every round the watchdog reads what each agent logged
#     (-v=2: the "Sending event" line of its spec.resync_request, and
#     "Received event" lines). A resync request followed by no received event
#     for AGENTS_WEDGE_AFTER seconds (30), while Maestro holds bundles it must
#     send back (any bundle after the first resync of a process; a deleting
#     one after a reconnection, where the agent keeps its store), means
#     wedged: it says so, and stops that agent, which frees Maestro for the
#     other consumers. It keeps it stopped ($STACK_RUN_DIR/agent-CONSUMER.held;
#     `up` leaves it stopped too, `status` says degraded) until the consumer
#     holds at most AGENTS_RESYNC_SAFE bundles, then starts it. Under the limit
#     a wedge (not seen) just gets a restart. Nothing automatic can bring the
#     count down: only that agent confirms a deletion. The recovery by hand
#     is in docs/deletion-stall.md ("Cost of getting out").
# The agents also get --kube-api-qps=200 --kube-api-burst=400: the status
# controller alone GETs every applied manifest once per sync interval, about
# 100/s for 1,000 works, and the agent's default limiter (50/s, burst 100) is
# shared by every call, deletions included.
#
# Known log noise: each agent logs "missing content for CA bundle
# ...requestheader-client-ca-file" now and then. Its HTTPS server delegates
# authentication to the API server and looks for the front-proxy CA, which
# the stack's API server does not have. Harmless: /healthz is always allowed.
# It cannot be switched off: the agent has no flag for it, and
# `authentication: {disabled: true}` in a --config file makes every request
# to that server panic (library-go's metrics authorizer dereferences the
# missing user).
set -euo pipefail
# shellcheck source=tests/stack/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

: "${AGENTS_BASE_PORT:=18100}"
: "${AGENT_LOG_VERBOSITY:=2}"
: "${AGENT_STATUS_SYNC_INTERVAL:=7s}"
: "${AGENTS_NAMESPACE:=maestro-agent}"
: "${AGENTS_WAIT_TIMEOUT:=$STACK_WAIT_TIMEOUT}"
: "${AGENTS_WATCHDOG:=1}"
: "${AGENTS_WATCHDOG_INTERVAL:=5}"
: "${AGENTS_RESTART_BACKOFF_MAX:=60}"
: "${AGENTS_STUCK_DELETE_AFTER:=60}"
: "${AGENTS_UNDELIVERED_AFTER:=30}"
: "${AGENTS_RESYNC_SAFE:=100}"
: "${AGENTS_WEDGE_AFTER:=30}"
: "${AGENT_KUBE_API_QPS:=200}"
: "${AGENT_KUBE_API_BURST:=400}"

AGENTS_STATE_DIR="$STACK_DIR/agents"
MAESTRO_TOOLS_MODULE_DIR="$STACK_REPO_ROOT/tests/tools/maestro"
OCM_API_MODULE=open-cluster-management.io/api
APPLIED_CRD_NAME=appliedmanifestworks.work.open-cluster-management.io
APPLIED_CRD_PATH=work/v1/0000_01_work.open-cluster-management.io_appliedmanifestworks.crd.yaml
# What an agent logs once its subscription to the broker is open
# (sdk-go pkg/cloudevents/generic/options/v2/grpc/transport.go).
SUBSCRIBED_LINE='subscribed to grpc server'
# What it logs (-v=2) when it sends its resync request, which it does after
# every (re)connection, and for every spec event it receives (sdk-go
# pkg/cloudevents/generic/clients/baseclient.go publish and subscribe).
AGENT_RESYNC_LINE='spec.resync_request'
AGENT_RECEIVED_LINE='"Received event"'

# ---------------------------------------------------------------- helpers

_agents_consumers() {
  local c
  for c in $STACK_CONSUMERS; do
    printf '%s\n' "$c"
  done
}

_agent_name() { printf 'agent-%s' "$1"; }

# _agent_port CONSUMER : its health port, from its position in STACK_CONSUMERS.
_agent_port() {
  local c i=0
  for c in $STACK_CONSUMERS; do
    if [[ $c == "$1" ]]; then
      printf '%s' "$((AGENTS_BASE_PORT + i))"
      return 0
    fi
    i=$((i + 1))
  done
  return 1
}

# _agent_url CONSUMER : the broker URL the agent dials (see the header).
_agent_url() { printf 'dns:///%s:%s?agent=%s' "$STACK_HOST" "$MAESTRO_BROKER_PORT" "$1"; }

# _agent_id CONSUMER : the agent ID (= hub hash) the agent derives from its URL
# (ocm pkg/work/helper/helpers.go HubHash: hex sha256 of the URL).
_agent_id() { printf '%s' "$(_agent_url "$1")" | sha256sum | cut -d' ' -f1; }

_agent_healthz() {
  local port
  port=$(_agent_port "$1") || return 1
  # Self-signed certificate made in memory by the agent; /healthz is always
  # allowed by its delegating authorizer.
  [[ $(curl -sk -o /dev/null -w '%{http_code}' --max-time 5 "https://$STACK_HOST:$port/healthz" 2>/dev/null) == 200 ]]
}

_agent_running() { proc_alive "$(_agent_name "$1")" && _agent_healthz "$1"; }

# _agents_lock [TIMEOUT] : take the lock the watchdog and up/down share
# (descriptor 7; released on exit). With TIMEOUT 0, fail at once when taken.
_agents_lock() {
  local timeout=${1:-$((AGENTS_WAIT_TIMEOUT + 60))}
  ensure_stack_dirs
  exec 7>"$STACK_RUN_DIR/agents.lock"
  if ((timeout == 0)); then
    flock -n 7
  else
    flock -w "$timeout" 7 || die agents "timed out after ${timeout}s waiting for $STACK_RUN_DIR/agents.lock"
  fi
}

_agents_have_go() {
  if ! command -v go >/dev/null 2>&1 && [[ -x /usr/local/go/bin/go ]]; then
    PATH="$PATH:/usr/local/go/bin"
  fi
  command -v go >/dev/null 2>&1
}

# _agents_crd_file : the AppliedManifestWork CRD shipped in the
# open-cluster-management.io/api module that tests/tools/maestro/go.mod pins
# (the version the agent is built with), from the Go module cache. No copy is
# kept in the repository: building Maestro put the module in the cache.
_agents_crd_file() {
  local version modcache file
  version=$(awk -v m="$OCM_API_MODULE" '$1 == m { print $2; exit }' "$MAESTRO_TOOLS_MODULE_DIR/go.mod")
  [[ -n $version ]] || die agents "tests/tools/maestro/go.mod does not require $OCM_API_MODULE"
  if _agents_have_go; then
    modcache=$(go env GOMODCACHE)
  else
    modcache=${GOMODCACHE:-${GOPATH:-$HOME/go}/pkg/mod}
  fi
  # Module paths in the cache escape upper-case letters; this one has none.
  file="$modcache/$OCM_API_MODULE@$version/$APPLIED_CRD_PATH"
  if [[ ! -f $file ]] && _agents_have_go; then
    log agents "downloading $OCM_API_MODULE@$version into the module cache"
    (cd "$MAESTRO_TOOLS_MODULE_DIR" && GOFLAGS=-mod=readonly go mod download "$OCM_API_MODULE@$version") >&2 ||
      die agents "go mod download $OCM_API_MODULE@$version failed"
  fi
  [[ -f $file ]] || die agents "no AppliedManifestWork CRD at $file (is Go installed? tests/stack/maestro.sh build fills the module cache)"
  printf '%s' "$file"
}

# _agents_kube_env : KUBECONFIG and KUBECTL of the stack's API server.
_agents_kube_env() {
  local line
  while IFS= read -r line; do
    case $line in
    "export KUBECONFIG="* | "export KUBECTL="*) eval "$line" ;;
    esac
  done < <(bash "$STACK_SCRIPTS_DIR/kube.sh" env)
  [[ -n ${KUBECONFIG:-} && -f $KUBECONFIG ]] || die agents "no kubeconfig from kube.sh env (${KUBECONFIG:-unset})"
  [[ -n ${KUBECTL:-} && -x $KUBECTL ]] || die agents "no kubectl from kube.sh env (${KUBECTL:-unset})"
}

# _agents_prepare_cluster : the CRD (idempotent apply, then wait until it is
# served) and the namespace for the agents' Events.
_agents_prepare_cluster() {
  local crd
  crd=$(_agents_crd_file)
  "$KUBECTL" --kubeconfig="$KUBECONFIG" apply --server-side --field-manager=maestro-operator-stack \
    -f "$crd" >/dev/null || die agents "kubectl apply of $crd failed"
  "$KUBECTL" --kubeconfig="$KUBECONFIG" wait --for=condition=Established --timeout=60s \
    "crd/$APPLIED_CRD_NAME" >/dev/null || die agents "CRD $APPLIED_CRD_NAME not established"
  # The NodePool CRD that maestro-cli's nodepool conversion targets: an agent
  # resolves kinds when it starts, so a CRD installed only once the agents
  # run can leave them applying to an unknown kind.
  "$KUBECTL" --kubeconfig="$KUBECONFIG" apply --server-side --field-manager=maestro-operator-stack \
    -f "$STACK_REPO_ROOT/tests/fixtures/cli/nodepools.hyperfleet.io.crd.yaml" >/dev/null ||
    die agents "kubectl apply of the NodePool CRD failed"
  "$KUBECTL" --kubeconfig="$KUBECONFIG" create namespace "$AGENTS_NAMESPACE" --dry-run=client -o yaml |
    "$KUBECTL" --kubeconfig="$KUBECONFIG" apply --server-side --field-manager=maestro-operator-stack -f - >/dev/null ||
    die agents "cannot create namespace $AGENTS_NAMESPACE"
}

# _agent_start CONSUMER : start its agent unless alive. Sets AGENT_LOG_OFFSET
# to the size of its log before the start, so the wait reads only this run's
# lines (-1 when it was already running).
_agent_start() {
  local consumer=$1 name dir port logfile
  name=$(_agent_name "$consumer")
  logfile=$(proc_logfile "$name")
  AGENT_LOG_OFFSET=-1
  # Found alive but unhealthy: wait for it (it may be starting), or replace it.
  if proc_adopt "$name" "$AGENTS_WAIT_TIMEOUT" TERM - _agent_healthz "$consumer"; then
    return 0
  fi
  port=$(_agent_port "$consumer")
  port_open "$STACK_HOST" "$port" &&
    die agents "$STACK_HOST:$port (health port of the $consumer agent) is taken by a process this stack did not start; set AGENTS_BASE_PORT"
  dir="$AGENTS_STATE_DIR/$consumer"
  mkdir -p "$dir/tmp"
  chmod 0700 "$dir"
  # The agent writes a self-signed serving certificate into a fresh
  # $TMPDIR/serving-cert-* directory on every start; keep them here and drop
  # those of earlier runs.
  rm -rf "$dir/tmp/"serving-cert-*
  printf 'url: %s\n' "$(_agent_url "$consumer")" >"$dir/grpc-config.yaml"
  AGENT_LOG_OFFSET=0
  [[ -f $logfile ]] && AGENT_LOG_OFFSET=$(stat -c %s "$logfile")
  log agents "starting agent for $consumer (log: $logfile)"
  TMPDIR="$dir/tmp" proc_start "$name" "$MAESTRO_BIN" agent \
    --consumer-name="$consumer" \
    --workload-source-driver=grpc \
    --workload-source-config="$dir/grpc-config.yaml" \
    --cloudevents-client-id="$consumer-maestro-agent" \
    --kubeconfig="$KUBECONFIG" \
    --listen="$STACK_HOST:$port" \
    --namespace="$AGENTS_NAMESPACE" \
    --status-sync-interval="$AGENT_STATUS_SYNC_INTERVAL" \
    --kube-api-qps="$AGENT_KUBE_API_QPS" \
    --kube-api-burst="$AGENT_KUBE_API_BURST" \
    -v="$AGENT_LOG_VERBOSITY"
}

# _agent_wait CONSUMER OFFSET DEADLINE : until the agent of this run has
# subscribed to the broker (log line after OFFSET; -1: already running, skip)
# and answers /healthz.
_agent_wait() {
  local consumer=$1 offset=$2 deadline=$3 name logfile
  name=$(_agent_name "$consumer")
  logfile=$(proc_logfile "$name")
  # grep reads to the end (no -q): with pipefail, an early exit would make a
  # still-writing tail die of SIGPIPE and fail the check on a busy log.
  until { ((offset < 0)) || tail -c "+$((offset + 1))" "$logfile" 2>/dev/null | grep -F "$SUBSCRIBED_LINE" >/dev/null; } &&
    _agent_healthz "$consumer"; do
    if ! proc_alive "$name"; then
      tail_log "$logfile" 40
      die agents "the $consumer agent exited; see $logfile"
    fi
    if ((SECONDS >= deadline)); then
      tail_log "$logfile" 40
      die agents "the $consumer agent is not subscribed and healthy after ${AGENTS_WAIT_TIMEOUT}s; see $logfile"
    fi
    sleep 0.2
  done
}

# _agents_resolve_bin : MAESTRO_BIN from maestro.sh, or fail.
_agents_resolve_bin() {
  MAESTRO_BIN=$(bash "$STACK_SCRIPTS_DIR/maestro.sh" env | sed -n 's/^export MAESTRO_BIN=\([^ ]*\).*/\1/p')
  [[ -x $MAESTRO_BIN ]] || die agents "no maestro binary at '$MAESTRO_BIN' (tests/stack/maestro.sh build)"
}

# _agents_bundles CONSUMER [deleting] : how many bundles Maestro holds for the
# consumer, over every source, deleting ones included (what a fresh agent's
# resync brings back, see "Resync wedge"); with `deleting`, only those marked
# deleted, which wait for the agent's confirmation.
_agents_bundles() {
  local search="consumer_name='$1'" body
  [[ ${2:-} == deleting ]] && search+=" and deleted_at is not null"
  body=$(curl -sS --fail --max-time 10 -G "http://$STACK_HOST:$MAESTRO_HTTP_PORT/api/maestro/v1/resource-bundles" \
    --data-urlencode "search=$search" --data-urlencode size=1 2>/dev/null) || return 1
  [[ $body =~ \"total\":([0-9]+) ]] || return 1
  printf '%s' "${BASH_REMATCH[1]}"
}

# _agents_old_deletions CONSUMER : the IDs (one a line, oldest first, at most
# 500) of the consumer's bundles marked deleting for over half of
# AGENTS_STUCK_DELETE_AFTER seconds: those the agent should be working on.
# Younger ones are left out, so that other clients' deletions, confirmed in
# seconds, do not pass for progress on these.
_agents_old_deletions() {
  local before
  before=$(date -u -d "-$((AGENTS_STUCK_DELETE_AFTER / 2)) sec" +%Y-%m-%dT%H:%M:%SZ)
  curl -sS --fail --max-time 10 -G "http://$STACK_HOST:$MAESTRO_HTTP_PORT/api/maestro/v1/resource-bundles" \
    --data-urlencode "search=consumer_name='$1' and deleted_at < '$before'" \
    --data-urlencode "orderBy=deleted_at asc" --data-urlencode size=500 2>/dev/null |
    python3 -c 'import json, sys; [print(b["id"]) for b in json.loads(sys.stdin.read() or "{}").get("items", [])]'
}

# _agent_flag_file CONSUMER KIND : the file that records a watchdog verdict
# `agents.sh status` reports: KIND held (the watchdog stopped the wedged agent
# and keeps it stopped) or would-wedge (a restart is due but not safe).
_agent_flag_file() { printf '%s/agent-%s.%s' "$STACK_RUN_DIR" "$1" "$2"; }

# _agent_log_scan LOGFILE OFFSET : the agent's resync requests and received
# events in its log from byte OFFSET on (-1: from its last start, the
# "===== ... start agent-..." line proc_start writes), whole lines only. Prints
# the offset to continue from, then one line per event in the log's order:
# `resync EPOCH` or `received EPOCH` (from klog's "Lmmdd hh:mm:ss" header,
# local time, which has no year).
_agent_log_scan() {
  python3 - "$1" "$2" "$AGENT_RESYNC_LINE" "$AGENT_RECEIVED_LINE" <<'PY'
import datetime, os, re, sys
path, off = sys.argv[1], int(sys.argv[2])
resync, received = sys.argv[3].encode(), sys.argv[4].encode()
try:
    f = open(path, "rb")
except OSError:
    print(0)
    sys.exit(0)
with f:
    size = os.fstat(f.fileno()).st_size
    if off > size:  # a new file
        off = 0
    if off < 0:
        # Back from the end, a MiB at a time, to the last start marker.
        off, pos, tail = 0, size, b""
        while pos > 0:
            pos = max(0, pos - (1 << 20))
            f.seek(pos)
            tail = f.read(size - pos)
            i = tail.rfind(b"\n===== ")
            if i >= 0:
                off = pos + i + 1
                break
    f.seek(off)
    data = f.read(size - off)
end = data.rfind(b"\n") + 1
print(off + end)
now = datetime.datetime.now()
head = re.compile(rb"^[IWEF](\d\d)(\d\d) (\d\d):(\d\d):(\d\d)")
for line in data[:end].split(b"\n"):
    if resync in line:
        kind = "resync"
    elif received in line:
        kind = "received"
    else:
        continue
    m = head.match(line)
    if not m:
        continue
    mo, d, h, mi, s = (int(x) for x in m.groups())
    t = datetime.datetime(now.year, mo, d, h, mi, s)
    if t - now > datetime.timedelta(days=1):  # written last year
        t = t.replace(year=now.year - 1)
    print(kind, int(t.timestamp()))
PY
}

# _agents_undelivered CONSUMER : how many of the consumer's live bundles
# (first 400) have carried a version the agent has not reported on for over
# AGENTS_UNDELIVERED_AFTER seconds.
_agents_undelivered() {
  curl -sS --fail --max-time 10 -G "http://$STACK_HOST:$MAESTRO_HTTP_PORT/api/maestro/v1/resource-bundles" \
    --data-urlencode "search=consumer_name='$1'" --data-urlencode size=400 |
    python3 -c '
import datetime, json, sys
after = datetime.timedelta(seconds=int(sys.argv[1]))
now = datetime.datetime.now(datetime.timezone.utc)
n = 0
for b in json.loads(sys.stdin.read() or "{}").get("items", []):
    if b.get("deleted_at"):
        continue
    seen = (b.get("status") or {}).get("ObservedVersion", 0)
    updated = datetime.datetime.fromisoformat(b["updated_at"].replace("Z", "+00:00"))
    if seen < b["version"] and now - updated > after:
        n += 1
print(n)
' "$AGENTS_UNDELIVERED_AFTER"
}

# _agents_api_ready : the stack's API server answers /readyz, checked with
# the CA and admin token of the kubeconfig kube.sh wrote (re-read every time:
# `kube.sh reset` makes new ones).
# Sets AGENTS_API_SERVER to the server's URL.
AGENTS_API_SERVER=""
_agents_api_ready() {
  local ca token dir="$AGENTS_STATE_DIR/.watchdog"
  AGENTS_API_SERVER=$(sed -n 's/^ *server: *//p' "$KUBECONFIG" 2>/dev/null | head -n 1)
  ca=$(sed -n 's/^ *certificate-authority-data: *//p' "$KUBECONFIG" 2>/dev/null | head -n 1)
  token=$(sed -n 's/^ *token: *//p' "$KUBECONFIG" 2>/dev/null | head -n 1)
  [[ -n $AGENTS_API_SERVER && -n $ca && -n $token ]] || return 1
  # The token goes to curl in a file (-H @file), not on its command line.
  if [[ $(cat "$dir/ca.b64" 2>/dev/null) != "$ca" || $(cat "$dir/auth.header" 2>/dev/null) != "Authorization: Bearer $token" ]]; then
    (
      umask 077
      mkdir -p "$dir"
      printf '%s' "$ca" | base64 -d >"$dir/ca.crt" &&
        printf '%s\n' "$ca" >"$dir/ca.b64" &&
        printf 'Authorization: Bearer %s\n' "$token" >"$dir/auth.header"
    ) 2>/dev/null || return 1
  fi
  curl -sf --max-time 5 --cacert "$dir/ca.crt" -H "@$dir/auth.header" "$AGENTS_API_SERVER/readyz" >/dev/null 2>&1
}

# _agents_script_sum : what the watchdog runs (this script and lib.sh, which
# sources env.sh); `up` restarts a watchdog started from another version.
_agents_script_sum() {
  cat "$STACK_SCRIPTS_DIR/agents.sh" "$STACK_SCRIPTS_DIR/lib.sh" "$STACK_SCRIPTS_DIR/env.sh" | sha256sum | cut -d' ' -f1
}

# _watchdog_restart CONSUMER : (in the watchdog, holding the lock) stop the
# consumer's agent if it runs, start a fresh one, release the lock, and wait
# until it has subscribed and answers /healthz. Fails when it does not.
_watchdog_restart() {
  local c=$1 name logfile offset=0
  name=$(_agent_name "$c")
  logfile=$(proc_logfile "$name")
  if ! proc_stop "$name" TERM 30; then
    flock -u 7
    return 1
  fi
  [[ -f $logfile ]] && offset=$(stat -c %s "$logfile")
  # Subshells: die() in them ends only them, never the watchdog.
  if ! (_agent_start "$c"); then
    flock -u 7
    return 1
  fi
  flock -u 7
  (_agent_wait "$c" "$offset" $((SECONDS + AGENTS_WAIT_TIMEOUT)))
}

# _watchdog_wedge_check CONSUMER PID TOTAL : (in the watchdog) read what the
# agent logged since the last round; true when it is wedged on its resync: its
# last resync request is AGENTS_WEDGE_AFTER seconds old and no event has come
# since, while Maestro holds something it must send back. For the first resync
# of a process (an empty store) that is any bundle (TOTAL); for a later one (a
# reconnection, the agent keeps its store and Maestro sends only what is newer)
# a deleting bundle, which Maestro always resends. Sets WEDGE_WHY.
WEDGE_WHY=""
_watchdog_wedge_check() {
  local c=$1 pid=$2 total=$3 off kind ts need age
  ((AGENT_LOG_VERBOSITY >= 2)) || return 1
  if [[ ${scan_pid[$c]:-} != "$pid" ]]; then
    scan_pid[$c]=$pid scan_off[$c]=-1 resyncs[$c]=0 resync_at[$c]=0
  fi
  {
    read -r off
    while read -r kind ts; do
      if [[ $kind == resync ]]; then
        resyncs[$c]=$((resyncs[$c] + 1))
        resync_at[$c]=$ts
      else
        resync_at[$c]=0
      fi
    done
  } < <(_agent_log_scan "$(proc_logfile "$(_agent_name "$c")")" "${scan_off[$c]}")
  [[ $off =~ ^[0-9]+$ ]] && scan_off[$c]=$off
  ((resync_at[$c] > 0)) || return 1
  age=$((EPOCHSECONDS - resync_at[$c]))
  ((age >= AGENTS_WEDGE_AFTER)) || return 1
  if ((resyncs[$c] == 1)); then
    need=${total:-0}
    WEDGE_WHY="its first resync request since it started, ${age}s ago, has brought no event, while Maestro holds $need bundle(s) for $c"
  else
    need=$(_agents_bundles "$c" deleting) || need=0
    WEDGE_WHY="its resync request after a reconnection, ${age}s ago, has brought no event, while Maestro holds $need deleting bundle(s) for $c, which it always resends"
  fi
  ((need > 0))
}

# The watchdog's loop (see the header); runs as the process agents-watchdog.
# No `set -e` here: one failed check must not end the supervision.
agents_watchdog() {
  set +e
  local c n name pid reason gone delay t0 total deleting api_down=-1
  local -A failures=() next_try=() unhealthy=() last_restart=() after_outage=()
  local ids
  local -A del_ids=() del_since=() would_wedge=() wedge_seen=()
  # _watchdog_wedge_check's, per consumer: which process, how far its log is
  # read, its resync requests, and the time of the last one no event followed.
  local -A scan_pid=() scan_off=() resyncs=() resync_at=()
  _agents_resolve_bin
  _agents_kube_env
  _agents_script_sum >"$STACK_RUN_DIR/agents-watchdog.sum"
  rm -f "$STACK_RUN_DIR"/agent-*.would-wedge
  log watchdog "supervising the agents of: $STACK_CONSUMERS every ${AGENTS_WATCHDOG_INTERVAL}s (start when gone, restart when unhealthy; retries after 5s doubling to ${AGENTS_RESTART_BACKOFF_MAX}s; nothing while the API server is not ready); restarting an agent that has confirmed none of its deletions pending over $((AGENTS_STUCK_DELETE_AFTER / 2))s for ${AGENTS_STUCK_DELETE_AFTER}s or whose bundle versions stay unacknowledged over ${AGENTS_UNDELIVERED_AFTER}s; but restarting (not starting) one only while its consumer holds at most AGENTS_RESYNC_SAFE=${AGENTS_RESYNC_SAFE} bundles, and stopping one whose resync brings no event within ${AGENTS_WEDGE_AFTER}s (wedged; docs/deletion-stall.md)"
  ((AGENT_LOG_VERBOSITY >= 2)) ||
    log watchdog "AGENT_LOG_VERBOSITY=$AGENT_LOG_VERBOSITY: the agents do not log their resync requests and events, so no wedge is detected"
  while sleep "$AGENTS_WATCHDOG_INTERVAL"; do
    if ! _agents_api_ready; then
      if ((api_down < 0)); then
        api_down=$SECONDS
        log watchdog "the API server is not ready (${AGENTS_API_SERVER:-no server in $KUBECONFIG}/readyz): holding off, no agent is restarted until it is"
      fi
      continue
    fi
    if ((api_down >= 0)); then
      log watchdog "the API server is ready again (after $((SECONDS - api_down))s); resuming"
      api_down=-1
      # An agent that died meanwhile is restarted now, not after its backoff.
      next_try=()
      for c in $(_agents_consumers); do
        after_outage[$c]=1
      done
    fi
    for c in $(_agents_consumers); do
      name=$(_agent_name "$c")
      reason="" gone=0
      total=$(_agents_bundles "$c") || total=""
      if ! pid=$(proc_pid "$name"); then
        gone=1
        after_outage[$c]=0
        unset "del_since[$c]"
        if [[ -f $(_agent_flag_file "$c" held) ]]; then
          # Stopped here because it wedged: back once that is safe.
          if [[ -z $total ]] || ((total > AGENTS_RESYNC_SAFE)); then
            continue
          fi
          reason="stopped since it wedged, and $c now holds $total bundle(s), at most AGENTS_RESYNC_SAFE=$AGENTS_RESYNC_SAFE"
        else
          reason="not running"
          if [[ -z $total ]]; then
            reason+=" (its bundles cannot be counted: Maestro's REST API does not answer)"
          elif ((total > AGENTS_RESYNC_SAFE)); then
            reason+="; $c holds $total bundles, over AGENTS_RESYNC_SAFE=$AGENTS_RESYNC_SAFE, so its resync may wedge (docs/deletion-stall.md), which the wedge check then catches"
          fi
        fi
      else
        # Started by hand (or `up`) after a wedge: judge it afresh.
        rm -f "$(_agent_flag_file "$c" held)"
        if _watchdog_wedge_check "$c" "$pid" "$total"; then
          if [[ ${wedge_seen[$c]:-} != "$pid" ]]; then
            wedge_seen[$c]=$pid
            log watchdog "$name (pid $pid) is WEDGED on its resync: $WEDGE_WHY. While it is, Maestro's spec delivery stops for every consumer (docs/deletion-stall.md, finding 3)"
          fi
          if [[ -n $total ]] && ((total <= AGENTS_RESYNC_SAFE)); then
            reason="wedged on its resync with $total bundle(s), at most AGENTS_RESYNC_SAFE=$AGENTS_RESYNC_SAFE"
          else
            # Stop it, which frees Maestro for the other consumers.
            _agents_lock 0 || continue
            proc_stop "$name" TERM 10
            flock -u 7
            printf 'wedged on its resync at %s with %s bundle(s) on %s (over AGENTS_RESYNC_SAFE=%s); stopped by the watchdog\n' \
              "$(date -Is)" "${total:-?}" "$c" "$AGENTS_RESYNC_SAFE" >"$(_agent_flag_file "$c" held)"
            log watchdog "stopped $name (pid $pid) so that Maestro serves the other consumers again; it stays stopped until $c holds at most $AGENTS_RESYNC_SAFE bundles (now ${total:-unknown}). Recovery by hand: docs/deletion-stall.md, \"Cost of getting out\" (delete the deleting rows of the source in Maestro's database, then its AppliedManifestWorks)"
            rm -f "$(_agent_flag_file "$c" would-wedge)"
            would_wedge[$c]=0
            continue
          fi
        elif ! _agent_healthz "$c"; then
          unhealthy[$c]=$((${unhealthy[$c]:-0} + 1))
          ((unhealthy[$c] >= 3)) && reason="alive, but /healthz failed ${unhealthy[$c]} rounds in a row"
        else
          unhealthy[$c]=0
          failures[$c]=0
          # Progress of its deletions: when one of those pending for a while
          # (_agents_old_deletions) was last confirmed, i.e. left that set.
          deleting=0
          if ((${after_outage[$c]:-0})); then
            deleting=$(_agents_bundles "$c" deleting) || deleting=0
          fi
          if ids=$(_agents_old_deletions "$c"); then
            if [[ -z $ids ]]; then
              unset "del_since[$c]" "del_ids[$c]"
            elif [[ -z ${del_since[$c]:-} ]] || grep -qvxF -f <(printf '%s\n' "$ids") <<<"${del_ids[$c]:-}"; then
              del_since[$c]=$SECONDS
            fi
            [[ -n $ids ]] && del_ids[$c]=$ids
          fi
          if ((deleting > 0)); then
            reason="$deleting deletion(s) pending across the API-server outage (an agent does not retry a delete that failed meanwhile), which it resyncs when restarted"
          elif [[ -n ${del_since[$c]:-} ]] && ((SECONDS - del_since[$c] >= AGENTS_STUCK_DELETE_AFTER &&
            SECONDS - ${last_restart[$c]:--1000} >= 60)); then
            reason="$(grep -c . <<<"${del_ids[$c]}") deletion(s) pending for over $((AGENTS_STUCK_DELETE_AFTER / 2))s and none of them confirmed for $((SECONDS - del_since[$c]))s (the upstream race in agents.sh), which it resyncs when restarted"
          elif ((SECONDS - ${last_restart[$c]:--1000} >= 60)); then
            n=$(_agents_undelivered "$c") || n=0
            if ((n > 0)); then
              reason="$n bundle version(s) unacknowledged by the agent for over ${AGENTS_UNDELIVERED_AFTER}s (a spec notification Maestro lost, see agents.sh), which it resyncs when restarted"
            fi
          fi
          after_outage[$c]=0
        fi
      fi
      if [[ -z $reason ]]; then
        if ((${would_wedge[$c]:-0})); then
          log watchdog "$name: no restart is due any more"
          rm -f "$(_agent_flag_file "$c" would-wedge)"
          would_wedge[$c]=0
        fi
        continue
      fi
      # Anything but starting a gone agent: only when its resync is safe.
      if ((!gone)) && { [[ -z $total ]] || ((total > AGENTS_RESYNC_SAFE)); }; then
        if ((!${would_wedge[$c]:-0})); then
          would_wedge[$c]=1
          if [[ -z $total ]]; then
            log watchdog "$name: $reason; NOT restarting it while its bundles cannot be counted (Maestro's REST API does not answer)"
          else
            log watchdog "$name: $reason; NOT restarting it: would wedge: $total bundles, see docs/deletion-stall.md (a restarted agent resyncs safely only while its consumer holds at most AGENTS_RESYNC_SAFE=$AGENTS_RESYNC_SAFE)"
          fi
          printf '%s: %s; not restarted, would wedge: %s bundles (AGENTS_RESYNC_SAFE=%s), see docs/deletion-stall.md\n' \
            "$(date -Is)" "$reason" "${total:-?}" "$AGENTS_RESYNC_SAFE" >"$(_agent_flag_file "$c" would-wedge)"
        fi
        continue
      fi
      ((SECONDS >= ${next_try[$c]:-0})) || continue
      # agents.sh up or down is at work: leave it to them this round.
      _agents_lock 0 || continue
      last_restart[$c]=$SECONDS
      if ((${failures[$c]:-0} > 0)); then
        log watchdog "$name: $reason; restarting it (attempt $((failures[$c] + 1)))"
      else
        log watchdog "$name: $reason; restarting it"
      fi
      t0=$SECONDS
      rm -f "$(_agent_flag_file "$c" held)" "$(_agent_flag_file "$c" would-wedge)"
      would_wedge[$c]=0
      if _watchdog_restart "$c"; then
        log watchdog "$name subscribed again, $((SECONDS - t0))s after the restart"
        failures[$c]=0
        unhealthy[$c]=0
        after_outage[$c]=0
        unset "del_since[$c]"
      else
        failures[$c]=$((${failures[$c]:-0} + 1))
        delay=$((5 << (failures[$c] - 1)))
        ((delay <= AGENTS_RESTART_BACKOFF_MAX && failures[$c] < 16)) || delay=$AGENTS_RESTART_BACKOFF_MAX
        next_try[$c]=$((SECONDS + delay))
        log watchdog "$name did not come back (see $(proc_logfile "$name")); next attempt in ${delay}s"
      fi
    done
  done
}

# _agents_watchdog_stop : under the lock, so never while it is starting an
# agent (which would then run without a pid file).
_agents_watchdog_stop() {
  local pid
  _agents_lock
  if pid=$(proc_pid agents-watchdog); then
    # Its whole process group (its own session): the loop and whatever it is
    # waiting on, so nothing of it lives on to restart an agent. The agents
    # are in sessions of their own.
    kill -TERM -- "-$pid" 2>/dev/null || true
  fi
  proc_stop agents-watchdog TERM 10
}

_agents_watchdog_up() {
  ((AGENTS_WATCHDOG)) || return 0
  if proc_alive agents-watchdog; then
    [[ $(cat "$STACK_RUN_DIR/agents-watchdog.sum" 2>/dev/null) == "$(_agents_script_sum)" ]] && return 0
    log agents "the watchdog runs an older agents.sh; restarting it"
    _agents_watchdog_stop
  fi
  proc_start agents-watchdog bash "$STACK_SCRIPTS_DIR/agents.sh" watchdog
}

# -------------------------------------------------------------- lifecycle

# _agent_held CONSUMER : true when the watchdog stopped the consumer's agent
# because it wedged and the consumer still holds more than AGENTS_RESYNC_SAFE
# bundles (or they cannot be counted): `up` leaves it stopped, as the watchdog
# does. Once the count is down, the mark goes and `up` starts it.
_agent_held() {
  local flag total
  flag=$(_agent_flag_file "$1" held)
  [[ -f $flag ]] || return 1
  proc_alive "$(_agent_name "$1")" && return 1
  if total=$(_agents_bundles "$1") && ((total <= AGENTS_RESYNC_SAFE)); then
    rm -f "$flag"
    return 1
  fi
  return 0
}

agents_up() {
  local c all=1 held=()
  for c in $(_agents_consumers); do
    if _agent_held "$c"; then
      held+=("$c")
      continue
    fi
    _agent_running "$c" || all=0
  done
  for c in "${held[@]}"; do
    log agents "WARNING: leaving the $c agent stopped: it wedged on its resync and $c still holds more than $AGENTS_RESYNC_SAFE bundles ($(cat "$(_agent_flag_file "$c" held)")); see docs/deletion-stall.md for the recovery by hand"
  done
  if ((all)); then
    _agents_watchdog_up
    log agents "already running for: $STACK_CONSUMERS"
    return 0
  fi
  local st
  st=$(bash "$STACK_SCRIPTS_DIR/maestro.sh" status) ||
    die agents "Maestro is not ready ($st); start it first: tests/stack/maestro.sh up (or tests/stack/stack.sh up)"
  st=$(bash "$STACK_SCRIPTS_DIR/kube.sh" status) ||
    die agents "the API server is not ready ($st); start it first: tests/stack/kube.sh up (or tests/stack/stack.sh up)"
  _agents_resolve_bin
  require_cmd agents curl sha256sum flock
  _agents_kube_env
  # Not while the watchdog restarts an agent.
  _agents_lock
  local t0=$SECONDS
  _agents_prepare_cluster
  local -A offsets=()
  local total started=()
  for c in $(_agents_consumers); do
    [[ " ${held[*]} " == *" $c "* ]] && continue
    if ! proc_alive "$(_agent_name "$c")" && total=$(_agents_bundles "$c") && ((total > AGENTS_RESYNC_SAFE)); then
      log agents "WARNING: $c holds $total bundles, over AGENTS_RESYNC_SAFE=$AGENTS_RESYNC_SAFE: the fresh agent's resync may wedge (docs/deletion-stall.md); the watchdog stops it if it does"
    fi
    _agent_start "$c"
    offsets[$c]=$AGENT_LOG_OFFSET
    started+=("$c")
  done
  local deadline=$((SECONDS + AGENTS_WAIT_TIMEOUT))
  for c in "${started[@]}"; do
    _agent_wait "$c" "${offsets[$c]}" "$deadline"
  done
  log agents "subscribed and healthy after $((SECONDS - t0))s: ${started[*]}${held[*]:+ (left stopped: ${held[*]})}"
  _agents_watchdog_up
}

agents_down() {
  local pidfile name
  # First, so it does not restart what is being stopped; keeps the lock.
  _agents_watchdog_stop
  shopt -s nullglob
  # Every agent this stack started, also those of consumers since removed
  # from STACK_CONSUMERS; in parallel (each takes a second or two to drain).
  for pidfile in "$STACK_RUN_DIR"/agent-*.pid; do
    name=$(basename "$pidfile" .pid)
    if proc_alive "$name"; then
      log agents "stopping $name"
    fi
    proc_stop "$name" TERM 30 &
  done
  wait
  # Their self-signed serving certificates (see _agent_start), and the
  # watchdog's would-wedge verdicts (held marks stay: see "Resync wedge").
  rm -rf "$AGENTS_STATE_DIR"/*/tmp/serving-cert-*
  rm -f "$STACK_RUN_DIR"/agent-*.would-wedge
  log agents "stopped"
}

agents_status() {
  local c pid up=0 total=0 parts=()
  # The watchdog is part of the component: without it nothing restarts a
  # dead agent.
  local wd=off wd_ok=1 flag
  if ((AGENTS_WATCHDOG)); then
    wd=$(proc_pid agents-watchdog) || {
      wd=stopped
      wd_ok=0
    }
  fi
  for c in $(_agents_consumers); do
    total=$((total + 1))
    if pid=$(proc_pid "$(_agent_name "$c")"); then
      flag=$(_agent_flag_file "$c" would-wedge)
      if ! _agent_healthz "$c"; then
        parts+=("$c=$pid(unhealthy)")
      elif ((wd_ok)) && [[ $wd != off && -f $flag ]]; then
        # A restart is due but would wedge it (the watchdog's verdict).
        parts+=("$c=$pid(restart due but would wedge: $(cut -d' ' -f2- "$flag" | tr -d '\n'))")
      else
        up=$((up + 1))
        parts+=("$c=$pid")
      fi
    elif [[ -f $(_agent_flag_file "$c" held) ]]; then
      parts+=("$c=stopped(held: $(tr -d '\n' <"$(_agent_flag_file "$c" held)"); see docs/deletion-stall.md)")
    else
      parts+=("$c=stopped")
    fi
  done
  if ((total > 0 && up == total && wd_ok)); then
    echo "agents: running (${parts[*]}) watchdog=$wd broker=$STACK_HOST:$MAESTRO_BROKER_PORT logs=$STACK_LOG_DIR/agent-*.log"
    return 0
  elif ((up == 0)) && [[ ${parts[*]} != *'('* ]]; then
    if [[ $wd =~ ^[0-9]+$ ]]; then
      echo "agents: stopped (watchdog=$wd restarts them)"
    else
      echo "agents: stopped"
    fi
    return 3
  fi
  echo "agents: degraded (${parts[*]} watchdog=$wd)"
  return 1
}

agents_env() {
  local c ids=()
  for c in $(_agents_consumers); do
    ids+=("$c=$(_agent_id "$c")")
  done
  echo "export MAESTRO_AGENT_IDS=$(IFS=,; echo "${ids[*]}")"
}

component_main agents "$@"
