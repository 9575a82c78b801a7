#!/usr/bin/env bash
# A single-node Slurm (slurm-wlm 22.05 from Debian, munge) on this machine, for tests/test_slurm_real.py.
#
#   bash tests/slurm/start.sh          # installs slurm-wlm and munge with apt-get if missing (root only)
#   bash tests/slurm/stop.sh           # stops what this script started, by pid
#
# The configuration is the one of /work/shared/reviews/slurm-2026-12.md, plus three settings that make a CI run
# short: AuthInfo=cred_expire=15 (Slurm holds a requeued job this long before it may start again; default 120 s),
# and a scheduler that looks at the queue every 2 s (SchedulerParameters) instead of every 30-60 s.
# The daemons' pids are written to $HYPERFLUX_SLURM_DIR/pids (default /tmp/hyperflux-slurm); stop.sh kills only those.
# Exit status: 0 up; 3 cannot run here (not root, no apt-get, a foreign slurm.conf): the reason is printed.
set -euo pipefail
DIR=${HYPERFLUX_SLURM_DIR:-/tmp/hyperflux-slurm}
CONF=/etc/slurm/slurm.conf
MARK="# written by hyperflux tests/slurm/start.sh"
say() { echo ">>> tests/slurm/start.sh: $*"; }
skip() { say "cannot start Slurm here: $*"; exit 3; }

[ "$(id -u)" = 0 ] || skip "not root (munged, slurmctld and slurmd run as root here)"
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null; then
  command -v apt-get >/dev/null || skip "slurm-wlm and munge are not installed and there is no apt-get"
  say "apt-get install slurm-wlm munge"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null) \
    || skip "apt-get could not install slurm-wlm munge"
fi
if [ -e "$CONF" ] && ! grep -qF "$MARK" "$CONF"; then skip "$CONF exists and was not written by this script"; fi
if [ -s "$DIR/pids" ]; then
  while read -r name pid; do
    if kill -0 "$pid" 2>/dev/null; then skip "$name (pid $pid) of an earlier start is still running: bash tests/slurm/stop.sh"; fi
  done < "$DIR/pids"
fi
mkdir -p "$DIR"/{ctld,slurmd,log} /run/munge
: > "$DIR/pids"

# munge: the package made /etc/munge/munge.key; a munged already running (a real host's) is used, never stopped
chown munge:munge /run/munge && chmod 755 /run/munge
[ -s /etc/munge/munge.key ] || su -s /bin/sh munge -c "mungekey --create" >/dev/null
if [ -s /run/munge/munged.pid ] && kill -0 "$(cat /run/munge/munged.pid)" 2>/dev/null; then
  say "munged already runs (pid $(cat /run/munge/munged.pid)); using it"
else
  su -s /bin/sh munge -c /usr/sbin/munged
  for _ in $(seq 50); do [ -s /run/munge/munged.pid ] && break; sleep 0.1; done
  echo "munged $(cat /run/munge/munged.pid)" >> "$DIR/pids"
fi

host=$(hostname -s)
node=$(slurmd -C | head -1)
mem=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<< "$node")
node="$(sed 's/ RealMemory=[0-9]*//' <<< "$node") RealMemory=$((mem * 9 / 10)) State=UNKNOWN"
mkdir -p /etc/slurm
cat > "$CONF" <<CONFEOF
$MARK (single-node Slurm for tests/test_slurm_real.py)
ClusterName=hfci
SlurmctldHost=$host
SlurmUser=root
AuthType=auth/munge
AuthInfo=cred_expire=15
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2,bf_interval=2,sched_min_interval=100000
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
KillWait=5
MinJobAge=300
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
StateSaveLocation=$DIR/ctld
SlurmdSpoolDir=$DIR/slurmd
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
$node
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONFEOF

rm -rf "${DIR:?}/ctld" "${DIR:?}/slurmd" && mkdir -p "$DIR/ctld" "$DIR/slurmd"
slurmctld -c   # -c: no job of an earlier start comes back
for _ in $(seq 100); do [ -s "$DIR/slurmctld.pid" ] && break; sleep 0.1; done
echo "slurmctld $(cat "$DIR/slurmctld.pid")" >> "$DIR/pids"
slurmd
for _ in $(seq 100); do [ -s "$DIR/slurmd.pid" ] && break; sleep 0.1; done
echo "slurmd $(cat "$DIR/slurmd.pid")" >> "$DIR/pids"
for _ in $(seq 60); do
  state=$(sinfo -h -o %t 2>/dev/null | head -1)
  [ "$state" = idle ] && break
  sleep 0.5
done
[ "$state" = idle ] || { say "the node did not come up (sinfo: '$state'); see $DIR/log/"; exit 1; }
say "up: $(sinfo -h -o '%P %a %D %t %c CPUs %m MB') ($(sinfo -V)); pids in $DIR/pids; stop with: bash tests/slurm/stop.sh"
