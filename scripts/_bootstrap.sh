# Sourced by scripts/dev and scripts/test: make a fresh machine ready, quickly when it already is.
# - .venv with Python 3.11 (created when missing)
# - pip install -e '.[dev]' (skipped while pyproject.toml's hash matches the stamp)
# - PostgreSQL on 127.0.0.1 (started when it does not answer)

set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$PWD"
VENV="$ROOT/.venv"

say() { printf '%s\n' "$*" >&2; }

ensure_venv() {
    if [ ! -x "$VENV/bin/python" ]; then
        local python
        python="$(command -v python3.11 || true)"
        if [ -z "$python" ]; then
            say "Python 3.11 is needed (python3.11 not found on PATH)"
            exit 1
        fi
        say "creating .venv with $python"
        "$python" -m venv "$VENV"
    fi
}

ensure_installed() {
    local stamp="$VENV/.handrail-install-stamp"
    local want
    want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$VENV/bin/handrail" ]; then
        return
    fi
    say "installing Handrail and its dev tools into .venv (pyproject.toml changed or first run)"
    local log="$VENV/.handrail-install.log"
    if ! "$VENV/bin/python" -m pip install --quiet -e '.[dev]' >"$log" 2>&1; then
        cat "$log" >&2
        say "pip install failed (log: $log)"
        exit 1
    fi
    printf '%s' "$want" >"$stamp"
}

ensure_postgres() {
    command -v pg_isready >/dev/null 2>&1 || return 0  # no PostgreSQL here: its tests skip
    if pg_isready -q -h 127.0.0.1; then
        return
    fi
    if [ -d /etc/postgresql ] && command -v pg_ctlcluster >/dev/null 2>&1; then
        say "starting PostgreSQL"
        pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n1)" main start || true
        for _ in $(seq 1 20); do
            pg_isready -q -h 127.0.0.1 && return
            sleep 0.5
        done
        say "PostgreSQL did not answer on 127.0.0.1; PostgreSQL tests will be skipped or fail"
    fi
}

ensure_venv
ensure_installed
ensure_postgres
