#!/usr/bin/env bash
# A throwaway PostgreSQL server for the tests and the demo (`make postgres-up`): Debian's
# postgresql package (installed when missing), a database cluster under .cluster/postgres
# owned by the unprivileged `postgres` user, listening on 127.0.0.1 (and on the real node's
# bridge address, 10.88.0.1, when that bridge is up: an address of this machine only). Idempotent: a
# running server is left as it is. Prints nothing secret; the password of the `kascade`
# role is in .cluster/postgres/password (mode 600) and reaches tools as PGPASSWORD.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
STATE="${ROOT}/.cluster/postgres"
PORT="${KASCADE_PG_PORT:-55432}"
DATA="${STATE}/data"
SOCKETS="${STATE}/sockets"
SUDO=""
[[ "$(id -u)" == 0 ]] || SUDO="sudo"
log() { echo "[postgres-up $(date +%H:%M:%S)] $*"; }
fail() { echo "[postgres-up] $*" >&2; exit 1; }

pg_bin() {
  local found
  found="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
  [[ -n "${found}" && -x "${found}/pg_ctl" ]] && echo "${found}"
}

BIN="$(pg_bin || true)"
if [[ -z "${BIN}" ]]; then
  command -v apt-get >/dev/null || fail "PostgreSQL is missing and there is no apt-get: install Debian's postgresql package"
  log "installing Debian's postgresql package"
  ${SUDO} apt-get update -qq
  DEBIAN_FRONTEND=noninteractive ${SUDO} apt-get install -y -qq --no-install-recommends postgresql >/dev/null
  BIN="$(pg_bin)" || fail "the postgresql package installed no pg_ctl under /usr/lib/postgresql"
fi
id postgres >/dev/null 2>&1 || fail "the postgresql package made no 'postgres' user to run the server as"

# The server runs as `postgres`, never as root: run its commands as that user.
as_postgres() {
  if [[ "$(id -un)" == postgres ]]; then "$@"; else ${SUDO} runuser -u postgres -- "$@"; fi
}

mkdir -p "${STATE}"
if [[ ! -s "${STATE}/password" ]]; then
  (umask 077 && head -c 18 /dev/urandom | base64 | tr -d '/+=' > "${STATE}/password")
fi
if [[ ! -f "${DATA}/PG_VERSION" ]]; then
  log "creating the database cluster in ${DATA}"
  rm -rf "${DATA}" "${SOCKETS}"
  mkdir -p "${DATA}" "${SOCKETS}"
  chown postgres: "${DATA}" "${SOCKETS}" 2>/dev/null || ${SUDO} chown postgres: "${DATA}" "${SOCKETS}"
  chmod 700 "${DATA}"
  # the superuser's password file, readable by postgres only for initdb, then removed
  install -m 600 -o postgres /dev/null "${SOCKETS}/.pw" 2>/dev/null || ${SUDO} install -m 600 -o postgres /dev/null "${SOCKETS}/.pw"
  cat "${STATE}/password" | as_postgres tee "${SOCKETS}/.pw" >/dev/null
  as_postgres "${BIN}/initdb" -D "${DATA}" -U kascade --pwfile="${SOCKETS}/.pw" \
    --auth-local=scram-sha-256 --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >/dev/null
  rm -f "${SOCKETS}/.pw"
fi

# The real node's pods (hack/node/up.sh) reach this machine at the node bridge's address,
# an address of this machine only: listen there too when the bridge is up.
source "${ROOT}/hack/node/node.env"
LISTEN=127.0.0.1
if ip -4 addr show dev "${NODE_BRIDGE}" 2>/dev/null | grep -q "inet ${NODE_HOST_IP}/"; then
  LISTEN="127.0.0.1,${NODE_HOST_IP}"
fi
HBA="host all all ${NODE_POD_SUBNET} scram-sha-256"
grep -qxF "${HBA}" "${DATA}/pg_hba.conf" || echo "${HBA}" | as_postgres tee -a "${DATA}/pg_hba.conf" >/dev/null
if as_postgres "${BIN}/pg_ctl" -D "${DATA}" status >/dev/null 2>&1 \
  && [[ "$(cat "${STATE}/listen" 2>/dev/null)" != "${LISTEN}" ]]; then
  log "restarting to listen on ${LISTEN}"
  as_postgres "${BIN}/pg_ctl" -D "${DATA}" -m fast -w stop >/dev/null
fi
if as_postgres "${BIN}/pg_ctl" -D "${DATA}" status >/dev/null 2>&1; then
  log "already running on ${LISTEN} port ${PORT}"
else
  log "starting on ${LISTEN} port ${PORT}"
  as_postgres "${BIN}/pg_ctl" -D "${DATA}" -l "${DATA}/server.log" -w -t 60 \
    -o "-c listen_addresses=${LISTEN} -p ${PORT} -c unix_socket_directories=${SOCKETS} -c max_connections=200 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
    start >/dev/null || { tail -20 "${DATA}/server.log" >&2 || true; fail "the server did not start (log above)"; }
fi
echo "${PORT}" > "${STATE}/port"
echo "${LISTEN}" > "${STATE}/listen"
PGPASSWORD="$(cat "${STATE}/password")" "${BIN}/pg_isready" -q -h 127.0.0.1 -p "${PORT}" -U kascade -d postgres \
  || fail "the server on 127.0.0.1:${PORT} does not accept connections"
log "ready: postgresql://kascade@127.0.0.1:${PORT}/postgres (password in ${STATE}/password)"
