#!/usr/bin/env bash
# Stop and delete the local test cluster (`make cluster-down`); a no-op when none runs.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="${ROOT}/hack/cluster"
CLUSTER="${CLUSTER:-kwok}"
NAME="${KASCADE_CLUSTER_NAME:-kascade}"
STATE="${ROOT}/.cluster"

if [[ "${CLUSTER}" == "kind" ]]; then
  if command -v kind >/dev/null && kind get clusters 2>/dev/null | grep -qx "${NAME}"; then
    kind delete cluster --name "${NAME}"
  fi
else
  "${ROOT}/hack/node/down.sh"
  BIN="$("${HERE}/build.sh" --print-bin-dir)"
  export KWOK_WORKDIR="${STATE}/kwok"
  if [[ -x "${BIN}/kwokctl" ]] && "${BIN}/kwokctl" get clusters 2>/dev/null | grep -qx "${NAME}"; then
    "${BIN}/kwokctl" delete cluster --name "${NAME}" --kubeconfig "${STATE}/kubeconfig"
  fi
fi
rm -f "${STATE}/kubeconfig"
echo "[cluster-down] cluster ${NAME} is down"
