#!/usr/bin/env bash
# A real node beside kwok's fake one (called by hack/cluster/up.sh): containerd and runc
# from Debian's packages, a kubelet built from the same Kubernetes module as the control
# plane (hack/cluster/build.sh), and the pod network on a bridge of this machine only.
#
#   node        kascade-node-0, label kascade.dev/node=real, taint kascade.dev/real-node:NoSchedule
#               (only pods that tolerate it land here; everything else stays on kwok)
#   network     bridge kascade0, 10.88.0.1/16 (Debian's containernetworking-plugins);
#               the host is 10.88.0.1 for pods: the test PostgreSQL server listens there too
#   images      kascade.local/pause:1 (the sandbox; hack/node/pause.c) and, when built,
#               the runtime image (hack/image/build.sh), imported into containerd: this
#               machine reaches no image registry, so nothing is ever pulled
#   state       .cluster/node (containerd's root, the kubelet's root, logs, pid files)
#
# Needs root (containerd, mounts, network namespaces). Idempotent: what runs is left as it
# is. A missing prerequisite fails with the reason; nothing is skipped.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="${ROOT}/hack/node"
source "${HERE}/node.env"
KUBECONFIG_FILE="${ROOT}/.cluster/kubeconfig"
BIN="$("${ROOT}/hack/cluster/build.sh" --print-bin-dir)"
KUBECTL=("${BIN}/kubectl" --kubeconfig "${KUBECONFIG_FILE}")
log() { echo "[node-up $(date +%H:%M:%S)] $*"; }
fail() { echo "[node-up] error: $*" >&2; exit 1; }

# ---------------------------------------------------------------------------
# prerequisites
# ---------------------------------------------------------------------------
[[ "$(id -u)" == 0 ]] || fail "the real node needs root (containerd, mounts, network namespaces); run as root"
for tool in containerd containerd-shim-runc-v2 runc ctr ip gcc; do
  command -v "${tool}" >/dev/null || fail "${tool} is not installed: make node-packages (Debian's containerd runc containernetworking-plugins iproute2 gcc)"
done
for plugin in bridge host-local loopback; do
  [[ -x "${CNI_BIN_DIR}/${plugin}" ]] || fail "the CNI plugin ${CNI_BIN_DIR}/${plugin} is missing: make node-packages (Debian's containernetworking-plugins)"
done
[[ -x "${BIN}/kubelet" ]] || fail "no kubelet in ${BIN}: run hack/cluster/build.sh"
grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null || fail "the kernel has no overlay filesystem (containerd's snapshotter needs it)"
[[ -s "${KUBECONFIG_FILE}" ]] && "${KUBECTL[@]}" get --raw /readyz >/dev/null 2>&1 \
  || fail "the control plane is not up (${KUBECONFIG_FILE}); start it with hack/cluster/up.sh"
mkdir -p "${NODE_STATE}" "${NODE_RUN}" "${NODE_STATE}/cni"

running() { [[ -s "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

# ---------------------------------------------------------------------------
# network: the bridge the pods join (made here so that the host's address on it exists
# before any pod does, and servers on the host can listen on it)
# ---------------------------------------------------------------------------
if ! ip link show "${NODE_BRIDGE}" >/dev/null 2>&1; then
  ip link add "${NODE_BRIDGE}" type bridge
fi
# A bridge without an address of its own takes the lowest MAC of its ports, so it changes
# whenever a pod comes or goes, and pods that cached the old one lose the host (their
# connections to 10.88.0.1 time out): give it a fixed, locally administered one.
ip link set dev "${NODE_BRIDGE}" address "${NODE_BRIDGE_MAC}"
ip addr show dev "${NODE_BRIDGE}" | grep -q "inet ${NODE_HOST_IP}/" \
  || ip addr add "${NODE_HOST_IP}/${NODE_POD_PREFIX}" dev "${NODE_BRIDGE}"
ip link set "${NODE_BRIDGE}" up
cat >"${NODE_STATE}/cni/10-kascade.conflist" <<CNI
{
  "cniVersion": "1.0.0",
  "name": "kascade",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "${NODE_BRIDGE}",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "${NODE_STATE}/cni/ipam",
        "ranges": [[{"subnet": "${NODE_POD_SUBNET}", "gateway": "${NODE_HOST_IP}"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    }
  ]
}
CNI

# ---------------------------------------------------------------------------
# containerd
# ---------------------------------------------------------------------------
cat >"${NODE_STATE}/containerd.toml" <<TOML
version = 2
root = "${NODE_STATE}/containerd"
state = "${NODE_RUN}/state"
[grpc]
  address = "${CONTAINERD_SOCKET}"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "${PAUSE_IMAGE}"
  # root here lacks CAP_SYS_RESOURCE, so no process may lower its OOM score below
  # containerd's (the kubelet asks -998 for sandboxes): clamp instead of failing
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "${CNI_BIN_DIR}"
    conf_dir = "${NODE_STATE}/cni"
TOML
CTR=(ctr --address "${CONTAINERD_SOCKET}" --namespace k8s.io)
if running "${NODE_STATE}/containerd.pid" && "${CTR[@]}" version >/dev/null 2>&1; then
  log "containerd is running"
else
  log "starting containerd ($(containerd --version | awk '{print $3}'))"
  nohup containerd --config "${NODE_STATE}/containerd.toml" >"${NODE_STATE}/containerd.log" 2>&1 &
  echo $! >"${NODE_STATE}/containerd.pid"
  for _ in $(seq 1 100); do "${CTR[@]}" version >/dev/null 2>&1 && break; sleep 0.1; done
  "${CTR[@]}" version >/dev/null 2>&1 || { tail -20 "${NODE_STATE}/containerd.log" >&2; fail "containerd did not start (log above)"; }
fi

# ---------------------------------------------------------------------------
# images: the sandbox (built here), the runtime image (when hack/image/build.sh made it)
# ---------------------------------------------------------------------------
# import_archive <image name> <archive>: import unless containerd already has that archive
import_archive() {
  local image=$1 archive=$2 stamp sum
  stamp="${NODE_STATE}/imported.$(echo "${image}" | tr '/:' '__')"
  sum="$(sha256sum "${archive}" | cut -c1-64)"
  if [[ "$(cat "${stamp}" 2>/dev/null)" == "${sum}" ]] && "${CTR[@]}" images ls -q "name==${image}" | grep -q .; then
    return 0
  fi
  local t0=${SECONDS}
  "${CTR[@]}" images import --no-unpack=false "${archive}" >/dev/null
  "${CTR[@]}" images ls -q "name==${image}" | grep -q . || fail "${archive} holds no image ${image}"
  echo "${sum}" >"${stamp}"
  log "imported ${image} in $((SECONDS - t0))s"
}
PAUSE_DIR="${NODE_STATE}/pause"
mkdir -p "${PAUSE_DIR}/rootfs"
if [[ ! -x "${PAUSE_DIR}/rootfs/pause" || "${HERE}/pause.c" -nt "${PAUSE_DIR}/rootfs/pause" ]]; then
  gcc -O2 -static -Wall -Wextra -o "${PAUSE_DIR}/rootfs/pause" "${HERE}/pause.c"
  tar --numeric-owner --owner=0 --group=0 -C "${PAUSE_DIR}/rootfs" -cf "${PAUSE_DIR}/layer.tar" pause
  echo '{"Entrypoint": ["/pause"], "User": "65535:65535"}' >"${PAUSE_DIR}/config.json"
  "${ROOT}/hack/image/ociimage.sh" -config "${PAUSE_DIR}/config.json" -tag "${PAUSE_IMAGE}" \
    -o "${PAUSE_DIR}/image.tar" "${PAUSE_DIR}/layer.tar"
fi
import_archive "${PAUSE_IMAGE}" "${PAUSE_DIR}/image.tar"
RUNTIME_ARCHIVE="$("${ROOT}/hack/image/build.sh" --print-archive)"
if [[ -s "${RUNTIME_ARCHIVE}" ]]; then
  import_archive "$("${ROOT}/hack/image/build.sh" --print-tag)" "${RUNTIME_ARCHIVE}"
else
  log "no runtime image built yet (make runtime-image); task pods on this node need it"
fi

# ---------------------------------------------------------------------------
# kubelet
# ---------------------------------------------------------------------------
cat >"${NODE_STATE}/kubelet.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# this machine's kernel mounts cgroup v1, which kubelet 1.35+ refuses unless told
failCgroupV1: false
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://${CONTAINERD_SOCKET}
failSwapOn: false
# serve on the bridge address only (not reachable from outside this machine); the API
# server of the test cluster has no kubelet client certificate, so logs and exec are open
# to what reaches this address: a test cluster, never a production setting
address: ${NODE_HOST_IP}
port: ${KUBELET_PORT}
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: ${KUBELET_HEALTHZ_PORT}
authentication:
  anonymous: {enabled: true}
  webhook: {enabled: false}
authorization: {mode: AlwaysAllow}
registerWithTaints:
- {key: ${NODE_TAINT}, value: "true", effect: NoSchedule}
# imported images can't be pulled again: never collect them
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, imagefs.available: 1%, nodefs.inodesFree: 1%}
serializeImagePulls: false
maxPods: 40
resolvConf: /etc/resolv.conf
YAML
healthy_kubelet() { curl -fsS "http://127.0.0.1:${KUBELET_HEALTHZ_PORT}/healthz" >/dev/null 2>&1; }
if running "${NODE_STATE}/kubelet.pid" && healthy_kubelet; then
  log "kubelet is running"
else
  log "starting kubelet ($("${BIN}/kubelet" --version))"
  mkdir -p "${NODE_STATE}/kubelet"
  nohup "${BIN}/kubelet" --config "${NODE_STATE}/kubelet.yaml" --kubeconfig "${KUBECONFIG_FILE}" \
    --root-dir "${NODE_STATE}/kubelet" --hostname-override "${NODE_NAME}" --node-ip "${NODE_HOST_IP}" \
    --node-labels "kascade.dev/node=real" >"${NODE_STATE}/kubelet.log" 2>&1 &
  echo $! >"${NODE_STATE}/kubelet.pid"
fi
t0=${SECONDS}
until "${KUBECTL[@]}" get node "${NODE_NAME}" >/dev/null 2>&1; do
  running "${NODE_STATE}/kubelet.pid" || { tail -30 "${NODE_STATE}/kubelet.log" >&2; fail "kubelet exited (log above)"; }
  (( SECONDS - t0 < 90 )) || { tail -30 "${NODE_STATE}/kubelet.log" >&2; fail "kubelet did not register node ${NODE_NAME} in 90s (log above)"; }
  sleep 0.5
done
"${KUBECTL[@]}" wait --for=condition=Ready "node/${NODE_NAME}" --timeout=120s >/dev/null \
  || { tail -30 "${NODE_STATE}/kubelet.log" >&2; fail "node ${NODE_NAME} is not Ready (kubelet log above)"; }
log "node ${NODE_NAME} is Ready (kubelet $("${BIN}/kubelet" --version | awk '{print $2}'), containerd $(containerd --version | awk '{print $3}'), pods on ${NODE_POD_SUBNET})"
