#!/usr/bin/env bash
# Azure Batch backend at scale, without Azure (issue 6, requirement 8): N distinct small
# inputs run through `orchestrator run --backend azure-batch` against the project's Batch
# stand-in (crates/batch-standin, which really runs every task) and Azurite.
#
# Prints, per repetition and as medians:
#   submit   seconds from the first to the last addtaskcollection answer (the orchestrator's
#            own "tasks submitted ... seconds=" log line)           target: N=2000 in < 30 s
#   wall     the orchestrator process's whole wall time (staging, pool, job, submission,
#            monitoring, collecting 3 files per task, report)
#   CPU      user + system seconds of the orchestrator process (its own overhead)
#   peak RSS of the orchestrator process (/usr/bin/time -v)
# The wall time is dominated by the stand-in really running every task on this machine.
#
# Usage: scripts/bench-batch.sh [N_INPUTS (2000)] [REPETITIONS (3)]
#        BENCH_PROFILE=release scripts/bench-batch.sh    (orchestrator and stand-in; default: debug)
# Needs: GNU /usr/bin/time, jq, node/npm for Azurite (scripts/azurite.sh installs it).
set -euo pipefail
cd "$(dirname "$0")/.."

n_inputs=${1:-2000}
reps=${2:-3}
command -v jq >/dev/null || { echo "bench-batch: jq is required" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "bench-batch: GNU /usr/bin/time is required" >&2; exit 2; }

profile=${BENCH_PROFILE:-debug}
# The trainer is always the release build: it is what a real pool downloads once per task
# (about 1 MB; the debug build is ~28 MB and would turn this into a download benchmark).
cargo build --release --locked -p trainer >&2
if [ "$profile" = release ]; then
    cargo build --release --locked -p orchestrator -p batch-standin >&2
else
    cargo build --locked -p orchestrator -p batch-standin >&2
fi
orchestrator=target/$profile/orchestrator
trainer=target/release/trainer
standin=target/$profile/batch-standin

bash scripts/azurite.sh start http >&2

work=$(mktemp -d "${TMPDIR:-/tmp}/bench-batch.XXXXXX")
standin_pid=
cleanup() {
    if [ -n "$standin_pid" ]; then kill "$standin_pid" 2>/dev/null || true; wait "$standin_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/in"

# Input i leaves out data rows a and b of iris (a = i mod 150, b = a + 1 + i div 150), so every
# file has its own digest and therefore its own task.
awk -v n="$n_inputs" -v dir="$work/in" '
    NR == 1 { header = $0; next }
    { rows[NR - 2] = $0 }
    END {
        m = NR - 1
        for (i = 0; i < n; i++) {
            a = i % m; b = (a + 1 + int(i / m)) % m
            f = sprintf("%s/input_%04d.csv", dir, i)
            print header > f
            for (r = 0; r < m; r++) if (r != a && r != b) print rows[r] > f
            close(f)
        }
    }' input_files/iris.csv
distinct=$(sha256sum "$work"/in/*.csv | awk '{print $1}' | sort -u | wc -l)
echo "inputs: $n_inputs files, $distinct distinct contents; machine: $(nproc) cores; profile: $profile"

# A throw-away key for the stand-in (generated, never stored).
key=$(head -c 32 /dev/urandom | base64)
BATCH_STANDIN_ACCOUNT_KEY=$key "$standin" --listen 127.0.0.1:0 --account-name bench \
    --work-dir "$work/standin" --max-concurrent-tasks "$(( $(nproc) * 4 ))" --print-url \
    >"$work/standin.url" 2>"$work/standin.log" &
standin_pid=$!
for _ in $(seq 1 100); do [ -s "$work/standin.url" ] && break; sleep 0.1; done
url=$(head -n 1 "$work/standin.url")
[ -n "$url" ] || { echo "bench-batch: the stand-in did not start:" >&2; cat "$work/standin.log" >&2; exit 1; }

export AZURE_BATCH_ACCOUNT_URL=$url AZURE_BATCH_ACCOUNT_NAME=bench AZURE_BATCH_ACCOUNT_KEY=$key
# Azurite's published development account key (public, not a secret).
export AZURE_STORAGE_CONNECTION_STRING="DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;"
export RUST_LOG=info

submits=(); walls=(); cpus=(); rss=()
for rep in $(seq 1 "$reps"); do
    rm -rf "$work/out"
    start=$(date +%s.%N)
    set +e
    /usr/bin/time -v -o "$work/time.txt" \
        "$orchestrator" --out "$work/out" run "$work/in" --backend azure-batch --trainer "$trainer" \
        --run-id "bench-$rep-$$" --nodes 4 --task-slots 4 --batch-poll-interval 1s \
        >"$work/stdout.txt" 2>"$work/stderr.txt"
    code=$?
    set -e
    end=$(date +%s.%N)
    if [ "$code" -ne 0 ]; then
        echo "orchestrator exited $code; last lines of its output:" >&2
        tail -n 20 "$work/stdout.txt" "$work/stderr.txt" >&2
        exit 1
    fi
    run_dir=$(find "$work/out" -mindepth 1 -maxdepth 1 -type d ! -name objects)
    ok=$(jq '.summary.succeeded' "$run_dir/report.json")
    submit=$(sed -n 's/.*tasks submitted.* seconds=\([0-9.]*\).*/\1/p' "$work/stderr.txt" | tail -n 1)
    requests=$(sed -n 's/.*tasks submitted.* requests=\([0-9]*\).*/\1/p' "$work/stderr.txt" | tail -n 1)
    wall=$(echo "$end - $start" | bc -l)
    kib=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/time.txt")
    mib=$(echo "$kib / 1024" | bc -l)
    cpu=$(awk -F': ' '/User time|System time/ {s += $2} END {print s}' "$work/time.txt")
    printf 'rep %d: %s/%d succeeded; submit %.2f s (%s requests); wall %.1f s; orchestrator CPU %.1f s; peak RSS %.1f MiB\n' \
        "$rep" "$ok" "$n_inputs" "$submit" "$requests" "$wall" "$cpu" "$mib"
    [ "$ok" -eq "$n_inputs" ] || { echo "bench-batch: not every task succeeded" >&2; exit 1; }
    submits+=("$submit"); walls+=("$wall"); cpus+=("$cpu"); rss+=("$mib")
done

median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
printf 'median of %d: submit %.2f s (target < 30 s); wall %.1f s; orchestrator CPU %.1f s; orchestrator peak RSS %.1f MiB\n' \
    "$reps" "$(median "${submits[@]}")" "$(median "${walls[@]}")" "$(median "${cpus[@]}")" "$(median "${rss[@]}")"
