#!/bin/bash
# Written by the orchestrator's Slurm backend; runs one task of an array job.
#
# Usage (by sbatch): task.sh SUBMISSION_DIR
# SLURM_ARRAY_TASK_ID selects the line of SUBMISSION_DIR/manifest.tsv whose first field is the
# index: index TAB task_id TAB trainer TAB input TAB input_name. The trainer's flags for that
# index are NUL-separated in SUBMISSION_DIR/flags/INDEX, the per-attempt timeout (seconds,
# 0 = none) in SUBMISSION_DIR/timeout.
#
# Results go to SUBMISSION_DIR/results/INDEX/: output.txt (written by the trainer), stdout.txt,
# stderr.txt, and last `status` (exit code, timeout flag, wall seconds), renamed into place so
# that the orchestrator never reads half of it. The script exits with the trainer's exit code,
# so Slurm's own ExitCode agrees with the status file.
set -u

sub=${1:?usage: task.sh SUBMISSION_DIR}
idx=${SLURM_ARRAY_TASK_ID:?task.sh runs only as a Slurm array task}

line=$(awk -F '\t' -v i="$idx" '$1 == i { print; exit }' "$sub/manifest.tsv") || exit 3
if [[ -z $line ]]; then
    echo "task.sh: index $idx is not in $sub/manifest.tsv" >&2
    exit 3
fi
IFS=$'\t' read -r _ task_id trainer input _ <<<"$line"

res=$sub/results/$idx
mkdir -p "$res" || exit 3
# A task requeued after a node failure starts again from nothing.
rm -f "$res/status" "$res/output.txt"
# One line per start, for audits ("was this task run twice?").
printf '%s\t%s\t%s\t%s\n' "$task_id" "${SLURM_ARRAY_JOB_ID:-}" "$idx" "${SLURM_RESTART_COUNT:-0}" \
    >>"$sub/../starts.log"

flags=()
if [[ -s $sub/flags/$idx ]]; then
    mapfile -d '' -t flags <"$sub/flags/$idx"
fi
timeout_secs=0
if [[ -s $sub/timeout ]]; then
    timeout_secs=$(<"$sub/timeout")
fi

start=$(date +%s.%N)
if ((timeout_secs > 0)); then
    # Slurm's own --time is enforced only to the minute; this is exact.
    timeout --kill-after=5 "$timeout_secs" \
        "$trainer" "$input" "$res/output.txt" "${flags[@]}" >"$res/stdout.txt" 2>"$res/stderr.txt"
else
    "$trainer" "$input" "$res/output.txt" "${flags[@]}" >"$res/stdout.txt" 2>"$res/stderr.txt"
fi
code=$?
end=$(date +%s.%N)

timed_out=0
if ((timeout_secs > 0)) && ((code == 124 || code == 137)); then
    timed_out=1
fi
wall=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f", b - a }')
printf 'exit=%d\ntimed_out=%d\nwall=%s\n' "$code" "$timed_out" "$wall" >"$res/status.tmp" &&
    mv -f "$res/status.tmp" "$res/status"
exit "$code"
