#!/usr/bin/env bash
# Stop the real node (called by hack/cluster/down.sh): the kubelet, every container and
# pod sandbox, containerd, and the pod network; then remove the node's state. A no-op when
# nothing runs.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
source "$(dirname "${BASH_SOURCE[0]}")/node.env"
log() { echo "[node-down $(date +%H:%M:%S)] $*"; }

# stop <pid file> <what>: SIGTERM, then SIGKILL after 10 s
stop() {
  local pid
  [[ -s "$1" ]] || return 0
  pid="$(cat "$1")"
  if kill -0 "${pid}" 2>/dev/null; then
    kill "${pid}" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "${pid}" 2>/dev/null || break; sleep 0.1; done
    kill -9 "${pid}" 2>/dev/null || true
    log "stopped $2"
  fi
  rm -f "$1"
}

[[ -d "${NODE_STATE}" ]] || exit 0
stop "${NODE_STATE}/kubelet.pid" kubelet
# the Node object goes too, when the control plane is still there
KUBECONFIG_FILE="${ROOT}/.cluster/kubeconfig"
if [[ -s "${KUBECONFIG_FILE}" ]]; then
  "$("${ROOT}/hack/cluster/build.sh" --print-bin-dir)/kubectl" --kubeconfig "${KUBECONFIG_FILE}" \
    delete node "${NODE_NAME}" --ignore-not-found --wait=false --request-timeout=10s >/dev/null 2>&1 || true
fi
if [[ -S "${CONTAINERD_SOCKET}" ]]; then
  CTR=(ctr --address "${CONTAINERD_SOCKET}" --namespace k8s.io)
  for task in $("${CTR[@]}" tasks ls -q 2>/dev/null); do
    "${CTR[@]}" tasks kill -s SIGKILL "${task}" >/dev/null 2>&1 || true
  done
  for task in $("${CTR[@]}" tasks ls -q 2>/dev/null); do
    for _ in $(seq 1 50); do "${CTR[@]}" tasks delete "${task}" >/dev/null 2>&1 && break; sleep 0.1; done
  done
fi
stop "${NODE_STATE}/containerd.pid" containerd
# shims outlive containerd by design; these are the node's
pkill -f "containerd-shim-runc-v2 .*-address ${CONTAINERD_SOCKET}" 2>/dev/null || true
# pod network namespaces the CNI made, and the bridge
for netns in $(ip netns list 2>/dev/null | awk '/^cni-/ {print $1}'); do
  ip netns delete "${netns}" 2>/dev/null || true
done
ip link delete "${NODE_BRIDGE}" 2>/dev/null || true
# what the kubelet and containerd mounted under the state dirs (deepest first)
for dir in "${NODE_STATE}" "${NODE_RUN}"; do
  awk -v d="${dir}/" 'index($2, d) == 1 {print $2}' /proc/mounts | sort -r | while read -r mnt; do
    umount -l "${mnt}" 2>/dev/null || true
  done
done
rm -rf "${NODE_STATE}" "${NODE_RUN}"
log "node ${NODE_NAME} is down"
