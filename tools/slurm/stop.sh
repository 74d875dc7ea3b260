#!/usr/bin/env bash
# Stop the one-node test cluster of tools/slurm/start.sh (slurmd, slurmctld, slurmdbd and the
# MariaDB it started, munged),
# each by the pid file its daemon wrote.
set -uo pipefail
STATE=${SLURM_TEST_DIR:-/var/lib/rankrepro-slurm}
pidfiles=("$STATE/slurmd.pid" "$STATE/slurmctld.pid" "$STATE/slurmdbd.pid")
# MariaDB only where start.sh started it (SLURM_ACCOUNTING=1)
[ -e "$STATE/mariadb.started" ] && pidfiles+=(/run/mysqld/mysqld.pid) && rm -f "$STATE/mariadb.started"
pidfiles+=(/run/munge/munged.pid)
for pidfile in "${pidfiles[@]}"; do
    if [ -s "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
        pid=$(cat "$pidfile")
        kill "$pid"
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        echo "[slurm] stopped $(basename "$pidfile" .pid) (pid $pid)"
    fi
done
