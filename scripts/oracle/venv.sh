# Sourced by scripts/regen-golden.sh and scripts/bench-vs-sklearn.sh.
# oracle_venv: create (idempotently) the pinned virtualenv .venv-oracle and set ORACLE_PY.
# The venv is rebuilt when requirements.txt changes (a stamp file holds its hash).

oracle_venv() {
    local root venv req stamp want
    root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
    venv="$root/.venv-oracle"
    req="$root/scripts/oracle/requirements.txt"
    stamp="$venv/.requirements.sha256"
    want="$(sha256sum "$req" | cut -d' ' -f1)"
    if [[ ! -x "$venv/bin/python" || ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
        echo "oracle: creating pinned virtualenv $venv" >&2
        local py="${PYTHON:-python3}"
        command -v "$py" >/dev/null || { echo "oracle: $py not found; install Python 3.11+" >&2; return 1; }
        rm -rf "$venv"
        "$py" -m venv "$venv"
        "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req"
        echo "$want" >"$stamp"
    fi
    ORACLE_PY="$venv/bin/python"
    export ORACLE_PY
}
