#!/usr/bin/env bash
# Stop the test PostgreSQL server (`make postgres-down`, part of `make cluster-down`);
# its data stay under .cluster/postgres until `make clean`. A no-op when none runs.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DATA="${ROOT}/.cluster/postgres/data"
SUDO=""
[[ "$(id -u)" == 0 ]] || SUDO="sudo"
BIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)"
if [[ -n "${BIN}" && -f "${DATA}/postmaster.pid" ]]; then
  if [[ "$(id -un)" == postgres ]]; then
    "${BIN}/pg_ctl" -D "${DATA}" -m fast -w stop >/dev/null || true
  else
    ${SUDO} runuser -u postgres -- "${BIN}/pg_ctl" -D "${DATA}" -m fast -w stop >/dev/null || true
  fi
fi
echo "[postgres-down] the test PostgreSQL server is stopped"
