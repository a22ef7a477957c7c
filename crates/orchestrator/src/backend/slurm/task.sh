#!/bin/bash
# Written by the orchestrator's Slurm backend; runs one element of an array job: a pack of one
# or more inputs, the trainer once per input, one after the other.
#
# Usage (by sbatch): task.sh SUBMISSION_DIR
# SLURM_ARRAY_TASK_ID selects the lines of SUBMISSION_DIR/manifest.tsv whose first field is the
# element: element TAB slot TAB flag set TAB task_id TAB trainer TAB input TAB input_name. The
# trainer's flags are NUL-separated in SUBMISSION_DIR/flags/SET, the per-input timeout
# (seconds, 0 = none) in SUBMISSION_DIR/timeout.
#
# Each input's results go to SUBMISSION_DIR/results/SLOT/ (created by the orchestrator):
# stdout.txt (its appearance means the input has started), output.txt (written by the
# trainer), stderr.txt, and last `status` (exit code, timeout flag, wall seconds, then `end`:
# a status without its `end` line is still being written). An input that has a status already
# is skipped, so an element Slurm requeues after a node failure runs only the inputs that had
# not finished. Inside the loop only bash builtins run besides the trainer: a pack of a
# thousand tiny inputs must cost the trainer's time, not a thousand forks more.
#
# Exit: 0 when every trainer exited 0, else the last non-zero code (for a pack of one, the
# trainer's own), so Slurm's ExitCode agrees with the status files.
set -u

sub=${1:?usage: task.sh SUBMISSION_DIR}
idx=${SLURM_ARRAY_TASK_ID:?task.sh runs only as a Slurm array task}

lines=$(awk -F '\t' -v i="$idx" '$1 == i' "$sub/manifest.tsv") || exit 3
if [[ -z $lines ]]; then
    echo "task.sh: element $idx is not in $sub/manifest.tsv" >&2
    exit 3
fi
timeout_secs=0
if [[ -s $sub/timeout ]]; then
    timeout_secs=$(<"$sub/timeout")
fi

result=0
while IFS=$'\t' read -r _ slot set task_id trainer input _; do
    res=$sub/results/$slot
    if [[ -e $res/status ]]; then
        while IFS='=' read -r key value; do
            [[ $key == exit ]] && ((value != 0)) && result=$value
        done <"$res/status"
        continue
    fi
    [[ -d $res ]] || mkdir -p "$res" || exit 3
    # A requeued element starts an unfinished input again from nothing.
    [[ -e $res/output.txt ]] && rm -f "$res/output.txt"
    # One line per start, for audits ("was this task run twice?").
    printf '%s\t%s\t%s\t%s\n' "$task_id" "${SLURM_ARRAY_JOB_ID:-}" "$idx" \
        "${SLURM_RESTART_COUNT:-0}" >>"$sub/../starts.log"
    flags=()
    if [[ -s $sub/flags/$set ]]; then
        mapfile -d '' -t flags <"$sub/flags/$set"
    fi

    start=${EPOCHREALTIME/[.,]/}
    if ((timeout_secs > 0)); then
        # Slurm's own --time is enforced only to the minute; this is exact.
        timeout --kill-after=5 "$timeout_secs" "$trainer" "$input" "$res/output.txt" \
            "${flags[@]}" </dev/null >"$res/stdout.txt" 2>"$res/stderr.txt"
    else
        "$trainer" "$input" "$res/output.txt" "${flags[@]}" </dev/null \
            >"$res/stdout.txt" 2>"$res/stderr.txt"
    fi
    code=$?
    end=${EPOCHREALTIME/[.,]/}

    timed_out=0
    if ((timeout_secs > 0)) && ((code == 124 || code == 137)); then
        timed_out=1
    fi
    # SIGTERM is Slurm cancelling or requeueing the element (it signals the trainer and this
    # script one after the other): the input did not finish, so it gets no status, and a
    # requeued element runs it again. Slurm's record says what happened.
    if ((code == 143 && timed_out == 0)); then
        exit 143
    fi
    wall=$((end - start))
    printf 'exit=%d\ntimed_out=%d\nwall=%d.%06d\nend\n' "$code" "$timed_out" \
        $((wall / 1000000)) $((wall % 1000000)) >"$res/status"
    ((code != 0)) && result=$code
done <<<"$lines"
exit "$result"
