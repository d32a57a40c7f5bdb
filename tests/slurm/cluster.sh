# cluster.sh -- a real one-node Slurm cluster on localhost for the tests,
# from Debian's slurm-wlm (slurmctld + slurmd) and munge.  Sourced:
#
#   source tests/slurm/cluster.sh
#   slurm_start DIR || skip "$slurm_why"   # writes the config, starts the daemons
#   ...sbatch / squeue / scancel with SLURM_CONF exported...
#   slurm_stop                              # also run from an EXIT trap
#
# Everything lives under DIR: a munge key generated for the test, the
# slurm.conf, state, spool and logs; ports are picked free at start, so two
# clusters (two test passes) can run side by side.  Partitions "cpu" (the
# default) and "gpu" both hold the one node: the scripts under test name them
# as a site would, and the node runs whatever they submit.
slurm_why=""
slurm_dir=""

_slurm_free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

slurm_start() {
  slurm_dir=$1
  local d=$1 host user cpus
  for b in slurmctld slurmd munged mungekey sbatch squeue scancel scontrol; do
    command -v "$b" >/dev/null 2>&1 || [ -x "/usr/sbin/$b" ] ||
      { slurm_why="$b is not installed (Debian: slurm-wlm, munge)"; return 1; }
  done
  export PATH="$PATH:/usr/sbin"
  mkdir -p "$d/munge" "$d/state" "$d/spool" "$d/log"
  chmod 700 "$d/munge"
  chmod 755 "$d"
  mungekey -c -k "$d/munge/munge.key" >/dev/null 2>&1 ||
    dd if=/dev/urandom of="$d/munge/munge.key" bs=1024 count=1 2>/dev/null
  chmod 600 "$d/munge/munge.key"
  # -f: munged refuses a socket directory it finds insecure (the test's tmp).
  if ! munged -f --key-file="$d/munge/munge.key" --socket="$d/munge/sock" \
       --log-file="$d/munge/munged.log" --pid-file="$d/munge/munged.pid" \
       --seed-file="$d/munge/munged.seed" 2>"$d/munge/start.err"; then
    slurm_why="munged did not start: $(head -c 300 "$d/munge/start.err")"
    return 1
  fi
  host=$(hostname -s)
  user=$(id -un)
  cpus=$(nproc)
  touch "$d/plugstack.conf"
  cat >"$d/slurm.conf" <<CONF
ClusterName=nstest
SlurmctldHost=$host(127.0.0.1)
SlurmUser=$user
SlurmdUser=$user
AuthType=auth/munge
AuthInfo=socket=$d/munge/sock
CredType=cred/munge
SlurmctldPort=$(_slurm_free_port)
SlurmdPort=$(_slurm_free_port)
StateSaveLocation=$d/state
SlurmdSpoolDir=$d/spool
SlurmctldPidFile=$d/slurmctld.pid
SlurmdPidFile=$d/slurmd.pid
SlurmctldLogFile=$d/log/slurmctld.log
SlurmdLogFile=$d/log/slurmd.log
PlugStackConfig=$d/plugstack.conf
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/builtin
SchedulerParameters=sched_min_interval=100000
MessageTimeout=30
ReturnToService=2
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MinJobAge=3600
KillWait=5
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus State=UNKNOWN
PartitionName=cpu Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4
PartitionName=gpu Nodes=$host MaxTime=INFINITE State=UP OverSubscribe=FORCE:4
CONF
  export SLURM_CONF=$d/slurm.conf
  if ! slurmctld -f "$SLURM_CONF" 2>"$d/log/ctld.err"; then
    slurm_why="slurmctld did not start: $(head -c 300 "$d/log/ctld.err")"
    slurm_stop
    return 1
  fi
  if ! slurmd -f "$SLURM_CONF" -N "$host" 2>"$d/log/d.err"; then
    slurm_why="slurmd did not start: $(head -c 300 "$d/log/d.err")"
    slurm_stop
    return 1
  fi
  for _ in $(seq 60); do
    sinfo -h -N -o '%T' 2>/dev/null | grep -qE '^(idle|mixed|allocated)' && return 0
    sleep 0.5
  done
  slurm_why="the node never came up: $(tail -c 400 "$d/log/slurmctld.log" 2>/dev/null)"
  slurm_stop
  return 1
}

slurm_stop() {
  [ -n "$slurm_dir" ] || return 0
  local d=$slurm_dir pids="" f
  for f in "$d/slurmd.pid" "$d/slurmctld.pid" "$d/munge/munged.pid"; do
    [ -f "$f" ] && pids="$pids $(cat "$f")"
  done
  # shellcheck disable=SC2086
  [ -n "$pids" ] && kill $pids 2>/dev/null
  for _ in $(seq 50); do
    local alive=0 p
    for p in $pids; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ $alive -eq 0 ] && break
    sleep 0.1
  done
  slurm_dir=""
}

# slurm_wait JOBID... : until none of the jobs is pending or running (max 10 min).
slurm_wait() {
  local ids
  ids=$(IFS=,; echo "$*")
  for _ in $(seq 1200); do
    [ -z "$(squeue -h -j "$ids" -o '%i' 2>/dev/null)" ] && return 0
    sleep 0.5
  done
  return 1
}

# slurm_state JOBID : the job's state as scontrol tells it (COMPLETED, FAILED, ...);
# for an array, one line per task.
slurm_state() {
  scontrol -o show job "$1" 2>/dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p'
}
