#!/usr/bin/env bash
# The orchestrator at scale (issue 15): N distinct tiny CSVs, whole processes timed side by side
# with what a user would otherwise run.
#
# For each size N (default 1k,10k,100k) and each backend:
#   local   (a) `xargs -P $(nproc)` running the same trainer commands (`--threads 1`, which is
#           what the orchestrator gives each task on this machine) and nothing else;
#           (b) `orchestrator run` on the local backend, on a fresh --out.
#   slurm   the same inputs on the local backend and on the Slurm test cluster
#           (scripts/slurm-start.sh) with `--inputs-per-task ${SLURM_INPUTS_PER_TASK:-auto}`,
#           both orchestrators timed whole; a second table (slurm wall / local wall)
#   azure-batch  the orchestrator against the Batch stand-in (target/$profile/batch-standin,
#           2 nodes x 2 slots, tasks really run here) and its own Azurite instance (port
#           ${BENCH_AZURITE_PORT:-11010}, access log on), packed (`--inputs-per-task
#           ${AZURE_INPUTS_PER_TASK:-auto}`); a third table: submission time (the
#           addtaskcollection phase, from the orchestrator's log), Batch tasks, trainer
#           downloads (GETs of the trainer blob in Azurite's access log) against nodes used,
#           blob requests per input (every signed request in Azurite's log / N, and the
#           orchestrator's own, signed with its account SAS: the nodes' input GETs and
#           result PUTs, signed with blob/container SAS, left out)
# and prints a markdown table:
#   wall          whole-process wall time (date before/after)
#   own CPU       user+sys CPU of the orchestrator itself, its children (the trainers) excluded:
#                 GNU time's user+sys (the orchestrator plus every child it waited for) minus
#                 the children's share, cutime+cstime from /proc/<pid>/stat, sampled every
#                 0.1 s; the last sample comes after the last trainer was reaped (the report is
#                 written after that), so at most one trainer's CPU is misattributed
#   peak RSS      GNU time's maximum resident set size (the orchestrator's own peak; a tiny
#                 CSV's trainer peaks at a few MiB, far below it)
#   manifest      bytes written to the run's manifest files over the run (the snapshot, its
#                 temp files, the journal), counted in a second run of the same command under
#                 `strace -f -y -e trace=write,pwrite64,writev,pwritev`, summing the return
#                 values of writes whose fd names a manifest file; then the files' final size
#                 (strace slows the process, so this run is not timed)
#   run dir       disk usage of OUT/<run-id> at the end (du; without inputs/, hard links into
#                 the shared object store), report.html's size
#   load          the 1-minute load average before the orchestrator run
#
# Usage: scripts/bench-scale.sh [--sizes 1k,10k,100k] [--backend local[,slurm,azure-batch]]
#                               [--no-write-count] [--keep]
#   --no-write-count  skip the strace run (halves the time at 100k)
#   --keep            keep the generated inputs and runs (printed at the end)
# BENCH_PROFILE=debug for a quick smoke run with debug binaries.
# Needs: GNU /usr/bin/time, strace (unless --no-write-count), xargs, awk.
set -euo pipefail
cd "$(dirname "$0")/.."

sizes=1k,10k,100k
backends=local
write_count=1
keep=0
while [ $# -gt 0 ]; do
    case $1 in
        --sizes) sizes=$2; shift 2 ;;
        --sizes=*) sizes=${1#*=}; shift ;;
        --backend) backends=$2; shift 2 ;;
        --backend=*) backends=${1#*=}; shift ;;
        --no-write-count) write_count=0; shift ;;
        --keep) keep=1; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "bench-scale: unknown argument \`$1\` (see --help)" >&2; exit 2 ;;
    esac
done
[ -x /usr/bin/time ] || { echo "bench-scale: GNU /usr/bin/time is required" >&2; exit 2; }
if [ "$write_count" = 1 ] && ! command -v strace >/dev/null; then
    echo "bench-scale: strace is required (or pass --no-write-count)" >&2; exit 2
fi

profile=${BENCH_PROFILE:-release}
if [ "$profile" = release ]; then
    cargo build --release --locked -p trainer -p orchestrator -p batch-standin >&2
else
    cargo build --locked -p trainer -p orchestrator -p batch-standin >&2
fi
standin=$PWD/target/$profile/batch-standin
orchestrator=$PWD/target/$profile/orchestrator
trainer=$PWD/target/$profile/trainer
cores=$(nproc)
clk_tck=$(getconf CLK_TCK)

work=$(mktemp -d "${TMPDIR:-/tmp}/bench-scale.XXXXXX")
if [ "$keep" = 0 ]; then trap 'rm -rf "$work"' EXIT; fi

# "1k" -> 1000, "20k" -> 20000, "1m" -> 1000000, "500" -> 500.
count() {
    case $1 in
        *k) echo $(( ${1%k} * 1000 )) ;;
        *m) echo $(( ${1%m} * 1000000 )) ;;
        *) echo "$1" ;;
    esac
}

# N distinct tiny CSVs in DIR: pandas' index column, 3 features, 30 rows, 2 classes of 15
# (5 folds stratify); the first value is the file's number, so every file has its own digest.
gen_inputs() {
    local n=$1 dir=$2
    mkdir -p "$dir"
    awk -v n="$n" -v dir="$dir" 'BEGIN {
        for (i = 0; i < n; i++) {
            f = sprintf("%s/in_%06d.csv", dir, i)
            print ",a,b,c,target" > f
            s = i * 2654435761 % 4294967296
            for (r = 0; r < 30; r++) {
                s = (s * 1103515245 + 12345) % 2147483648; x = s % 1000
                s = (s * 1103515245 + 12345) % 2147483648; y = s % 1000
                c = r % 2
                printf "%d,%s,%.1f,%.2f,%d\n", r, (r == 0 ? i : x / 10), y / 10 + c * 20, (x + y) / 100, c > f
            }
            close(f)
        }
    }'
}

load1() { cut -d' ' -f1 /proc/loadavg; }
now() { date +%s.%N; }
fmt() { printf "%.${2:-2}f" "$1"; }

# Samples /proc/PID/stat every 0.1 s into FILE as "utime stime cutime cstime" (clock ticks)
# until PID exits; builtins only, so the sampler costs next to nothing.
sample_proc() {
    local pid=$1 file=$2 stat rest
    local -a f
    while [ -e "/proc/$pid" ]; do
        read -r stat < "/proc/$pid/stat" 2>/dev/null || break
        rest=${stat##*) }
        read -ra f <<< "$rest"
        echo "${f[11]} ${f[12]} ${f[13]} ${f[14]}" > "$file.tmp" && mv -f "$file.tmp" "$file"
        sleep 0.1
    done
}

# measure NAME -- CMD...: runs CMD under GNU time with the sampler; sets M_WALL, M_CPU (the
# process's own user+sys, children excluded), M_RSS_MIB and M_CODE. Output goes to
# $work/NAME.{stdout,stderr,time,samples}.
measure() {
    local name=$1; shift; [ "$1" = -- ] && shift
    local base=$work/$name start end tpid pid total children
    start=$(now)
    /usr/bin/time -v -o "$base.time" "$@" >"$base.stdout" 2>"$base.stderr" &
    tpid=$!
    pid=
    while [ -z "$pid" ] && [ -e "/proc/$tpid" ]; do
        pid=$(pgrep -P "$tpid" -n || true)
        [ -n "$pid" ] || sleep 0.01
    done
    : > "$base.samples"
    [ -n "$pid" ] && sample_proc "$pid" "$base.samples" &
    local sampler=$!
    set +e; wait "$tpid"; M_CODE=$?; set -e
    end=$(now)
    wait "$sampler" 2>/dev/null || true
    M_WALL=$(echo "$end - $start" | bc -l)
    total=$(awk -F': ' '/User time|System time/ {s += $2} END {print s}' "$base.time")
    children=$(awk -v t="$clk_tck" '{print ($3 + $4) / t}' "$base.samples")
    M_CPU=$(echo "$total - ${children:-0}" | bc -l)
    M_RSS_MIB=$(awk -F': ' '/Maximum resident set size/ {print $2 / 1024}' "$base.time")
}

# Bytes written to manifest files by CMD (run under strace), from strace's log LOG.
manifest_write_bytes() {
    local log=$1
    # With -f, a write can be split into "<unfinished ...>" and "<... write resumed>" lines;
    # the fd's path is on the first, the byte count on the second.
    awk '
        function counts(line) { return line ~ /manifest\.(json|journal)/ }
        / = [0-9]+$/ {
            pid = $1
            if ($0 ~ /resumed>/) { hit = pending[pid]; delete pending[pid] } else hit = counts($0)
            if (hit) sum += $NF
            next
        }
        /<unfinished \.\.\.>/ { pending[$1] = counts($0) }
        END { print sum + 0 }' "$log"
}

results=()
add_row() { results+=("$1"); echo "row: $1" >&2; }

backend_local() {
    local n=$1 in=$2 label=$3
    local run_out=$work/local-$label
    # (a) the bare commands: the same trainer, --threads 1, one output per input.
    mkdir -p "$work/xargs-$label"
    local pairs=$work/pairs-$label.txt
    local f name
    for f in "$in"/*.csv; do
        name=${f##*/}
        printf '%s\n%s\n' "$f" "$work/xargs-$label/${name%.csv}.txt"
    done > "$pairs"
    local load_x
    load_x=$(load1)
    measure "xargs-$label" -- xargs -a "$pairs" -d '\n' -n 2 -P "$cores" "$trainer" --threads 1
    [ "$M_CODE" = 0 ] || { echo "bench-scale: xargs exited $M_CODE" >&2; tail "$work/xargs-$label.stderr" >&2; exit 1; }
    local x_wall=$M_WALL
    rm -rf "$work/xargs-$label" "$pairs"

    # (b) the orchestrator on a fresh --out.
    local load_o
    load_o=$(load1)
    measure "local-$label" -- "$orchestrator" --out "$run_out" run "$in" --trainer "$trainer"
    if [ "$M_CODE" != 0 ]; then
        echo "bench-scale: orchestrator exited $M_CODE" >&2
        tail -n 20 "$work/local-$label.stdout" "$work/local-$label.stderr" >&2
        exit 1
    fi
    local run_dir
    run_dir=$(find "$run_out" -mindepth 1 -maxdepth 1 -type d ! -name objects)
    local ok
    ok=$(grep -c ',succeeded,' "$run_dir/report.csv" || true)
    [ "$ok" = "$n" ] || { echo "bench-scale: $ok of $n inputs succeeded" >&2; exit 1; }
    local run_mb html_kb
    run_mb=$(du -sk --exclude=inputs "$run_dir" | awk '{print $1 / 1024}')
    html_kb=$(stat -c %s "$run_dir/report.html" | awk '{print $1 / 1024}')

    local written=- final=- ratio=-
    if [ "$write_count" = 1 ]; then
        local trace_out=$work/trace-$label
        strace -f -qq --seccomp-bpf -y -s 0 -e trace=write,pwrite64,writev,pwritev \
            -e signal=none -o "$work/strace-$label.log" \
            "$orchestrator" --out "$trace_out" run "$in" --trainer "$trainer" \
            >/dev/null 2>"$work/strace-$label.stderr" \
            || { echo "bench-scale: the strace run failed" >&2; tail "$work/strace-$label.stderr" >&2; exit 1; }
        local trace_dir bytes size
        trace_dir=$(find "$trace_out" -mindepth 1 -maxdepth 1 -type d ! -name objects)
        bytes=$(manifest_write_bytes "$work/strace-$label.log")
        size=$(find "$trace_dir" -maxdepth 1 -name 'manifest.*' ! -name '*.tmp' -printf '%s\n' | awk '{s += $1} END {print s + 0}')
        written=$(fmt "$(echo "$bytes / 1048576" | bc -l)" 1)
        final=$(fmt "$(echo "$size / 1048576" | bc -l)" 1)
        ratio=$(fmt "$(echo "$bytes / $size" | bc -l)" 2)
        rm -rf "$trace_out" "$work/strace-$label.log"
    fi
    local own_ms
    own_ms=$(echo "$M_CPU * 1000 / $n" | bc -l)
    add_row "| local | $n | $(fmt "$x_wall" 1) | $(fmt "$M_WALL" 1) | $(fmt "$(echo "$M_WALL / $x_wall" | bc -l)" 2) | $(fmt "$M_CPU" 1) | $(fmt "$own_ms" 3) | $(fmt "$M_RSS_MIB" 0) | $written / $final ($ratio) | $(fmt "$run_mb" 0) | $(fmt "$html_kb" 0) | $load_x / $load_o |"
    [ "$keep" = 1 ] || rm -rf "$run_out"
}

# Slurm: the same inputs on the local backend and on the test cluster (scripts/slurm-start.sh),
# packed (--inputs-per-task, default auto), each on a fresh --out; the Slurm orchestrator's
# own CPU is all of its CPU (the trainers run under slurmstepd, not as its children).
slurm_results=()
backend_slurm() {
    local n=$1 in=$2 label=$3 per_task=${SLURM_INPUTS_PER_TASK:-auto}
    bash scripts/slurm-start.sh >&2
    local load_l load_s
    load_l=$(load1)
    measure "slurm-local-$label" -- "$orchestrator" --out "$work/slurm-local-$label" run "$in" --trainer "$trainer"
    [ "$M_CODE" = 0 ] || { echo "bench-scale: local run exited $M_CODE" >&2; tail "$work/slurm-local-$label.stderr" >&2; exit 1; }
    local l_wall=$M_WALL
    rm -rf "$work/slurm-local-$label"
    load_s=$(load1)
    measure "slurm-$label" -- "$orchestrator" --out "$work/slurm-$label" run "$in" --trainer "$trainer" \
        --backend slurm --inputs-per-task "$per_task"
    if [ "$M_CODE" != 0 ]; then
        echo "bench-scale: slurm run exited $M_CODE" >&2
        tail -n 20 "$work/slurm-$label.stderr" >&2
        exit 1
    fi
    local run_dir ok elements
    run_dir=$(find "$work/slurm-$label" -mindepth 1 -maxdepth 1 -type d ! -name objects ! -name slurm-staging)
    ok=$(grep -c ',succeeded,' "$run_dir/report.csv" || true)
    [ "$ok" = "$n" ] || { echo "bench-scale: $ok of $n inputs succeeded on slurm" >&2; exit 1; }
    # Each array element leaves its wrapper's output file (slurm-<job>_<element>.out).
    elements=$(find "$work/slurm-$label/slurm-staging/runs" -name 'slurm-*.out' | wc -l)
    local own_ms
    own_ms=$(echo "$M_CPU * 1000 / $n" | bc -l)
    local srow="| slurm | $n | $per_task ($elements array elements) | $(fmt "$l_wall" 1) | $(fmt "$M_WALL" 1) | $(fmt "$(echo "$M_WALL / $l_wall" | bc -l)" 2) | $(fmt "$M_CPU" 1) | $(fmt "$own_ms" 3) | $(fmt "$M_RSS_MIB" 0) | $load_l / $load_s |"
    slurm_results+=("$srow"); echo "row: $srow" >&2
    [ "$keep" = 1 ] || rm -rf "$work/slurm-$label"
}

# Azure Batch: the stand-in (its nodes are processes here) and an Azurite instance of its own
# with the access log on, so every blob request of the run is counted.
azure_results=()
backend_azure() {
    local n=$1 in=$2 label=$3
    local port=${BENCH_AZURITE_PORT:-11010} per_task=${AZURE_INPUTS_PER_TASK:-auto}
    local az_state=$work/azurite-$label
    local az_env=(AZURITE_STATE_DIR="$az_state" AZURITE_HTTP_PORT="$port"
        AZURITE_OAUTH_PORT=$((port + 1)) AZURITE_ACCESS_LOG=1)
    env "${az_env[@]}" bash scripts/azurite.sh start http >&2
    local key=YmF0Y2gtc3RhbmRpbi1iZW5jaC1rZXk= # base64("batch-standin-bench-key"), not a secret
    BATCH_STANDIN_ACCOUNT_KEY=$key "$standin" --work-dir "$work/standin-$label" --print-url \
        >"$work/standin-$label.url" 2>"$work/standin-$label.log" &
    local standin_pid=$!
    local waited=0
    until [ -s "$work/standin-$label.url" ]; do
        sleep 0.1; waited=$((waited + 1))
        [ "$waited" -lt 300 ] || { echo "bench-scale: the stand-in did not start" >&2; exit 1; }
    done
    local load_a
    load_a=$(load1)
    measure "azure-$label" -- env AZURE_BATCH_ACCOUNT_URL="$(cat "$work/standin-$label.url")" \
        AZURE_BATCH_ACCOUNT_NAME=standin AZURE_BATCH_ACCOUNT_KEY=$key \
        AZURE_STORAGE_CONNECTION_STRING="DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;BlobEndpoint=http://127.0.0.1:$port/devstoreaccount1;" \
        RUST_LOG=info \
        "$orchestrator" --out "$work/azure-$label" run "$in" --trainer "$trainer" \
        --backend azure-batch --nodes 2 --task-slots 2 --batch-poll-interval 1s \
        --inputs-per-task "$per_task"
    kill "$standin_pid" 2>/dev/null || true
    wait "$standin_pid" 2>/dev/null || true
    if [ "$M_CODE" != 0 ]; then
        echo "bench-scale: azure-batch run exited $M_CODE" >&2
        tail -n 20 "$work/azure-$label.stderr" >&2
        env "${az_env[@]}" bash scripts/azurite.sh stop http >&2 || true
        exit 1
    fi
    local run_dir ok
    run_dir=$(find "$work/azure-$label" -mindepth 1 -maxdepth 1 -type d ! -name objects ! -name blob-inputs)
    ok=$(grep -c ',succeeded,' "$run_dir/report.csv" || true)
    [ "$ok" = "$n" ] || { echo "bench-scale: $ok of $n inputs succeeded on azure-batch" >&2; exit 1; }
    local log=$az_state/http/log submit tasks digest trainer_gets nodes all own
    submit=$(sed -n 's/.*tasks submitted.* added=\([0-9]*\).* seconds=\([0-9.]*\).*/\2 \1/p' "$work/azure-$label.stderr" | tail -1)
    tasks=${submit#* }; submit=${submit% *}
    digest=$(sha256sum "$trainer" | cut -c1-64)
    # Nodes read with blob SAS (sr=b) and write results with the container SAS (sr=c); the
    # orchestrator's own client signs with an account SAS (srt=). Azurite's health checks
    # (no signature) are left out.
    trainer_gets=$(grep "\"GET /devstoreaccount1/[^/ ]*/$digest?" "$log" | grep -c 'sr=b' || true)
    nodes=$(find "$work/standin-$label/pools" -mindepth 3 -maxdepth 3 -path '*/nodes/*' -type d | wc -l)
    all=$(grep -c 'sig=' "$log" || true)
    own=$(grep 'sig=' "$log" | grep -c 'srt=' || true)
    local own_ms
    own_ms=$(echo "$M_CPU * 1000 / $n" | bc -l)
    local arow="| azure-batch | $n | $per_task ($tasks Batch tasks) | $(fmt "$M_WALL" 1) | $submit | $trainer_gets / $nodes | $(fmt "$(echo "$all / $n" | bc -l)" 3) ($(fmt "$(echo "$own / $n" | bc -l)" 3) own) | $(fmt "$M_CPU" 1) | $(fmt "$own_ms" 3) | $(fmt "$M_RSS_MIB" 0) | $load_a |"
    azure_results+=("$arow"); echo "row: $arow" >&2
    env "${az_env[@]}" bash scripts/azurite.sh stop http >&2 || true
    [ "$keep" = 1 ] || rm -rf "$work/azure-$label" "$work/standin-$label" "$az_state"
}

echo "machine: $cores cores, $(uname -r); load now: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
IFS=, read -ra size_list <<< "$sizes"
IFS=, read -ra backend_list <<< "$backends"
for size in "${size_list[@]}"; do
    n=$(count "$size")
    in=$work/in-$size
    echo "== $size: generating $n inputs" >&2
    gen_inputs "$n" "$in"
    for b in "${backend_list[@]}"; do
        echo "== $size on $b (load $(load1))" >&2
        case $b in
            local) backend_local "$n" "$in" "$size" ;;
            slurm) backend_slurm "$n" "$in" "$size" ;;
            azure-batch) backend_azure "$n" "$in" "$size" ;;
            *) echo "bench-scale: unknown backend \`$b\` (local, slurm, azure-batch)" >&2; exit 2 ;;
        esac
    done
    [ "$keep" = 1 ] || rm -rf "$in"
done

echo
echo "| backend | inputs | bare wall (s) | orchestrator wall (s) | ratio | own CPU (s) | own CPU per input (ms) | peak RSS (MiB) | manifest written / final MB (ratio) | run dir (MB) | report.html (KB) | load before bare / orch |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
printf '%s\n' "${results[@]}"
if [ ${#slurm_results[@]} -gt 0 ]; then
    echo
    echo "| backend | inputs | --inputs-per-task | local backend wall (s) | slurm wall (s) | slurm / local | own CPU (s) | own CPU per input (ms) | peak RSS (MiB) | load before local / slurm |"
    echo "|---|---|---|---|---|---|---|---|---|---|"
    printf '%s\n' "${slurm_results[@]}"
fi
if [ ${#azure_results[@]} -gt 0 ]; then
    echo
    echo "| backend | inputs | --inputs-per-task | wall (s) | submission (s) | trainer downloads / nodes | blob requests per input (all; own) | own CPU (s) | own CPU per input (ms) | peak RSS (MiB) | load before |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|"
    printf '%s\n' "${azure_results[@]}"
fi
[ "$keep" = 0 ] || echo "kept: $work" >&2
