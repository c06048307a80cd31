#!/usr/bin/env bash
# Start the local test cluster: `make cluster-up` (CLUSTER=kwok, the default) or
# `make cluster-up CLUSTER=kind` where Docker is available.
#
# kwok: kube-apiserver, etcd, kube-controller-manager (all default controllers: the Job
# controller and the garbage collector among them), kube-scheduler and kwok, started as
# plain processes by `kwokctl --runtime binary` from the binaries hack/cluster/build.sh
# builds from the Go module proxy; one fake node (kwok-node-0, for scale) and one real node
# (kascade-node-0: kubelet, containerd and runc, hack/node/up.sh, for truth). Idempotent: a
# healthy cluster is left as it is, a stopped one (after a reboot) is started again.
#
# Writes .cluster/kubeconfig. Env: KASCADE_CLUSTER_NAME (default kascade).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="${ROOT}/hack/cluster"
CLUSTER="${CLUSTER:-kwok}"
NAME="${KASCADE_CLUSTER_NAME:-kascade}"
STATE="${ROOT}/.cluster"
KUBECONFIG_OUT="${STATE}/kubeconfig"
mkdir -p "${STATE}"
log() { echo "[cluster-up $(date +%H:%M:%S)] $*"; }

if [[ "${CLUSTER}" == "kind" ]]; then
  command -v kind >/dev/null || { echo "error: CLUSTER=kind needs kind (and Docker) on PATH" >&2; exit 1; }
  if ! kind get clusters 2>/dev/null | grep -qx "${NAME}"; then
    kind create cluster --name "${NAME}" --kubeconfig "${KUBECONFIG_OUT}" --wait 2m
  fi
  kind get kubeconfig --name "${NAME}" >"${KUBECONFIG_OUT}"
  log "kind cluster ${NAME} is up; kubeconfig ${KUBECONFIG_OUT}"
  exit 0
fi
[[ "${CLUSTER}" == "kwok" ]] || { echo "error: CLUSTER must be kwok or kind, not ${CLUSTER}" >&2; exit 1; }

"${HERE}/build.sh"
BIN="$("${HERE}/build.sh" --print-bin-dir)"
source "${HERE}/versions.env"
export KWOK_WORKDIR="${STATE}/kwok"
export KWOK_KUBECTL_BINARY="${BIN}/kubectl"
KUBECTL=("${BIN}/kubectl" --kubeconfig "${KUBECONFIG_OUT}")

healthy() {
  [[ -s "${KUBECONFIG_OUT}" ]] && "${KUBECTL[@]}" get --raw /readyz >/dev/null 2>&1
}
exists() { "${BIN}/kwokctl" get clusters 2>/dev/null | grep -qx "${NAME}"; }

link_kubectl() {
  command -v kubectl >/dev/null && return 0
  local dir
  for dir in /usr/local/bin "${HOME}/.local/bin"; do
    if mkdir -p "${dir}" 2>/dev/null && [[ -w "${dir}" ]]; then
      ln -sf "${BIN}/kubectl" "${dir}/kubectl"
      log "linked kubectl ${KUBECTL_VERSION} into ${dir}"
      return 0
    fi
  done
  log "kubectl is at ${BIN}/kubectl (no writable folder on PATH to link it into)"
}

if exists && healthy; then
  log "cluster ${NAME} is already up; kubeconfig ${KUBECONFIG_OUT}"
  link_kubectl
  "${ROOT}/hack/node/up.sh"
  exit 0
fi
if exists; then
  log "cluster ${NAME} exists but is not answering: starting it again"
  if ! "${BIN}/kwokctl" start cluster --name "${NAME}" --wait 2m || ! healthy; then
    log "restart failed: deleting and creating it anew"
    "${BIN}/kwokctl" delete cluster --name "${NAME}" || true
  fi
fi

if ! exists; then
  # kwok's stock stages, from the pinned kwok module, then kascade's own.
  KWOK_SRC="$(GOFLAGS=-mod=mod go mod download -json "sigs.k8s.io/kwok@${KWOK_VERSION}" \
    | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')"
  [[ -d "${KWOK_SRC}" ]] || { echo "error: cannot find sigs.k8s.io/kwok@${KWOK_VERSION}" >&2; exit 1; }
  STAGES="${KWOK_SRC}/kustomize/stage"
  CONFIG="${STATE}/kwok-config.yaml"
  {
    for file in node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
      pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml \
      pod/chaos/pod-container-running-failed.yaml; do
      echo "---"
      cat "${STAGES}/${file}"
    done
    echo "---"
    cat "${HERE}/kwok-stages.yaml"
    # kwok fakes only the nodes annotated as fake: the real node's pods are the kubelet's
    echo "---"
    cat <<'KWOK'
apiVersion: config.kwok.x-k8s.io/v1alpha1
kind: KwokctlConfiguration
componentsPatches:
- name: kwok-controller
  extraArgs:
  - {key: manage-all-nodes, value: "false"}
  - {key: manage-nodes-with-annotation-selector, value: kwok.x-k8s.io/node=fake}
# the real node's name resolves nowhere: reach its kubelet (logs, exec) by its address
- name: kube-apiserver
  extraArgs:
  - {key: kubelet-preferred-address-types, value: InternalIP}
KWOK
  } >"${CONFIG}"
  t0=${SECONDS}
  log "creating cluster ${NAME} (kubernetes ${KUBERNETES_VERSION}, kwok ${KWOK_VERSION})"
  "${BIN}/kwokctl" create cluster --name "${NAME}" --runtime binary \
    --config "${CONFIG}" \
    --disable-qps-limits \
    --kubeconfig "${KUBECONFIG_OUT}" \
    --kube-apiserver-binary "${BIN}/kube-apiserver" \
    --kube-controller-manager-binary "${BIN}/kube-controller-manager" \
    --kube-scheduler-binary "${BIN}/kube-scheduler" \
    --etcd-binary "${BIN}/etcd" \
    --kwok-controller-binary "${BIN}/kwok" \
    --wait 2m
  log "created in $((SECONDS - t0))s"
fi

"${BIN}/kwokctl" get kubeconfig --name "${NAME}" >"${KUBECONFIG_OUT}.tmp"
mv -f "${KUBECONFIG_OUT}.tmp" "${KUBECONFIG_OUT}"
if ! "${KUBECTL[@]}" get node kwok-node-0 >/dev/null 2>&1; then
  "${KUBECTL[@]}" apply -f - >/dev/null <<'NODE'
apiVersion: v1
kind: Node
metadata:
  name: kwok-node-0
  annotations:
    kwok.x-k8s.io/node: fake
    node.alpha.kubernetes.io/ttl: "0"
  labels:
    kubernetes.io/hostname: kwok-node-0
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    type: kwok
NODE
fi
"${KUBECTL[@]}" wait --for=condition=Ready node/kwok-node-0 --timeout=60s >/dev/null
"${KUBECTL[@]}" wait --for=create serviceaccount/default -n default --timeout=60s >/dev/null
link_kubectl
log "cluster ${NAME} is up: node kwok-node-0 Ready; kubeconfig ${KUBECONFIG_OUT}"
"${ROOT}/hack/node/up.sh"
