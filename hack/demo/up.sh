#!/usr/bin/env bash
# `make demo`: the example flow on the local cluster, end to end. Starts the cluster and
# the operator (local executor: tasks run as processes here, real SQL on DuckDB), pushes
# examples/shop, applies its Flow, triggers a run, follows it, shows the tables.
# Idempotent: run it again for another run. `make demo-down` stops everything.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "${ROOT}"
KASCADE="${ROOT}/.venv/bin/kascade"
NAMESPACE="${KASCADE_DEMO_NAMESPACE:-kascade-demo}"
STATE="${ROOT}/.kascade/demo-operator"
PID_FILE="${ROOT}/.cluster/demo-operator.pid"
LOG="${ROOT}/.cluster/demo-operator.log"
export KUBECONFIG="${ROOT}/.cluster/kubeconfig"
KUBECTL="$("${ROOT}/hack/cluster/build.sh" --print-bin-dir)/kubectl"
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "CRDs"
"${KUBECTL}" apply -f crds/
"${KUBECTL}" wait --for=condition=Established crd --all --timeout=60s >/dev/null
"${KUBECTL}" get namespace "${NAMESPACE}" >/dev/null 2>&1 || "${KUBECTL}" create namespace "${NAMESPACE}"

say "operator (local executor, namespace ${NAMESPACE})"
if [[ -f "${PID_FILE}" ]] && kill -0 "$(cat "${PID_FILE}")" 2>/dev/null; then
  echo "already running (pid $(cat "${PID_FILE}"), log ${LOG})"
else
  mkdir -p "${STATE}"
  nohup "${KASCADE}" operator -n "${NAMESPACE}" --executor local --state-dir "${STATE}" \
    >"${LOG}" 2>&1 &
  echo $! >"${PID_FILE}"
  for _ in $(seq 1 100); do
    grep -q "event=started" "${LOG}" && break
    kill -0 "$(cat "${PID_FILE}")" 2>/dev/null || { cat "${LOG}"; exit 1; }
    sleep 0.1
  done
  echo "started (pid $(cat "${PID_FILE}"), log ${LOG})"
fi

say "project and Flow"
"${KASCADE}" project push examples/shop --name shop-project -n "${NAMESPACE}"
"${KUBECTL}" apply -n "${NAMESPACE}" -f examples/shop/flow.yaml

say "run (progress follows)"
status=0
RUN="$("${KASCADE}" trigger shop-daily -n "${NAMESPACE}" --wait)" || status=$?
"${KASCADE}" status "${RUN}" -n "${NAMESPACE}"

say "kubectl get kascade"
"${KUBECTL}" get kascade -n "${NAMESPACE}"

say "tables"
"${KASCADE}" tables --warehouse "duckdb:///${STATE}/warehouse.duckdb"
exit "${status}"
