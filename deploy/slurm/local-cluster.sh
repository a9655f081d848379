#!/usr/bin/env bash
# A single-machine Slurm cluster for trying and testing deploy/slurm/pstrain.sbatch:
# one slurmctld and three slurmd (nodes n1, n2, n3), all on 127.0.0.1, on free ports.
#
#   deploy/slurm/local-cluster.sh start DIR   # writes DIR/slurm.conf, starts the daemons
#   deploy/slurm/local-cluster.sh stop DIR    # stops them
#
# Then: SLURM_CONF=DIR/slurm.conf sbatch ...   Needs root, slurm-wlm and munge.
set -euo pipefail
command="${1:?usage: local-cluster.sh start|stop DIR}"
dir="$(mkdir -p "${2:?usage: local-cluster.sh start|stop DIR}" && cd "$2" && pwd)"
conf="$dir/slurm.conf"

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# Starts a daemon with only stdin, stdout and stderr of ours: any other descriptor
# the caller left open (a test runner's exit-notification socket, say) would stay
# open as long as the daemon lives.
daemon() {
  (
    for fd in /proc/self/fd/*; do
      fd="${fd##*/}"
      if [ "$fd" -gt 2 ]; then eval "exec $fd>&-" 2>/dev/null || true; fi
    done
    exec "$@"
  )
}

case "$command" in
  start)
    mkdir -p "$dir/state" "$dir/log" "$dir/spool"
    # munge authenticates Slurm's messages; start it unless it already runs.
    if ! munge -n >/dev/null 2>&1; then
      if [ ! -s /etc/munge/munge.key ]; then
        mkdir -p /etc/munge
        dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null
      fi
      mkdir -p /run/munge /var/lib/munge /var/log/munge
      chown -R munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge 2>/dev/null || true
      chmod 400 /etc/munge/munge.key
      daemon /usr/sbin/munged --force --pid-file="$dir/munged.pid"
    fi
    controller_port=$(free_port)
    node_ports=($(free_port) $(free_port) $(free_port))
    cat >"$conf" <<CONF
ClusterName=pstrainlocal
SlurmctldHost=localhost
SlurmctldPort=$controller_port
AuthType=auth/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool/%n
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd-%n.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd-%n.log
SlurmUser=root
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
SchedulerParameters=bf_interval=1
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobAcctGatherType=jobacct_gather/none
MailProg=/bin/true
NodeName=n1 NodeHostname=localhost NodeAddr=127.0.0.1 Port=${node_ports[0]} CPUs=2 RealMemory=1000 State=UNKNOWN
NodeName=n2 NodeHostname=localhost NodeAddr=127.0.0.1 Port=${node_ports[1]} CPUs=2 RealMemory=1000 State=UNKNOWN
NodeName=n3 NodeHostname=localhost NodeAddr=127.0.0.1 Port=${node_ports[2]} CPUs=2 RealMemory=1000 State=UNKNOWN
PartitionName=debug Nodes=n[1-3] Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE
CONF
    daemon slurmctld -f "$conf"
    for node in n1 n2 n3; do daemon slurmd -f "$conf" -N "$node"; done
    # Bounded wait until the three nodes are idle.
    for _ in $(seq 100); do
      if [ "$(SLURM_CONF="$conf" sinfo -h -o '%T %D' 2>/dev/null | awk '$1=="idle"{print $2}')" = 3 ]; then
        echo "local Slurm up: SLURM_CONF=$conf"
        exit 0
      fi
      sleep 0.2
    done
    echo "local Slurm did not come up; see $dir/log" >&2
    exit 1
    ;;
  stop)
    # munged too, when `start` started it (its pid file is then in DIR).
    for pidfile in "$dir"/slurmd-*.pid "$dir"/slurmctld.pid "$dir"/munged.pid; do
      [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null || true
    done
    # Bounded wait for the daemons to exit.
    for _ in $(seq 50); do
      if ! pgrep -f -- "-f $conf" >/dev/null \
        && ! { [ -f "$dir/munged.pid" ] && kill -0 "$(cat "$dir/munged.pid")" 2>/dev/null; }; then
        exit 0
      fi
      sleep 0.1
    done
    pkill -9 -f -- "-f $conf" || true
    [ -f "$dir/munged.pid" ] && kill -9 "$(cat "$dir/munged.pid")" 2>/dev/null || true
    ;;
  *)
    echo "usage: local-cluster.sh start|stop DIR" >&2
    exit 64
    ;;
esac
