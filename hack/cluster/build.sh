#!/usr/bin/env bash
# Build a real Kubernetes control plane (kube-apiserver, kube-controller-manager,
# kube-scheduler, kubectl), etcd, kwok, kwokctl and helm from source via the Go
# module proxy -- no Docker, no GitHub release downloads. Also fetch the
# prometheus-operator CRDs of ServiceMonitor and PrometheusRule (from the same
# proxy) so that tests can dry-run the Helm chart's monitoring objects.
#
# Output: ${KASCADE_CACHE:-$HOME/.cache/kascade}/k8s/<KUBERNETES_VERSION>/bin/
#         ${KASCADE_CACHE:-$HOME/.cache/kascade}/k8s/<KUBERNETES_VERSION>/crds/
#           monitoring.coreos.com_{servicemonitors,prometheusrules}.yaml
# Versions: hack/cluster/versions.env
#
# Idempotent: every binary that already exists and reports the expected version
# is skipped, so a second run finishes in seconds. Go's module and build caches
# (GOMODCACHE / GOCACHE, Go defaults unless set in the environment) are reused.
#
# Usage: hack/cluster/build.sh [--print-bin-dir | --print-crd-dir]
#   --print-bin-dir   only print the bin dir for the pinned versions and exit
#   --print-crd-dir   only print the dir of the prometheus-operator CRDs and exit
# Env:   KASCADE_CACHE   cache root (default ~/.cache/kascade)
#        KASCADE_BUILD_P go build -p value (default 2)
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "${SCRIPT_DIR}/versions.env"

: "${KUBERNETES_VERSION:?}" "${ETCD_VERSION:?}" "${KWOK_VERSION:?}"
: "${HELM_VERSION:?}" "${PROMETHEUS_OPERATOR_VERSION:?}"
KUBECTL_VERSION="${KUBECTL_VERSION:-${KUBERNETES_VERSION}}"
if [[ "${KUBECTL_VERSION}" != "${KUBERNETES_VERSION}" ]]; then
  echo "error: KUBECTL_VERSION (${KUBECTL_VERSION}) must equal KUBERNETES_VERSION (${KUBERNETES_VERSION}); kubectl is built from k8s.io/kubernetes" >&2
  exit 1
fi

CACHE_ROOT="${KASCADE_CACHE:-${HOME}/.cache/kascade}"
K8S_DIR="${CACHE_ROOT}/k8s/${KUBERNETES_VERSION}"
BIN_DIR="${K8S_DIR}/bin"
SRC_DIR="${K8S_DIR}/src"     # generated wrapper modules (go.mod/go.sum only)
CRD_DIR="${K8S_DIR}/crds"     # prometheus-operator CRDs (ServiceMonitor, PrometheusRule)
MARKER="${BIN_DIR}/.kascade-build"
PROM_CRDS=(monitoring.coreos.com_servicemonitors.yaml monitoring.coreos.com_prometheusrules.yaml)

case "${1:-}" in
  --print-bin-dir) echo "${BIN_DIR}"; exit 0 ;;
  --print-crd-dir) echo "${CRD_DIR}"; exit 0 ;;
esac

export GOTOOLCHAIN=local
export CGO_ENABLED=0
export GOFLAGS="-buildvcs=false"
BUILD_P="${KASCADE_BUILD_P:-2}"

ver_nov() { echo "${1#v}"; }
K8S_SEMVER="$(ver_nov "${KUBERNETES_VERSION}")"      # 1.36.3
K8S_MAJOR="${K8S_SEMVER%%.*}"                         # 1
K8S_MINOR="$(echo "${K8S_SEMVER}" | cut -d. -f2)"     # 36
STAGING_VERSION="v0.${K8S_MINOR}.${K8S_SEMVER##*.}"   # v0.36.3

T_START=${SECONDS}
fmt_dur() { local s=$1; printf '%dm%02ds' $((s / 60)) $((s % 60)); }
log() { echo "[build.sh $(date +%H:%M:%S)] $*"; }

# ---------------------------------------------------------------------------
# expected "--version" output per binary
# ---------------------------------------------------------------------------
version_cmd() {
  case "$1" in
    kubectl) echo "version --client" ;;
    helm) echo "version --short" ;;
    *) echo "--version" ;;
  esac
}
version_expect() {
  case "$1" in
    kube-apiserver | kube-controller-manager | kube-scheduler | kubelet) echo "Kubernetes ${KUBERNETES_VERSION}" ;;
    kubectl) echo "Client Version: ${KUBECTL_VERSION}" ;;
    etcd) echo "etcd Version: $(ver_nov "${ETCD_VERSION}")" ;;
    kwok | kwokctl) echo "$(ver_nov "${KWOK_VERSION}")" ;;
    helm) echo "${HELM_VERSION}" ;;
  esac
}
# is_cached <name> [path]: binary exists and reports the expected version
is_cached() {
  local name=$1 path=${2:-${BIN_DIR}/$1} out
  [[ -x "${path}" ]] || return 1
  # shellcheck disable=SC2046
  out="$("${path}" $(version_cmd "${name}") 2>&1)" || return 1
  grep -qF -- "$(version_expect "${name}")" <<<"${out}"
}

ALL_BINS=(kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl etcd kwok kwokctl helm)
EXPECTED_MARKER="$(grep -E '^[A-Z_]+=' "${SCRIPT_DIR}/versions.env")"

# fast path: everything present and correct
fast_path() {
  [[ -f "${MARKER}" ]] || return 1
  [[ "$(grep -E '^[A-Z_]+=' "${MARKER}")" == "${EXPECTED_MARKER}" ]] || return 1
  local b
  for b in "${ALL_BINS[@]}"; do is_cached "${b}" || return 1; done
  crds_cached
}
# the prometheus-operator CRDs of the pinned version are in CRD_DIR
crds_cached() {
  local f
  [[ "$(cat "${CRD_DIR}/.version" 2>/dev/null)" == "${PROMETHEUS_OPERATOR_VERSION}" ]] || return 1
  for f in "${PROM_CRDS[@]}"; do [[ -s "${CRD_DIR}/${f}" ]] || return 1; done
}
if fast_path; then
  log "all binaries cached in ${BIN_DIR} ($(fmt_dur $((SECONDS - T_START))))"
  exit 0
fi

# ---------------------------------------------------------------------------
# preflight
# ---------------------------------------------------------------------------
command -v go >/dev/null || { echo "error: go not found in PATH" >&2; exit 1; }
GO_HAVE="$(go env GOVERSION)"; GO_HAVE="${GO_HAVE#go}"
mkdir -p "${BIN_DIR}" "${SRC_DIR}"

# one build at a time per version
exec 9>"${K8S_DIR}/.lock"
if command -v flock >/dev/null; then
  flock 9
  # another run may have finished while we waited
  if fast_path; then log "all binaries cached in ${BIN_DIR} (built by a concurrent run)"; exit 0; fi
fi

version_ge() { [[ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -1)" == "$2" ]]; }
require_go() { # require_go <go directive> <what>
  if ! version_ge "${GO_HAVE}" "$1"; then
    echo "error: $2 needs go >= $1 but installed go is ${GO_HAVE} (GOTOOLCHAIN=local)." >&2
    echo "       pick an older version in hack/cluster/versions.env" >&2
    exit 1
  fi
}

log "cache: ${K8S_DIR}"
log "go ${GO_HAVE}, GOMODCACHE=$(go env GOMODCACHE), GOCACHE=$(go env GOCACHE), -p ${BUILD_P}"
log "versions: kubernetes ${KUBERNETES_VERSION} (staging ${STAGING_VERSION}), etcd ${ETCD_VERSION}, kwok ${KWOK_VERSION}"
log "          helm ${HELM_VERSION}, prometheus-operator CRDs ${PROMETHEUS_OPERATOR_VERSION}"

# go_mod_file <module@version>: path to the module's go.mod in the download cache
go_mod_file() {
  go mod download -json "$1" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p'
}
# go_mod_dir <module@version>: the module's extracted source in the download cache
go_mod_dir() {
  go mod download -json "$1" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p'
}
# go_directive <go.mod>
go_directive() { sed -n 's/^go \([0-9.]*\).*/\1/p' "$1" | head -1; }

# build_one <name> <wrapper dir> <package> <ldflags>
build_one() {
  local name=$1 dir=$2 pkg=$3 ldflags=$4 t0=${SECONDS} tmp
  if is_cached "${name}"; then
    log "  ${name}: cached"
    return 0
  fi
  log "  ${name}: building ${pkg} ..."
  tmp="${BIN_DIR}/.${name}.tmp.$$"
  rm -f "${tmp}"
  (cd "${dir}" && go build -p "${BUILD_P}" -trimpath -ldflags "-s -w ${ldflags}" -o "${tmp}" "${pkg}")
  if ! is_cached "${name}" "${tmp}"; then
    echo "error: ${name} built but '$(version_cmd "${name}")' does not report '$(version_expect "${name}")':" >&2
    # shellcheck disable=SC2046
    "${tmp}" $(version_cmd "${name}") >&2 || true
    rm -f "${tmp}"
    exit 1
  fi
  mv -f "${tmp}" "${BIN_DIR}/${name}"
  log "  ${name}: built in $(fmt_dur $((SECONDS - t0))) ($(du -h "${BIN_DIR}/${name}" | cut -f1))"
}

# install_one <name> <package@version> <ldflags>: `go install` for modules whose go.mod
# has no replace directives (no wrapper module needed); same checks as build_one
install_one() {
  local name=$1 pkg=$2 ldflags=$3 t0=${SECONDS} tmp
  if is_cached "${name}"; then
    log "  ${name}: cached"
    return 0
  fi
  log "  ${name}: installing ${pkg} ..."
  tmp="${BIN_DIR}/.${name}.tmp.$$"
  rm -rf "${tmp}"
  mkdir -p "${tmp}"
  GOBIN="${tmp}" go install -p "${BUILD_P}" -ldflags "-s -w ${ldflags}" "${pkg}"
  if ! is_cached "${name}" "${tmp}/${name}"; then
    echo "error: ${name} built but '$(version_cmd "${name}")' does not report '$(version_expect "${name}")':" >&2
    # shellcheck disable=SC2046
    "${tmp}/${name}" $(version_cmd "${name}") >&2 || true
    rm -rf "${tmp}"
    exit 1
  fi
  mv -f "${tmp}/${name}" "${BIN_DIR}/${name}"
  rm -rf "${tmp}"
  log "  ${name}: built in $(fmt_dur $((SECONDS - t0))) ($(du -h "${BIN_DIR}/${name}" | cut -f1))"
}

# write_wrapper <dir> <go directive> <go.mod body> ; then go mod tidy
write_wrapper() {
  local dir=$1 godir=$2 body=$3 want
  mkdir -p "${dir}"
  want="$(printf 'module kascade.local/build/%s\n\ngo %s\n\n%s\n' "$(basename "${dir}")" "${godir}" "${body}")"
  # keep go.sum if go.mod is unchanged
  if [[ ! -f "${dir}/go.mod" || "$(cat "${dir}/go.mod.in" 2>/dev/null)" != "${want}" ]]; then
    printf '%s\n' "${want}" >"${dir}/go.mod.in"
    cp "${dir}/go.mod.in" "${dir}/go.mod"
    rm -f "${dir}/go.sum"
    (cd "${dir}" && go mod tidy)
  fi
}

need_build() { local b; for b in "$@"; do is_cached "${b}" || return 0; done; return 1; }

# ---------------------------------------------------------------------------
# 1. Kubernetes: kube-apiserver, kube-controller-manager, kube-scheduler, kubectl
# ---------------------------------------------------------------------------
K8S_BINS=(kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl)
if need_build "${K8S_BINS[@]}"; then
  t0=${SECONDS}
  log "kubernetes ${KUBERNETES_VERSION}: preparing wrapper module"
  K8S_GOMOD="$(go_mod_file "k8s.io/kubernetes@${KUBERNETES_VERSION}")"
  [[ -f "${K8S_GOMOD}" ]] || { echo "error: cannot download k8s.io/kubernetes@${KUBERNETES_VERSION}" >&2; exit 1; }
  K8S_GO="$(go_directive "${K8S_GOMOD}")"
  require_go "${K8S_GO}" "k8s.io/kubernetes@${KUBERNETES_VERSION}"
  # staging modules: "k8s.io/foo => ./staging/src/k8s.io/foo", restricted to
  # the ones k8s.io/kubernetes actually requires (e.g. sample-cli-plugin is not).
  mapfile -t STAGING < <(sed -n 's#^[[:space:]]*\(k8s\.io/[^[:space:]]*\)[[:space:]]*=>[[:space:]]*\./staging/.*#\1#p' "${K8S_GOMOD}" | sort -u)
  [[ ${#STAGING[@]} -gt 0 ]] || { echo "error: no staging replaces found in ${K8S_GOMOD}" >&2; exit 1; }
  body="require k8s.io/kubernetes ${KUBERNETES_VERSION}"$'\n\nreplace (\n'
  for m in "${STAGING[@]}"; do
    if grep -qE "^[[:space:]]*${m//./\\.}[[:space:]]+v" "${K8S_GOMOD}"; then
      body+=$'\t'"${m} => ${m} ${STAGING_VERSION}"$'\n'
    fi
  done
  body+=$')\n\ntool (\n'
  for b in "${K8S_BINS[@]}"; do body+=$'\t'"k8s.io/kubernetes/cmd/${b}"$'\n'; done
  body+=')'
  write_wrapper "${SRC_DIR}/kubernetes" "${K8S_GO}" "${body}"
  log "kubernetes: wrapper ready in $(fmt_dur $((SECONDS - t0)))"

  # same ldflags as hack/lib/version.sh (gitCommit is not available from the proxy)
  BUILD_DATE="$(sed -n 's/.*"Time": *"\([^"]*\)".*/\1/p' "${K8S_GOMOD%.mod}.info" 2>/dev/null | sed 's/\.[0-9]*Z$/Z/')"
  K8S_LDFLAGS=""
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    K8S_LDFLAGS+=" -X ${p}.gitVersion=${KUBERNETES_VERSION} -X ${p}.gitMajor=${K8S_MAJOR} -X ${p}.gitMinor=${K8S_MINOR}"
    K8S_LDFLAGS+=" -X ${p}.gitTreeState=clean"
    [[ -n "${BUILD_DATE}" ]] && K8S_LDFLAGS+=" -X ${p}.buildDate=${BUILD_DATE}"
  done
  for b in "${K8S_BINS[@]}"; do
    build_one "${b}" "${SRC_DIR}/kubernetes" "k8s.io/kubernetes/cmd/${b}" "${K8S_LDFLAGS}"
  done
  log "kubernetes: done in $(fmt_dur $((SECONDS - t0)))"
else
  log "kubernetes ${KUBERNETES_VERSION}: cached"
fi

# ---------------------------------------------------------------------------
# 2. etcd (go.etcd.io/etcd/server/v3 is the etcd main package; its go.mod has
#    replace directives, so `go install pkg@version` refuses -> wrapper module)
# ---------------------------------------------------------------------------
if need_build etcd; then
  t0=${SECONDS}
  ETCD_GOMOD="$(go_mod_file "go.etcd.io/etcd/server/v3@${ETCD_VERSION}")"
  require_go "$(go_directive "${ETCD_GOMOD}")" "etcd ${ETCD_VERSION}"
  write_wrapper "${SRC_DIR}/etcd" "$(go_directive "${ETCD_GOMOD}")" \
    "$(printf 'require go.etcd.io/etcd/server/v3 %s\n\ntool go.etcd.io/etcd/server/v3' "${ETCD_VERSION}")"
  build_one etcd "${SRC_DIR}/etcd" go.etcd.io/etcd/server/v3 \
    "-X go.etcd.io/etcd/api/v3/version.GitSHA=${ETCD_VERSION}"
  log "etcd: done in $(fmt_dur $((SECONDS - t0)))"
else
  log "etcd ${ETCD_VERSION}: cached"
fi

# ---------------------------------------------------------------------------
# 3. kwok, kwokctl
# ---------------------------------------------------------------------------
if need_build kwok kwokctl; then
  t0=${SECONDS}
  KWOK_GOMOD="$(go_mod_file "sigs.k8s.io/kwok@${KWOK_VERSION}")"
  require_go "$(go_directive "${KWOK_GOMOD}")" "kwok ${KWOK_VERSION}"
  write_wrapper "${SRC_DIR}/kwok" "$(go_directive "${KWOK_GOMOD}")" \
    "$(printf 'require sigs.k8s.io/kwok %s\n\ntool (\n\tsigs.k8s.io/kwok/cmd/kwok\n\tsigs.k8s.io/kwok/cmd/kwokctl\n)' "${KWOK_VERSION}")"
  # consts.Version is already set in the tagged source; point the default
  # KubeVersion (as kwok's hack/releases.sh --kube-version does) at our k8s.
  KWOK_LDFLAGS="-X sigs.k8s.io/kwok/pkg/consts.KubeVersion=${K8S_SEMVER}"
  build_one kwok "${SRC_DIR}/kwok" sigs.k8s.io/kwok/cmd/kwok "${KWOK_LDFLAGS}"
  build_one kwokctl "${SRC_DIR}/kwok" sigs.k8s.io/kwok/cmd/kwokctl "${KWOK_LDFLAGS}"
  log "kwok: done in $(fmt_dur $((SECONDS - t0)))"
else
  log "kwok ${KWOK_VERSION}: cached"
fi

# ---------------------------------------------------------------------------
# 4. helm (its go.mod has no replace directives: plain `go install pkg@version`)
# ---------------------------------------------------------------------------
if need_build helm; then
  t0=${SECONDS}
  HELM_GOMOD="$(go_mod_file "helm.sh/helm/v4@${HELM_VERSION}")"
  [[ -f "${HELM_GOMOD}" ]] || { echo "error: cannot download helm.sh/helm/v4@${HELM_VERSION}" >&2; exit 1; }
  require_go "$(go_directive "${HELM_GOMOD}")" "helm ${HELM_VERSION}"
  if grep -qE '^[[:space:]]*replace[[:space:](]' "${HELM_GOMOD}"; then
    echo "error: helm ${HELM_VERSION}'s go.mod has replace directives; go install pkg@version refuses it" >&2
    exit 1
  fi
  install_one helm "helm.sh/helm/v4/cmd/helm@${HELM_VERSION}" \
    "-X helm.sh/helm/v4/internal/version.version=${HELM_VERSION}"
  log "helm: done in $(fmt_dur $((SECONDS - t0)))"
else
  log "helm ${HELM_VERSION}: cached"
fi

# ---------------------------------------------------------------------------
# 5. prometheus-operator CRDs (ServiceMonitor, PrometheusRule), from the module zip
# ---------------------------------------------------------------------------
if ! crds_cached; then
  PO_MODULE="github.com/prometheus-operator/prometheus-operator@${PROMETHEUS_OPERATOR_VERSION}"
  PO_DIR="$(go_mod_dir "${PO_MODULE}")"
  [[ -d "${PO_DIR}" ]] || { echo "error: cannot download ${PO_MODULE}" >&2; exit 1; }
  mkdir -p "${CRD_DIR}"
  rm -f "${CRD_DIR}/.version"
  for f in "${PROM_CRDS[@]}"; do
    src="${PO_DIR}/example/prometheus-operator-crd/${f}"
    [[ -s "${src}" ]] || { echo "error: ${PO_MODULE} has no example/prometheus-operator-crd/${f}" >&2; exit 1; }
    install -m 0644 "${src}" "${CRD_DIR}/${f}"  # the module cache is read-only
  done
  echo "${PROMETHEUS_OPERATOR_VERSION}" >"${CRD_DIR}/.version"
  log "prometheus-operator ${PROMETHEUS_OPERATOR_VERSION} CRDs: copied to ${CRD_DIR}"
else
  log "prometheus-operator ${PROMETHEUS_OPERATOR_VERSION} CRDs: cached"
fi

# ---------------------------------------------------------------------------
# marker
# ---------------------------------------------------------------------------
{
  echo "${EXPECTED_MARKER}"
  echo "# built $(date -u +%Y-%m-%dT%H:%M:%SZ) with go ${GO_HAVE}"
  (cd "${BIN_DIR}" && sha256sum "${ALL_BINS[@]}" | sed 's/^/# /')
} >"${MARKER}.tmp.$$"
mv -f "${MARKER}.tmp.$$" "${MARKER}"

log "binaries in ${BIN_DIR}:"
(cd "${BIN_DIR}" && ls -lh "${ALL_BINS[@]}" | awk '{print "    " $5 "\t" $9}')
log "total $(fmt_dur $((SECONDS - T_START)))"
