#!/usr/bin/env bash
# Orchestrator overhead on many small inputs (issue 4, requirement 9).
#
# Generates N distinct small CSVs (iris with two rows left out, so every file has its own
# digest and task), runs the release orchestrator on them with the local backend, and reports
# for each repetition:
#   wall     the orchestrator process's wall time (planning, staging, tasks, report)
#   ideal    sum of the tasks' wall times (report.json's task_seconds, which the orchestrator
#            builds from its manifest snapshot and journal) / concurrency (from the
#            orchestrator's own "N task(s) at once" log line)
#   ratio    wall / ideal                      target <= 1.2
#   peak RSS of the orchestrator (/usr/bin/time -v)  target <= 100 MiB
# then the medians. Each repetition uses a new, empty --out (so staging is measured too); they
# are deleted only at the end, because deleting thousands of files right before a run makes
# ext4's inode allocation (recently_deleted) the bottleneck of the next one.
#
# Usage: scripts/bench-orchestrator.sh [N_INPUTS (1000)] [REPETITIONS (3)]
#        BENCH_PROFILE=debug scripts/bench-orchestrator.sh 100 1   (a quick smoke run)
# Needs: /usr/bin/time (GNU), jq.
set -euo pipefail
cd "$(dirname "$0")/.."

n_inputs=${1:-1000}
reps=${2:-3}
command -v jq >/dev/null || { echo "bench-orchestrator: jq is required" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "bench-orchestrator: GNU /usr/bin/time is required" >&2; exit 2; }

profile=${BENCH_PROFILE:-release}
if [ "$profile" = release ]; then
    cargo build --release --locked -p trainer -p orchestrator >&2
else
    cargo build --locked -p trainer -p orchestrator >&2
fi
orchestrator=target/$profile/orchestrator
trainer=target/$profile/trainer

work=$(mktemp -d "${TMPDIR:-/tmp}/bench-orchestrator.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/in"

# Input i leaves out data rows a and b, with a = i mod 150 and b = a + 1 + i div 150 (mod 150):
# distinct (a, b) pairs for i < 1050, and every class keeps at least 48 members.
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
echo "inputs: $n_inputs files, $distinct distinct contents, $(du -sh "$work/in" | cut -f1)"
echo "machine: $(nproc) cores; $($orchestrator --version)"

walls=(); ideals=(); ratios=(); rss=()
for rep in $(seq 1 "$reps"); do
    out="$work/out-$rep"
    start=$(date +%s.%N)
    set +e
    /usr/bin/time -v -o "$work/time.txt" \
        "$orchestrator" --out "$out" run "$work/in" --trainer "$trainer" \
        >"$work/stdout.txt" 2>"$work/stderr.txt"
    code=$?
    set -e
    end=$(date +%s.%N)
    if [ "$code" -ne 0 ]; then
        echo "orchestrator exited $code; last lines of its output:" >&2
        tail -n 20 "$work/stdout.txt" "$work/stderr.txt" >&2
        exit 1
    fi
    run_dir=$(find "$out" -mindepth 1 -maxdepth 1 -type d ! -name objects)
    # The manifest is a snapshot plus a journal (manifest.journal): read what the
    # orchestrator itself made of them, not the snapshot file.
    sum=$(jq '.summary.task_seconds' "$run_dir/report.json")
    conc=$(sed -n 's/.*(\([0-9]*\) task(s) at once).*/\1/p' "$work/stderr.txt" | head -n 1)
    [ -n "$conc" ] || { echo "bench-orchestrator: no concurrency in the orchestrator's log" >&2; exit 1; }
    ok=$(jq '.summary.succeeded' "$run_dir/report.json")
    wall=$(echo "$end - $start" | bc -l)
    ideal=$(echo "$sum / $conc" | bc -l)
    ratio=$(echo "$wall / $ideal" | bc -l)
    kib=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/time.txt")
    mib=$(echo "$kib / 1024" | bc -l)
    printf 'rep %d: %d/%d succeeded, concurrency %d, wall %.2f s, ideal %.2f s (task sum %.2f s), ratio %.3f, peak RSS %.1f MiB\n' \
        "$rep" "$ok" "$n_inputs" "$conc" "$wall" "$ideal" "$sum" "$ratio" "$mib"
    walls+=("$wall"); ideals+=("$ideal"); ratios+=("$ratio"); rss+=("$mib")
done

median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
m_wall=$(median "${walls[@]}"); m_ideal=$(median "${ideals[@]}")
m_ratio=$(median "${ratios[@]}"); m_rss=$(median "${rss[@]}")
printf 'median of %d: wall %.2f s, ideal %.2f s, ratio %.3f (target <= 1.2), peak RSS %.1f MiB (target <= 100)\n' \
    "$reps" "$m_wall" "$m_ideal" "$m_ratio" "$m_rss"
awk -v r="$m_ratio" -v m="$m_rss" 'BEGIN { exit !(r <= 1.2 && m <= 100) }' \
    && echo "targets met" || { echo "targets NOT met"; exit 1; }
