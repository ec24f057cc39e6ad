#!/usr/bin/env bash
# Run a command beside a throw-away PostgreSQL server on 127.0.0.1.
#
#   scripts/with-postgres.sh make test
#
# Installs PostgreSQL from Debian's packages when no server binaries are found,
# starts one on a free port with a data directory under a temp dir, exports its
# URL as LGT_TEST_POSTGRES_URL for the command, and stops it and deletes the
# data afterwards. If LGT_TEST_POSTGRES_URL is already set, it only runs the
# command against that server.
set -euo pipefail

if [[ -n "${LGT_TEST_POSTGRES_URL:-}" ]]; then
    exec "$@"
fi

find_bin() {
    local dir
    if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
        dirname "$(command -v pg_ctl)"
        return
    fi
    for dir in /usr/lib/postgresql/*/bin; do
        [[ -x "$dir/initdb" ]] && { echo "$dir"; return; }
    done
}

BIN="$(find_bin || true)"
if [[ -z "$BIN" ]]; then
    echo "with-postgres: no PostgreSQL server found; installing Debian's postgresql package" >&2
    SUDO=""
    [[ "$(id -u)" -ne 0 ]] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >/dev/null
    BIN="$(find_bin)"
fi

# initdb refuses to run as root: run the server as the postgres user (Debian's package creates it).
RUN=()
if [[ "$(id -u)" -eq 0 ]]; then
    id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
    RUN=(runuser -u postgres --)
fi

DATA="$(mktemp -d /tmp/lgt-pg.XXXXXX)"
chmod 755 "$DATA"
[[ ${#RUN[@]} -gt 0 ]] && chown postgres "$DATA"
PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"

stop() {
    "${RUN[@]}" "$BIN/pg_ctl" -D "$DATA/db" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$DATA"
}
trap stop EXIT

"${RUN[@]}" "$BIN/initdb" -D "$DATA/db" -U lgt --auth=trust -E UTF8 >"$DATA/initdb.log" 2>&1 \
    || { cat "$DATA/initdb.log" >&2; exit 1; }
"${RUN[@]}" "$BIN/pg_ctl" -D "$DATA/db" -l "$DATA/server.log" -w \
    -o "-h 127.0.0.1 -p $PORT -k $DATA -c max_connections=200 -c fsync=off" start >/dev/null \
    || { cat "$DATA/server.log" >&2; exit 1; }

export LGT_TEST_POSTGRES_URL="postgresql://lgt@127.0.0.1:$PORT/postgres"
echo "with-postgres: PostgreSQL on 127.0.0.1:$PORT (data in $DATA, removed at exit)" >&2
"$@"
