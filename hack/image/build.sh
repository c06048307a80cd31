#!/usr/bin/env bash
# Build the kascade runtime image without Docker (`make runtime-image`): the same contract
# as runtime-image/Dockerfile (user 65532, /opt/venv with kascade, dbt and its adapters,
# `kascade task exec` as entrypoint, the work dir /kascade/work), from Debian's packages:
#
#   layer 1   debootstrap (minbase, Debian's python3 and venv) + the user and work dir of the
#             Dockerfile + a venv with kascade's dependencies (wheels from PyPI, made with
#             this machine's pip and its cache); rebuilt when pyproject.toml or this script
#             changes
#   layer 2   kascade itself (the files its wheel's RECORD lists); rebuilt when the source does
#   config    User, Env, Entrypoint, Cmd, WorkingDir, Labels read from the Dockerfile
#             (hack/image/dockerfile_config.py)
#
# assembled by hack/image/main.go (go-containerregistry) into an image archive that
# `ctr images import` takes. Output in ${KASCADE_CACHE:-~/.cache/kascade}/runtime-image/.
#
# Usage: hack/image/build.sh [--print-archive | --print-tag]
# Needs root (debootstrap, chroot) and Debian's debootstrap package (make node-packages).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="${ROOT}/hack/image"
CACHE="${KASCADE_CACHE:-${HOME}/.cache/kascade}/runtime-image"
PYTHON="${ROOT}/.venv/bin/python"
SUITE=bookworm
MIRROR="${KASCADE_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
VERSION="$(sed -n 's/^version = "\(.*\)"/\1/p' "${ROOT}/pyproject.toml" | head -1)"
TAG="ghcr.io/kascade/runtime:${VERSION}"   # operator/kascade/operator/config.py DEFAULT_IMAGE
ARCHIVE="${CACHE}/runtime-${VERSION}.tar"
log() { echo "[runtime-image $(date +%H:%M:%S)] $*"; }
fail() { echo "[runtime-image] error: $*" >&2; exit 1; }

case "${1:-}" in
  --print-archive) echo "${ARCHIVE}"; exit 0 ;;
  --print-tag) echo "${TAG}"; exit 0 ;;
esac

hash_of() { cat "$@" | sha256sum | cut -c1-16; }  # contents only: the same in any clone
BASE_KEY="$(hash_of "${HERE}/build.sh" "${ROOT}/pyproject.toml")"
SOURCE_KEY="$(cd "${ROOT}" && find operator/kascade -type f \( -name '*.py' -o -name py.typed \) -print0 \
  | sort -z | xargs -0 sha256sum | cat - pyproject.toml README.md runtime-image/Dockerfile \
    hack/image/main.go hack/image/dockerfile_config.py | sha256sum | cut -c1-16)"
IMAGE_KEY="${BASE_KEY}-${SOURCE_KEY}"
if [[ -s "${ARCHIVE}" && "$(cat "${ARCHIVE}.key" 2>/dev/null)" == "${IMAGE_KEY}" ]]; then
  log "${TAG} is up to date (${ARCHIVE})"
  exit 0
fi

[[ "$(id -u)" == 0 ]] || fail "building the image needs root (debootstrap and chroot)"
command -v debootstrap >/dev/null || fail "debootstrap is not installed: make node-packages"
[[ -x "${PYTHON}" ]] || fail "no ${PYTHON}: make venv"
mkdir -p "${CACHE}"
exec 9>"${CACHE}/.lock"
flock 9
T0=${SECONDS}

# ---------------------------------------------------------------------------
# kascade's wheel (both layers start from it)
# ---------------------------------------------------------------------------
WORK="${CACHE}/work"
rm -rf "${WORK}"
mkdir -p "${WORK}/wheels"
"${PYTHON}" -m pip wheel -q --no-deps "${ROOT}" -w "${WORK}/wheels" >/dev/null
WHEEL="$(ls "${WORK}/wheels"/kascade-*.whl)"

# ---------------------------------------------------------------------------
# layer 1: the base (cached by BASE_KEY); its rootfs is kept to install layer 2 into
# ---------------------------------------------------------------------------
BASE="${CACHE}/base-${BASE_KEY}"
ROOTFS="${BASE}/rootfs"
in_root() { chroot "${ROOTFS}" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root "$@"; }
if [[ ! -s "${BASE}/layer.tar" ]]; then
  rm -rf "${CACHE}"/base-*
  mkdir -p "${BASE}"
  t0=${SECONDS}
  log "debootstrap ${SUITE} (minbase, python3) from ${MIRROR}"
  debootstrap --variant=minbase --include=python3,python3-venv "${SUITE}" "${ROOTFS}" "${MIRROR}" \
    >"${BASE}/debootstrap.log" 2>&1 || { tail -20 "${BASE}/debootstrap.log" >&2; fail "debootstrap failed (log above)"; }
  log "debootstrap done in $((SECONDS - t0))s"
  # the Dockerfile's user and work dir
  in_root groupadd --gid 65532 kascade
  in_root useradd --uid 65532 --gid 65532 --no-create-home --no-log-init \
    --home-dir /kascade/work --shell /usr/sbin/nologin kascade
  in_root install -d -o 65532 -g 65532 -m 0750 /kascade/work
  # kascade's dependencies as wheels for this Python (3.11, manylinux), from this machine's
  # pip and its cache; installed in the chroot without an index
  t0=${SECONDS}
  mkdir -p "${ROOTFS}/tmp/wheels"
  "${PYTHON}" -m pip wheel -q --only-binary duckdb "${WHEEL}" -w "${ROOTFS}/tmp/wheels" >/dev/null
  in_root python3 -m venv /opt/venv
  in_root /opt/venv/bin/python -m pip install -q --no-index --find-links /tmp/wheels \
    --disable-pip-version-check "/tmp/wheels/$(basename "${WHEEL}")"
  in_root /opt/venv/bin/python -m pip uninstall -q -y kascade
  rm -rf "${ROOTFS}/tmp/wheels"
  log "venv with kascade's dependencies in $((SECONDS - t0))s"
  # what an image needs no copy of
  rm -rf "${ROOTFS}"/usr/share/{doc,man,info,locale}/* "${ROOTFS}"/var/cache/apt/* \
    "${ROOTFS}"/var/lib/apt/lists/* "${ROOTFS}"/var/log/*.log "${ROOTFS}"/root/.cache
  # pip and setuptools stay in the kept rootfs (layer 2 is installed with them) but not in
  # the image, as in the Dockerfile
  tar --numeric-owner --xattrs -C "${ROOTFS}" -cf "${BASE}/layer.tar.tmp" \
    --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' --exclude='./run/*' --exclude='./tmp/*' \
    --exclude='./opt/venv/lib/python3.*/site-packages/pip' \
    --exclude='./opt/venv/lib/python3.*/site-packages/pip-*' \
    --exclude='./opt/venv/lib/python3.*/site-packages/setuptools' \
    --exclude='./opt/venv/lib/python3.*/site-packages/setuptools-*' \
    --exclude='./opt/venv/lib/python3.*/site-packages/_distutils_hack' \
    --exclude='./opt/venv/lib/python3.*/site-packages/distutils-precedence.pth' \
    --exclude='./opt/venv/bin/pip*' .
  mv -f "${BASE}/layer.tar.tmp" "${BASE}/layer.tar"
  log "layer 1: $(du -h "${BASE}/layer.tar" | cut -f1)"
fi

# ---------------------------------------------------------------------------
# layer 2: kascade (the files its RECORD lists), then the kept rootfs is as before
# ---------------------------------------------------------------------------
cp "${WHEEL}" "${ROOTFS}/tmp/"
in_root /opt/venv/bin/python -m pip install -q --no-deps --no-index --disable-pip-version-check \
  "/tmp/$(basename "${WHEEL}")"
rm -f "${ROOTFS}/tmp/$(basename "${WHEEL}")"
SITE="$(cd "${ROOTFS}" && ls -d opt/venv/lib/python3.*/site-packages)"
RECORD="$(ls "${ROOTFS}/${SITE}"/kascade-*.dist-info/RECORD)"
# RECORD paths are relative to site-packages ("../../../bin/kascade" for the script)
cut -d, -f1 "${RECORD}" | sed 's/^"//; s/"$//' | while read -r path; do
  realpath -m --relative-to="${ROOTFS}" "${ROOTFS}/${SITE}/${path}"
done | grep -v '^\.\./' >"${WORK}/layer2.list"
# and the byte-compiled files pip wrote beside the sources (RECORD may not list them)
(cd "${ROOTFS}" && find "${SITE}/kascade" -name '*.pyc') >>"${WORK}/layer2.list"
sort -u "${WORK}/layer2.list" >"${WORK}/layer2.files"
tar --numeric-owner -C "${ROOTFS}" -cf "${WORK}/layer2.tar" --no-recursion -T "${WORK}/layer2.files"
in_root /opt/venv/bin/python -m pip uninstall -q -y kascade

# ---------------------------------------------------------------------------
# the image
# ---------------------------------------------------------------------------
"${PYTHON}" "${HERE}/dockerfile_config.py" "${ROOT}/runtime-image/Dockerfile" >"${WORK}/config.json"
"${HERE}/ociimage.sh" -config "${WORK}/config.json" -tag "${TAG}" -o "${ARCHIVE}" \
  "${BASE}/layer.tar" "${WORK}/layer2.tar"
echo "${IMAGE_KEY}" >"${ARCHIVE}.key"
rm -rf "${WORK}"
log "${TAG}: ${ARCHIVE} ($(du -h "${ARCHIVE}" | cut -f1)) in $((SECONDS - T0))s"
