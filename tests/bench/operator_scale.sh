#!/usr/bin/env bash
# Operator at fleet scale: tests/bench/operator_load.sh with 10,000 objects
# of about 5 KiB (as the API server serves them, status included) over 100
# consumers: the stack's two agent-served ones (100 objects each, the most
# an agent takes back safely, docs/deletion-stall.md) and 98 registered
# without an agent. Prints the publish time, the operator's RSS (peak and
# after STEADY_SECONDS), the REST requests in the steady period with the
# status stream up, and after a restart with all objects in place the time
# until every object is reconciled again, the publishes made (none
# expected) and the REST requests of that resync.
#
#   bash tests/bench/operator_scale.sh [N] [STEADY_SECONDS]
#
# The agentless objects time out 10 minutes after their publish (the default
# timeout): each gets a status write and a Warning event, which the operator
# remembers for 7 minutes. A STEADY_SECONDS shorter than that reads the
# operator in that wave; the RSS after the restart is the steady state.
#
# Creation goes in batches of 500 with a progress line each, and the publish
# wait is 90 minutes (PUBLISH_WAIT): on a 2-core machine the API server,
# etcd and Maestro, not the operator's 20/s limit, set the pace. Any of
# operator_load.sh's settings can be given in the environment.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
export CONSUMERS=${CONSUMERS:-100} OBJECT_KIB=${OBJECT_KIB:-1} RESTART=${RESTART:-1}
export CREATE_BATCH=${CREATE_BATCH:-500} PUBLISH_WAIT=${PUBLISH_WAIT:-5400}
exec bash tests/bench/operator_load.sh "${1:-10000}" "${2:-120}"
