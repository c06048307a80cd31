#!/usr/bin/env bash
# `make demo-down`: stop the demo operator, the local cluster and the PostgreSQL server.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PID_FILE="${ROOT}/.cluster/demo-operator.pid"
if [[ -f "${PID_FILE}" ]]; then
  pid="$(cat "${PID_FILE}")"
  if kill -0 "${pid}" 2>/dev/null; then
    kill "${pid}"
    for _ in $(seq 1 50); do kill -0 "${pid}" 2>/dev/null || break; sleep 0.2; done
    kill -9 "${pid}" 2>/dev/null || true
  fi
  rm -f "${PID_FILE}"
  echo "[demo-down] operator stopped"
fi
"${ROOT}/hack/cluster/down.sh"
"${ROOT}/hack/postgres/down.sh"
