#!/usr/bin/env bash
# Start a single-node SLURM (munged, slurmctld, slurmd) on this machine, as root.
# Idempotent: daemons already running are left alone; the config is rewritten only
# when it changed. Used by .ci/run before the tests; the SLURM tests skip (or fail
# under EXOCUBE_REQUIRE_SERVICES=1) when SLURM does not answer.
# Needs the Debian packages slurm-wlm and munge (installed here when missing).
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
  echo "slurm-up: must run as root (it starts system daemons)" >&2
  exit 1
fi
if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q slurm-wlm munge
fi

host=$(hostname -s)
node=$(slurmd -C | head -1)                     # NodeName=... CPUs=... RealMemory=...
mem=$(echo "$node" | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p')
node=$(echo "$node" | sed "s/RealMemory=[0-9]*/RealMemory=$((mem * 9 / 10))/")

conf=$(mktemp)
cat >"$conf" <<EOF
# written by exocube .ci/slurm-up.sh: one node, root daemons, no cgroups
ClusterName=exocube
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=30
$node State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF
mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/munge
changed=0
if ! cmp -s "$conf" /etc/slurm/slurm.conf; then
  install -m 644 "$conf" /etc/slurm/slurm.conf
  changed=1
fi
rm -f "$conf"

if [ ! -s /etc/munge/munge.key ]; then
  dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
fi
chown -R munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge 2>/dev/null || true
chmod 400 /etc/munge/munge.key
if ! pgrep -u munge -x munged >/dev/null; then
  runuser -u munge -- munged
fi

if [ "$changed" -eq 1 ]; then
  pkill_pid() { [ -f "$1" ] && kill "$(cat "$1")" 2>/dev/null || true; }
  pkill_pid /run/slurmd.pid
  pkill_pid /run/slurmctld.pid
  sleep 1
fi
if ! scontrol ping 2>/dev/null | grep -q "is UP"; then
  slurmctld
fi
if ! pgrep -x slurmd >/dev/null; then
  slurmd
fi

for _ in $(seq 1 30); do
  if sinfo --noheader -o '%t' 2>/dev/null | grep -qE '^(idle|mix|alloc)'; then
    echo "slurm-up: SLURM is up on $host ($(sinfo --noheader -o '%c CPUs, %m MB'))"
    exit 0
  fi
  scontrol update nodename="$host" state=resume >/dev/null 2>&1 || true
  sleep 1
done
echo "slurm-up: SLURM did not become ready; see /var/log/slurm/*.log" >&2
sinfo >&2 || true
exit 1
