#!/usr/bin/env bash
# Starts a private single-node Slurm cluster (own munged socket, own ports, own state dirs under a
# temp dir; nothing in /etc is touched) and runs launch/slurm.sbatch with 2 tasks through it, once
# with srun --mpi=pmix and once with the mpirun fallback. Checks the job exit codes and that
# summary.json reports world_size 2. Root only (slurmd must run as root); installs slurm-wlm and
# munge if missing. Everything started here is stopped on exit.
set -euo pipefail
name=slurm_single_node
source "$(dirname "${BASH_SOURCE[0]}")/fixtures/harness.sh"

if [ "$(id -u)" != 0 ]; then echo "SKIP $name: needs root to run slurmd"; exit 0; fi
[ -x "$binary" ] || fail "no plexus binary at $binary"
ensure_packages slurm-wlm munge >/dev/null 2>&1 || fail "cannot install slurm-wlm munge"

tmp="$(mktemp -d /tmp/plexus-slurm.XXXXXX)"
chmod 755 "$tmp"
pids=()
cleanup() {
    local p
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do
        for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$p" 2>/dev/null || true
    done
    if [ "${PLEXUS_TEST_KEEP:-0}" = 1 ]; then echo "kept $tmp" >&2; else rm -rf "$tmp"; fi
}
trap cleanup EXIT

# --- munge: private key and socket --------------------------------------------------------------
mkdir -p "$tmp/munge" && chmod 700 "$tmp/munge"
dd if=/dev/urandom of="$tmp/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$tmp/munge/munge.key"
sock="$tmp/munge/munge.socket"
munged --force --socket="$sock" --key-file="$tmp/munge/munge.key" --pid-file="$tmp/munge/munged.pid" \
    --log-file="$tmp/munge/munged.log" --seed-file="$tmp/munge/munged.seed" 2>"$tmp/munge/start.err" \
    || fail "munged did not start: $(tail -1 "$tmp/munge/start.err")"
pids+=("$(cat "$tmp/munge/munged.pid")")

# --- slurm.conf ---------------------------------------------------------------------------------
node="$(hostname -s)"
cpus="$(nproc)"
mem_mb=$(( $(awk '/^MemTotal:/ {print $2}' /proc/meminfo) / 1024 * 9 / 10 ))
# Free TCP ports for this cluster only, so a system Slurm (6817/6818) is never disturbed.
read -r ctld_port slurmd_port < <(python3 -c '
import socket
ss=[socket.socket() for _ in range(2)]
[s.bind(("127.0.0.1",0)) for s in ss]
print(*[s.getsockname()[1] for s in ss])')
mkdir -p "$tmp/state" "$tmp/spool" "$tmp/log"
cat > "$tmp/slurm.conf" <<CONF
ClusterName=plexustest
SlurmctldHost=$node(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$sock
StateSaveLocation=$tmp/state
SlurmdSpoolDir=$tmp/spool/slurmd-%n
SlurmctldPidFile=$tmp/slurmctld.pid
SlurmdPidFile=$tmp/slurmd.pid
SlurmctldLogFile=$tmp/log/slurmctld.log
SlurmdLogFile=$tmp/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
# Passes every second, so a requeued job starts when its hold ends, not at the next 30-60 s pass.
SchedulerParameters=sched_interval=1,bf_interval=1
MpiDefault=none
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=2
MinJobAge=30
NodeName=$node NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=test Nodes=$node Default=YES MaxTime=INFINITE State=UP
CONF
# No cgroup.conf needed: proctrack/linuxproc and task/none don't use cgroups.
export SLURM_CONF="$tmp/slurm.conf"

slurmctld -i -f "$SLURM_CONF" 2>"$tmp/log/slurmctld.err" || fail "slurmctld did not start: $(tail -2 "$tmp/log/slurmctld.err" "$tmp/log/slurmctld.log" 2>/dev/null | tr '\n' ' ')"
for _ in $(seq 50); do [ -s "$tmp/slurmctld.pid" ] && break; sleep 0.1; done
pids+=("$(cat "$tmp/slurmctld.pid")")
slurmd -f "$SLURM_CONF" 2>"$tmp/log/slurmd.err" || fail "slurmd did not start: $(tail -2 "$tmp/log/slurmd.err" "$tmp/log/slurmd.log" 2>/dev/null | tr '\n' ' ')"
for _ in $(seq 50); do [ -s "$tmp/slurmd.pid" ] && break; sleep 0.1; done
pids+=("$(cat "$tmp/slurmd.pid")")

state=""
for _ in $(seq 60); do
    state="$(sinfo -h -n "$node" -o %t 2>/dev/null | head -1 || true)"
    [ "$state" = idle ] && break
    sleep 0.5
done
[ "$state" = idle ] || fail "node $node not idle after 30 s (state '${state}'): $(tail -3 "$tmp/log/slurmctld.log" | tr '\n' ' ')"

# --- jobs ---------------------------------------------------------------------------------------
run_job() {  # LAUNCHER: sbatch the training with 2 tasks, check exit code and world_size
    local launcher=$1 run="$tmp/run-$1" out="$tmp/job-$1.out" st=0
    PLEXUS_SLURM_LAUNCHER=$launcher timeout 150 sbatch --wait --quiet --ntasks=2 --cpus-per-task=1 \
        --time=00:03:00 --job-name="plexus-$launcher" --output="$out" --chdir="$root" \
        --export=ALL "$root/launch/slurm.sbatch" "$config" --run-dir "$run" || st=$?
    [ "$st" = 0 ] || fail "$launcher job exited $st: $(tail -5 "$out" 2>/dev/null | tr '\n' ' ')"
    [ -f "$run/summary.json" ] || fail "$launcher job wrote no $run/summary.json"
    python3 - "$run/summary.json" <<'PY' || fail "$launcher: summary.json world_size is not 2: $(head -c 300 "$run/summary.json")"
import json, sys
sys.exit(0 if json.load(open(sys.argv[1])).get("world_size") == 2 else 1)
PY
}
run_job srun
run_job mpirun

# A user error must end the job with exit code 2, not hang.
st=0
PLEXUS_SLURM_LAUNCHER=srun timeout 90 sbatch --wait --quiet --ntasks=2 --time=00:02:00 \
    --output="$tmp/job-bad.out" --chdir="$root" --export=ALL "$root/launch/slurm.sbatch" "$config" \
    --run-dir "$tmp/run-bad" --set data.train=/nonexistent/plexus-train || st=$?
[ "$st" = 2 ] || fail "job with a missing data file exited $st, expected 2: $(tail -3 "$tmp/job-bad.out" | tr '\n' ' ')"
grep -q /nonexistent/plexus-train "$tmp/job-bad.out" || fail "job output does not name the missing file"

# Preemption: SIGUSR1 to the batch shell (what `#SBATCH --signal=B:USR1@120` does before a time
# limit) makes the ranks checkpoint and exit 75; the script requeues the job, which resumes and finishes.
run="$tmp/run-preempt" out="$tmp/job-preempt.out"
job=$(PLEXUS_SLURM_LAUNCHER=srun sbatch --parsable --ntasks=2 --cpus-per-task=1 --time=00:05:00 \
    --job-name=plexus-preempt --output="$out" --chdir="$root" --export=ALL "$root/launch/slurm.sbatch" "$config" \
    --run-dir "$run" --set data.train_limit=20000 --set training.epochs=4 --set checkpoint.every_steps=40) \
    || fail "sbatch of the preemption job failed"
for _ in $(seq 600); do compgen -G "$run/checkpoints/step-*.safetensors" >/dev/null && break; sleep 0.1; done
compgen -G "$run/checkpoints/step-*.safetensors" >/dev/null || fail "preemption job wrote no checkpoint in 60 s: $(tail -3 "$out" | tr '\n' ' ')"
scancel --batch --signal=USR1 "$job" || fail "scancel --signal=USR1 failed"
job_state() { scontrol show job "$job" 2>/dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p' | head -1; }
# Slurm holds a requeued job for about 2 minutes (Reason=BeginTime); the test lets it start after 8 s, time
# enough for the old job step to be torn down (KillWait=2; started at once, the new step's launch fails).
hurried=""
hurry_requeued() {
    if [ "$hurried" != "$job" ] && scontrol show job "$job" 2>/dev/null | grep -q 'Reason=BeginTime'; then
        scontrol update JobId="$job" StartTime=now+8 2>/dev/null && hurried=$job
    fi
    return 0
}
# wait_for_job: until $job ends (3 minutes at most); sets `state`.
wait_for_job() {
    state=""
    for _ in $(seq 900); do
        state="$(job_state)"
        [ "$state" != PENDING ] || hurry_requeued
        case "$state" in COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY) break ;; esac
        sleep 0.2
    done
}
wait_for_job
[ "$state" = COMPLETED ] || fail "preempted job ended in state '$state': $(tail -5 "$out" | tr '\n' ' ')"
grep -q "requeueing job $job" "$out" || fail "the job was not requeued after the stop signal: $(tail -5 "$out" | tr '\n' ' ')"
grep -q "resuming from" "$out" || fail "the requeued job did not resume from its checkpoint"
[ -f "$run/summary.json" ] || fail "the resumed job wrote no summary.json"

# Automatic restarts inside the allocation (PLEXUS_MAX_RESTARTS=2, launch/supervise): a rank killed with SIGKILL
# restarts the job step from its newest checkpoint; the preemption signal to the batch shell is then passed on and
# never restarted (75, requeue), and the requeued job resumes and finishes; summary.json counts the one restart.
source "$here/fixtures/faults.sh"
run="$tmp/run-restart" out="$tmp/job-restart.out"
job=$(PLEXUS_MAX_RESTARTS=2 PLEXUS_SLURM_LAUNCHER=srun sbatch --parsable --ntasks=2 --cpus-per-task=1 --time=00:05:00 \
    --job-name=plexus-restart --output="$out" --chdir="$root" --export=ALL "$root/launch/slurm.sbatch" "$config" \
    --run-dir "$run" --set data.train_limit=20000 --set training.epochs=10 --set checkpoint.every_steps=40) \
    || fail "sbatch of the restart job failed"
wait_until 60 checkpoint_after "$run" 0 || fail "restart job wrote no checkpoint in 60 s: $(tail -3 "$out" | tr '\n' ' ')"
wait_until 30 rank_pid "$run" 1 >/dev/null || fail "rank 1 of the restart job is not running"
kill -9 "$(rank_pid "$run" 1)"
wait_until 60 restarted "$run" 1 || fail "no restart after a rank was killed: $(tail -5 "$out" | tr '\n' ' ')"
wait_until 60 checkpoint_after "$run" "$(newest_step "$run")" || fail "the restarted step saved no checkpoint"
scancel --batch --signal=USR1 "$job" || fail "scancel --signal=USR1 failed"
wait_for_job
[ "$state" = COMPLETED ] || fail "restart job ended in state '$state': $(tail -5 "$out" | tr '\n' ' ')"
grep -q "requeueing job $job" "$out" || fail "the signal to the batch shell did not requeue: $(grep plexus "$out" | tail -5 | tr '\n' ' ')"
[ "$(restart_count "$run")" = 1 ] || fail "restart job: $(restart_count "$run") restarts logged, expected 1 (the signal must not restart)"
python3 -c 'import json,sys; sys.exit(0 if json.load(open(sys.argv[1]))["restarts"] == 1 else 1)' "$run/summary.json" \
    || fail "restart job: summary.json does not count 1 restart"
grep '^plexus: supervise: restart' "$out"

echo "PASS $name"
