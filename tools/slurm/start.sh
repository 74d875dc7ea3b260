#!/usr/bin/env bash
# A one-node SLURM cluster on this machine, for testing the workflow's SLURM profile
# (workflow/profiles/slurm) against a real scheduler: `tools/slurm/start.sh`, then
# `pytest -m slurm tests/test_slurm.py`; `tools/slurm/stop.sh` ends it.
#
# Debian 12 (slurm-wlm 22.05, munge), run as root (CI, a container): installs the packages
# if missing, creates /run/munge and a munge key, starts munged as the munge user, writes
# /etc/slurm/slurm.conf for this node (CPUs and RealMemory as `slurmd -C` reports them; the
# node is `hostname -s`), starts slurmctld and slurmd, and waits until `sinfo` shows the node
# idle.  Daemons run without systemd; logs and state live under $SLURM_TEST_DIR
# (/var/lib/rankrepro-slurm).
#
# Job states: by default no accounting database (AccountingStorageType=accounting_storage/none),
# so `sacct` cannot answer ("Slurm accounting storage is disabled"); the profile reads states
# with `squeue`, which shows finished jobs for MinJobAge seconds (600 here; SLURM's default is
# 300).  SLURM_ACCOUNTING=1 adds what most clusters have: slurmdbd on a local MariaDB
# (Debian's slurmdbd and mariadb-server), so that `sacct` works too.
# See workflow/profiles/slurm/README.md.
#
# It never overwrites a slurm.conf it did not write (a real cluster's configuration).
set -euo pipefail

STATE=${SLURM_TEST_DIR:-/var/lib/rankrepro-slurm}
ACCOUNTING=${SLURM_ACCOUNTING:-0}
CONF=/etc/slurm/slurm.conf
MARKER="# written by rankrepro tools/slurm/start.sh"
t0=$(date +%s)

if [ "$(id -u)" != 0 ]; then
    echo "tools/slurm/start.sh: needs root (it installs packages and starts daemons)" >&2
    exit 2
fi

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null \
        || ! command -v sbatch >/dev/null; then
    echo "[slurm] installing slurm-wlm and munge (apt)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
fi
if [ "$ACCOUNTING" = 1 ] && { ! command -v slurmdbd >/dev/null || ! command -v mariadbd >/dev/null; }; then
    echo "[slurm] installing slurmdbd and mariadb-server (apt)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq --no-install-recommends slurmdbd mariadb-server >/dev/null
fi
echo "[slurm] packages ready after $(( $(date +%s) - t0 )) s: slurm-wlm $(dpkg-query -W -f='${Version}' slurm-wlm 2>/dev/null || echo '?')"

# --- munge: authentication between the daemons and the commands ---------------------------
mkdir -p /run/munge /var/log/munge /var/lib/munge /etc/munge
chown munge:munge /run/munge /var/log/munge /var/lib/munge /etc/munge
chmod 0755 /run/munge
if [ ! -s /etc/munge/munge.key ]; then
    if command -v mungekey >/dev/null; then
        runuser -u munge -- mungekey --create --keyfile /etc/munge/munge.key
    else
        dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
    fi
fi
chown munge:munge /etc/munge/munge.key
chmod 0400 /etc/munge/munge.key
if ! munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; then
    runuser -u munge -- /usr/sbin/munged
    for _ in $(seq 50); do munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
fi
munge -n </dev/null | unmunge >/dev/null || { echo "[slurm] munged does not answer" >&2; exit 1; }

running() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# --- accounting (SLURM_ACCOUNTING=1): MariaDB and slurmdbd ------------------------------------
mkdir -p "$STATE/log"
chown slurm:slurm "$STATE/log"
if [ "$ACCOUNTING" = 1 ]; then
    for conf in /etc/slurm/slurmdbd.conf /etc/slurm/slurm.conf; do
        if [ -e "$conf" ] && ! grep -qF "$MARKER" "$conf"; then
            echo "tools/slurm/start.sh: $conf exists and was not written by this script; not touching it" >&2
            exit 2
        fi
    done
    mkdir -p /run/mysqld
    chown mysql:mysql /run/mysqld
    if ! mariadb-admin ping >/dev/null 2>&1; then
        touch "$STATE/mariadb.started"  # tools/slurm/stop.sh stops only a MariaDB started here
        setsid runuser -u mysql -- /usr/sbin/mariadbd --pid-file=/run/mysqld/mysqld.pid \
            --socket=/run/mysqld/mysqld.sock </dev/null >/dev/null 2>&1 &
        for _ in $(seq 150); do mariadb-admin ping >/dev/null 2>&1 && break; sleep 0.2; done
    fi
    mariadb-admin ping >/dev/null || { echo "[slurm] MariaDB does not answer" >&2; exit 1; }
    # a local test database: the password only guards this machine's throwaway accounting
    mariadb -e "CREATE DATABASE IF NOT EXISTS slurm_acct_db;
        CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'rankrepro-test';
        GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost'; FLUSH PRIVILEGES;"
    cat > /etc/slurm/slurmdbd.conf.tmp <<DBD_EOF
$MARKER
AuthType=auth/munge
DbdHost=localhost
SlurmUser=slurm
PidFile=$STATE/slurmdbd.pid
LogFile=$STATE/log/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=rankrepro-test
StorageLoc=slurm_acct_db
DBD_EOF
    chown slurm:slurm /etc/slurm/slurmdbd.conf.tmp
    chmod 0600 /etc/slurm/slurmdbd.conf.tmp
    mv /etc/slurm/slurmdbd.conf.tmp /etc/slurm/slurmdbd.conf
    running "$STATE/slurmdbd.pid" || slurmdbd
    STORAGE="AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost"
else
    STORAGE="AccountingStorageType=accounting_storage/none"
fi

# --- slurm.conf for this one node ----------------------------------------------------------
if [ -e "$CONF" ] && ! grep -qF "$MARKER" "$CONF"; then
    echo "tools/slurm/start.sh: $CONF exists and was not written by this script; not touching it" >&2
    exit 2
fi
NODE=$(hostname -s)
OLD_TYPE=$(sed -n '/^AccountingStorageType/p' "$CONF" 2>/dev/null || true)  # a change restarts slurmctld
# "NodeName=vm CPUs=2 Boards=1 SocketsPerBoard=1 CoresPerSocket=2 ThreadsPerCore=1 RealMemory=24105"
NODELINE=$(slurmd -C | head -1)
mkdir -p "$STATE/ctld" "$STATE/d" /etc/slurm
chown -R slurm:slurm "$STATE/ctld" "$STATE/log"
cat > "$CONF.tmp" <<CONF_EOF
$MARKER
# A one-node test cluster on $NODE; see tools/slurm/start.sh.
ClusterName=rankrepro
SlurmctldHost=$NODE
SlurmUser=slurm
AuthType=auth/munge
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
# no cgroups in a container: processes tracked through /proc, no task binding
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
ReturnToService=2
# accounting: slurmdbd (SLURM_ACCOUNTING=1, sacct works) or none (squeue only)
$STORAGE
# squeue shows finished jobs this long (seconds)
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MinJobAge=600
SlurmctldTimeout=30
SlurmdTimeout=30
GresTypes=gpu
$NODELINE Gres=gpu:2 State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
CONF_EOF
mv "$CONF.tmp" "$CONF"
# Two stand-in GPU GRES (slurmd wants a device file per GPU; /dev/null and /dev/zero stand
# in, and task/none binds nothing): SLURM schedules GPU requests (--gpus, --gres=gpu:N) on
# this CPU machine as on a GPU node, and sets CUDA_VISIBLE_DEVICES; no CUDA device is behind them.
printf '%s\nNodeName=%s Name=gpu File=/dev/null\nNodeName=%s Name=gpu File=/dev/zero\n' "$MARKER" "$NODE" "$NODE" \
    > /etc/slurm/gres.conf.tmp
mv /etc/slurm/gres.conf.tmp /etc/slurm/gres.conf

# --- daemons ---------------------------------------------------------------------------------
if [ "$ACCOUNTING" = 1 ]; then
    # slurmdbd answers once it has created its tables; then this cluster, an account, root in it
    for _ in $(seq 300); do sacctmgr -n list cluster >/dev/null 2>&1 && break; sleep 0.2; done
    sacctmgr -n list cluster format=cluster | grep -qw rankrepro || sacctmgr -i add cluster rankrepro >/dev/null
    sacctmgr -n list account format=account | grep -qw rankrepro || sacctmgr -i add account rankrepro >/dev/null
    sacctmgr -n list user format=user | grep -qw root || sacctmgr -i add user root account=rankrepro >/dev/null
fi
if running "$STATE/slurmctld.pid" && [ "$OLD_TYPE" = "$(echo "$STORAGE" | head -1)" ]; then
    scontrol reconfigure
else
    if running "$STATE/slurmctld.pid"; then kill "$(cat "$STATE/slurmctld.pid")"; sleep 1; fi
    slurmctld -c   # -c: a fresh cluster, no jobs or node states of an earlier run
fi
running "$STATE/slurmd.pid" || slurmd
for i in $(seq 120); do
    state=$(sinfo -h -n "$NODE" -o %T 2>/dev/null || true)
    [ "$state" = idle ] && break
    sleep 0.5
done
if [ "$state" != idle ]; then
    echo "[slurm] node $NODE is '${state:-unknown}', not idle; logs:" >&2
    tail -n 20 "$STATE/log/slurmctld.log" "$STATE/log/slurmd.log" >&2 || true
    exit 1
fi
echo "[slurm] one-node cluster up: node $NODE idle ($NODELINE) after $(( $(date +%s) - t0 )) s"
