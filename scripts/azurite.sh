#!/usr/bin/env bash
# Azurite (Azure Storage emulator, blob service only) for the azure-staging tests.
#
#   scripts/azurite.sh start  [http|oauth|all]   install if missing, start, wait until it answers
#   scripts/azurite.sh stop   [http|oauth|all]   stop what this script started
#   scripts/azurite.sh status [http|oauth|all]   exit 0 iff every named instance answers
#
# Instances (loopback only):
#   http   plain HTTP, shared key / SAS           http://127.0.0.1:${AZURITE_HTTP_PORT:-10000}/devstoreaccount1
#   oauth  HTTPS with `--oauth basic` (Entra path) https://127.0.0.1:${AZURITE_OAUTH_PORT:-10001}/devstoreaccount1
#          Its throw-away CA and server certificate are generated here at first start
#          (STATE/oauth/certs/ca.pem is what clients must trust). Nothing of it is committed.
#
# Environment:
#   AZURITE_STATE_DIR   where pid files, logs, data and certificates live (default .tools/azurite/state);
#                       a test that restarts its own instance points this at a temp dir.
#   AZURITE_HTTP_PORT, AZURITE_OAUTH_PORT   ports (defaults 10000, 10001).
#   AZURITE_ACCESS_LOG=1  log every request (one access-log line each) to STATE/<instance>/log
#                       instead of running --silent (benchmarks count requests with it).
#
# Idempotent: a running instance is left alone; concurrent callers serialise on a lock file.
# Fails loudly (non-zero exit, log printed) when Azurite cannot be installed or started.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
AZURITE_VERSION="3.37.0"
TOOLS="$ROOT/.tools/azurite"
STATE="${AZURITE_STATE_DIR:-$TOOLS/state}"
HTTP_PORT="${AZURITE_HTTP_PORT:-10000}"
OAUTH_PORT="${AZURITE_OAUTH_PORT:-10001}"
BIN="$TOOLS/node_modules/.bin/azurite-blob"
START_TIMEOUT_S=90

die() { echo "azurite.sh: $*" >&2; exit 1; }

installed_version() {
    local pkg="$TOOLS/node_modules/azurite/package.json"
    [[ -f "$pkg" ]] || return 0
    sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$pkg" | head -n1
}

install() {
    if [[ -x "$BIN" && "$(installed_version)" == "$AZURITE_VERSION" ]]; then
        return 0
    fi
    command -v npm >/dev/null || die "npm not found: install Node.js (20 or later) and npm"
    echo "azurite.sh: installing azurite@$AZURITE_VERSION into $TOOLS" >&2
    mkdir -p "$TOOLS"
    # Pinned explicitly: on Node 20, npm's engine-aware resolution would pick 3.35.0, which
    # lacks the 2026-04-06 user delegation SAS format the SDK signs. EBADENGINE warnings are expected.
    npm install --prefix "$TOOLS" --no-audit --no-fund --loglevel=error \
        "azurite@$AZURITE_VERSION" >&2 || die "npm install azurite@$AZURITE_VERSION failed"
    [[ -x "$BIN" ]] || die "azurite-blob missing after install ($BIN)"
}

port_of() { if [[ "$1" == http ]]; then echo "$HTTP_PORT"; else echo "$OAUTH_PORT"; fi; }

url_of() {
    if [[ "$1" == http ]]; then
        echo "http://127.0.0.1:$HTTP_PORT/devstoreaccount1?comp=list"
    else
        echo "https://127.0.0.1:$OAUTH_PORT/devstoreaccount1?comp=list"
    fi
}

# Any HTTP status (403 without credentials is normal) means the service answers.
answers() {
    local inst="$1" code
    local tls=()
    [[ "$inst" == oauth ]] && tls=(--cacert "$STATE/oauth/certs/ca.pem")
    code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 3 "${tls[@]}" "$(url_of "$inst")" 2>/dev/null || true)"
    [[ -n "$code" && "$code" != "000" ]]
}

pid_alive() {
    local pidfile="$STATE/$1/pid"
    [[ -f "$pidfile" ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

make_certs() {
    local dir="$STATE/oauth/certs"
    # Reuse the pair unless it expires within a day.
    if [[ -f "$dir/ca.pem" && -f "$dir/server.pem" && -f "$dir/server.key" ]] &&
        openssl x509 -checkend 86400 -noout -in "$dir/server.pem" >/dev/null 2>&1 &&
        openssl x509 -checkend 86400 -noout -in "$dir/ca.pem" >/dev/null 2>&1; then
        return 0
    fi
    command -v openssl >/dev/null || die "openssl CLI not found (needed to generate the test certificate)"
    mkdir -p "$dir"
    chmod 700 "$dir"
    # A CA plus a leaf with subjectAltName=IP:127.0.0.1: rustls rejects a certificate without
    # a SAN and rejects a CA certificate used as the server certificate.
    openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=azure-staging test CA" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -keyout "$dir/ca.key" -out "$dir/ca.pem" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
        -keyout "$dir/server.key" -out "$dir/server.csr" 2>/dev/null
    printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
        "extendedKeyUsage=serverAuth" "subjectAltName=IP:127.0.0.1" >"$dir/server.ext"
    openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial \
        -days 30 -extfile "$dir/server.ext" -out "$dir/server.pem" 2>/dev/null
    rm -f "$dir/server.csr" "$dir/ca.key"
}

start_one() {
    local inst="$1" port dir
    port="$(port_of "$inst")"
    dir="$STATE/$inst"
    if pid_alive "$inst" && answers "$inst"; then
        echo "azurite.sh: $inst already running (pid $(cat "$dir/pid"), port $port)" >&2
        return 0
    fi
    if pid_alive "$inst"; then
        # Started by an earlier call that is still coming up: wait for it below.
        :
    else
        port_busy "$port" && die "port $port is taken by a process this script did not start; \
set AZURITE_$( [[ $inst == http ]] && echo HTTP || echo OAUTH )_PORT or stop that process"
        mkdir -p "$dir/data"
        local args=(--blobHost 127.0.0.1 --blobPort "$port" --location "$dir/data"
            --disableTelemetry --skipApiVersionCheck)
        [[ "${AZURITE_ACCESS_LOG:-0}" == 1 ]] || args+=(--silent)
        if [[ "$inst" == oauth ]]; then
            make_certs
            args+=(--oauth basic --cert "$dir/certs/server.pem" --key "$dir/certs/server.key")
        fi
        # setsid: the service outlives the shell (and test process) that started it.
        setsid "$BIN" "${args[@]}" >"$dir/log" 2>&1 </dev/null 9>&- &
        echo $! >"$dir/pid"
    fi
    local waited=0
    until answers "$inst"; do
        if ! pid_alive "$inst"; then
            echo "azurite.sh: $inst exited during start-up; its log:" >&2
            cat "$dir/log" >&2 || true
            rm -f "$dir/pid"
            exit 1
        fi
        if (( waited >= START_TIMEOUT_S * 5 )); then
            echo "azurite.sh: $inst did not answer within ${START_TIMEOUT_S}s; its log:" >&2
            cat "$dir/log" >&2 || true
            exit 1
        fi
        sleep 0.2
        waited=$((waited + 1))
    done
    echo "azurite.sh: $inst running (pid $(cat "$dir/pid"), port $port)" >&2
}

stop_one() {
    local inst="$1" dir="$STATE/$1"
    if ! pid_alive "$inst"; then
        rm -f "$dir/pid"
        echo "azurite.sh: $inst not running" >&2
        return 0
    fi
    local pid
    pid="$(cat "$dir/pid")"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.2
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
    rm -f "$dir/pid"
    echo "azurite.sh: $inst stopped" >&2
}

status_one() {
    local inst="$1"
    if pid_alive "$inst" && answers "$inst"; then
        echo "$inst: running (pid $(cat "$STATE/$inst/pid"), port $(port_of "$inst"))"
        return 0
    fi
    echo "$inst: stopped"
    return 3
}

cmd="${1:-}"
which="${2:-all}"
case "$which" in
    http | oauth) instances=("$which") ;;
    all) instances=(http oauth) ;;
    *) die "unknown instance '$which' (expected http, oauth or all)" ;;
esac

mkdir -p "$STATE"
case "$cmd" in
    start)
        exec 9>"$STATE/.lock"
        flock 9
        install
        for i in "${instances[@]}"; do start_one "$i"; done
        ;;
    stop)
        exec 9>"$STATE/.lock"
        flock 9
        for i in "${instances[@]}"; do stop_one "$i"; done
        ;;
    status)
        rc=0
        for i in "${instances[@]}"; do status_one "$i" || rc=$?; done
        exit "$rc"
        ;;
    *) die "usage: $0 start|stop|status [http|oauth|all]" ;;
esac
