#!/usr/bin/env bash
# Stop the single-node Slurm cluster that scripts/slurm-start.sh started: slurmd, slurmctld,
# then munged, each by its pid file (no systemd here). Safe to run when nothing is running.
#
# Environment: SLURM_DIR as for slurm-start.sh (default /var/lib/orchestrator-slurm).
set -euo pipefail

SLURM_DIR=${SLURM_DIR:-/var/lib/orchestrator-slurm}

# A live process, not a zombie waiting to be reaped (PID 1 here reaps lazily).
alive() {
    local pid=$1 stat
    [[ -n $pid ]] || return 1
    stat=$(ps -o stat= -p "$pid" 2>/dev/null) || return 1
    [[ -n $stat && $stat != Z* ]]
}

stop_pidfile() {
    local name=$1 file=$2 pid
    [[ -f $file ]] || return 0
    pid=$(cat "$file" 2>/dev/null || true)
    if alive "$pid"; then
        kill -TERM "$pid" 2>/dev/null || true
        # slurmctld may take several seconds to save its state.
        for _ in $(seq 200); do
            alive "$pid" || break
            sleep 0.1
        done
        if alive "$pid"; then
            echo "slurm-stop: $name (pid $pid) ignored SIGTERM for 20 s; sending SIGKILL" >&2
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    rm -f "$file"
}

stop_pidfile slurmd "$SLURM_DIR/run/slurmd.pid"
stop_pidfile slurmctld "$SLURM_DIR/run/slurmctld.pid"
stop_pidfile munged /run/munge/munged.pid
echo "slurm-stop: stopped" >&2
