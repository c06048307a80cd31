#!/usr/bin/env bash
# `make demo`: the example flow on the local cluster, end to end, for real. The operator
# (jobs executor) makes a Job per task attempt; every Job's pod runs on the real node
# (kubelet, containerd, runc: hack/node/up.sh) from the runtime image built without Docker
# (hack/image/build.sh), runs `kascade task exec` → dbt, and builds the tables in the test
# PostgreSQL server (hack/postgres/up.sh), whose password reaches the pods from a Secret.
# Pushes examples/shop, applies its Flow with the warehouse and the placement added,
# triggers a run, follows it, shows the pods and the tables.
# Idempotent: run it again for another run. `make demo-down` stops everything.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "${ROOT}"
source hack/node/node.env
KASCADE="${ROOT}/.venv/bin/kascade"
NAMESPACE="${KASCADE_DEMO_NAMESPACE:-kascade-demo}"
DATABASE=shop_demo
STATE="${ROOT}/.kascade/demo-operator"
PID_FILE="${ROOT}/.cluster/demo-operator.pid"
LOG="${ROOT}/.cluster/demo-operator.log"
PG_PORT="$(cat .cluster/postgres/port)"
PG_PASSWORD_FILE="${ROOT}/.cluster/postgres/password"
export KUBECONFIG="${ROOT}/.cluster/kubeconfig"
KUBECTL="$("${ROOT}/hack/cluster/build.sh" --print-bin-dir)/kubectl"
PSQL="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)/psql"
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "CRDs and namespace (Pod Security: restricted)"
"${KUBECTL}" apply -f crds/
# a CRD just created may have no status yet, and `kubectl wait` then fails at once
for _ in $(seq 1 60); do
  "${KUBECTL}" wait --for=condition=Established crd --all --timeout=60s >/dev/null 2>&1 && break
  sleep 1
done
"${KUBECTL}" get namespace "${NAMESPACE}" >/dev/null 2>&1 || "${KUBECTL}" create namespace "${NAMESPACE}"
"${KUBECTL}" label --overwrite namespace "${NAMESPACE}" \
  pod-security.kubernetes.io/enforce=restricted pod-security.kubernetes.io/enforce-version=latest >/dev/null

say "warehouse: PostgreSQL database ${DATABASE} on ${NODE_HOST_IP}:${PG_PORT}, password in Secret warehouse"
PGPASSWORD="$(cat "${PG_PASSWORD_FILE}")" "${PSQL}" -qAt -h 127.0.0.1 -p "${PG_PORT}" -U kascade -d postgres \
  -c "select 1 from pg_database where datname = '${DATABASE}'" | grep -q 1 \
  || PGPASSWORD="$(cat "${PG_PASSWORD_FILE}")" "${PSQL}" -q -h 127.0.0.1 -p "${PG_PORT}" -U kascade -d postgres \
    -c "create database ${DATABASE}"
# the password goes to the API server on stdin, never on a command line
{
  printf 'apiVersion: v1\nkind: Secret\nmetadata: {name: warehouse}\nstringData:\n  password: "'
  tr -d '\n' <"${PG_PASSWORD_FILE}"
  printf '"\n'
} | "${KUBECTL}" apply -n "${NAMESPACE}" -f - >/dev/null
echo "secret/warehouse configured"

say "operator (jobs executor: a Job per task attempt, namespace ${NAMESPACE})"
if [[ -f "${PID_FILE}" ]] && kill -0 "$(cat "${PID_FILE}")" 2>/dev/null; then
  echo "already running (pid $(cat "${PID_FILE}"), log ${LOG})"
else
  mkdir -p "${STATE}"
  nohup "${KASCADE}" operator -n "${NAMESPACE}" --executor jobs --state-dir "${STATE}" \
    >"${LOG}" 2>&1 &
  echo $! >"${PID_FILE}"
  for _ in $(seq 1 100); do
    grep -q "event=started" "${LOG}" && break
    kill -0 "$(cat "${PID_FILE}")" 2>/dev/null || { cat "${LOG}"; exit 1; }
    sleep 0.1
  done
  echo "started (pid $(cat "${PID_FILE}"), log ${LOG})"
fi

say "project and Flow (with spec.warehouse, and task pods placed on the real node)"
"${KASCADE}" project push examples/shop --name shop-project -n "${NAMESPACE}" \
  --warehouse "postgresql://kascade@${NODE_HOST_IP}:${PG_PORT}/${DATABASE}"
"${KUBECTL}" apply -n "${NAMESPACE}" -f examples/shop/flow.yaml
"${KUBECTL}" patch flow shop-daily -n "${NAMESPACE}" --type merge -p "$(cat <<PATCH
spec:
  warehouse:
    type: postgres
    host: ${NODE_HOST_IP}
    port: ${PG_PORT}
    database: ${DATABASE}
    user: kascade
    passwordSecretRef: {name: warehouse, key: password}
  defaults:
    nodeSelector: {kascade.dev/node: real}
    tolerations: [{key: ${NODE_TAINT}, operator: Exists, effect: NoSchedule}]
PATCH
)"

say "run (progress follows)"
status=0
RUN="$("${KASCADE}" trigger shop-daily -n "${NAMESPACE}" --wait)" || status=$?
"${KASCADE}" status "${RUN}" -n "${NAMESPACE}"

say "kubectl get kascade"
"${KUBECTL}" get kascade -n "${NAMESPACE}"

say "the run's pods (real containers on ${NODE_NAME})"
"${KUBECTL}" get pods -n "${NAMESPACE}" -l "kascade.io/run=${RUN}" -o wide | head -12
echo "... $("${KUBECTL}" get pods -n "${NAMESPACE}" -l "kascade.io/run=${RUN}" --no-headers | wc -l) pods in all"

say "tables (PostgreSQL)"
"${KASCADE}" tables --warehouse "postgresql://kascade@127.0.0.1:${PG_PORT}/${DATABASE}" \
  --warehouse-password-file "${PG_PASSWORD_FILE}"
exit "${status}"
