#!/usr/bin/env bash
# Run hack/image/main.go (ociimage: layers + config -> image archive), built once per
# source version into the kascade cache. Arguments go to ociimage.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
KEY="$(cat "${HERE}/main.go" "${HERE}/go.mod" "${HERE}/go.sum" | sha256sum | cut -c1-16)"
TOOL="${KASCADE_CACHE:-${HOME}/.cache/kascade}/tools/ociimage-${KEY}"
if [[ ! -x "${TOOL}" ]]; then
  mkdir -p "$(dirname "${TOOL}")"
  (cd "${HERE}" && GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-buildvcs=false go build -trimpath -o "${TOOL}.tmp.$$" .)
  mv -f "${TOOL}.tmp.$$" "${TOOL}"
fi
exec "${TOOL}" "$@"
