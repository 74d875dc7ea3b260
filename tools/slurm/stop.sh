#!/usr/bin/env bash
# Stop the one-node test cluster of tools/slurm/start.sh (slurmd, slurmctld, munged),
# each by the pid file its daemon wrote.
set -uo pipefail
STATE=${SLURM_TEST_DIR:-/var/lib/rankrepro-slurm}
for pidfile in "$STATE/slurmd.pid" "$STATE/slurmctld.pid" /run/munge/munged.pid; do
    if [ -s "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
        pid=$(cat "$pidfile")
        kill "$pid"
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        echo "[slurm] stopped $(basename "$pidfile" .pid) (pid $pid)"
    fi
done
