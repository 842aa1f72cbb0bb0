#!/usr/bin/env bash
# Chaos: random faults against a deterministic 3-rank job under automatic restarts (launch/train with
# PLEXUS_MAX_RESTARTS). Each fault is SIGKILL, SIGSTOP, SIGTERM or SIGUSR1 (every kind in turn, in a shuffled
# order) sent to a random rank at a random moment of training: 0.3-2 s (uniformly, in tenths) after the current
# attempt has saved a checkpoint of its own, so every fault lands in the middle of some step, allreduce,
# evaluation or checkpoint write. Every run must end with status 0 and the
# param_sha256 of the uninterrupted run, with every file of its run directory whole (no torn or temporary file)
# and no process left behind. Faults are only sent while the current attempt trains (after it saved a checkpoint
# of its own): a rank stopped inside MPI_Init, before plexus runs, is not detected (see docs/fault-tolerance.md).
#
#   Tests/scripts/chaos.sh                                  the suite's short run: 1 run, 4 faults (one of each kind)
#   PLEXUS_CHAOS_RUNS=5 PLEXUS_CHAOS_FAULTS=7 Tests/scripts/chaos.sh    (bench/chaos.sh: the long one)
#   PLEXUS_CHAOS_SEED=N                                     replay a sequence of faults
#   PLEXUS_CHAOS_SLOW=1    also SLOW: the rank is held to 10% of a core (cgroup v1 cpu quota, root) for 1-3 s, which
#                          must end in no restart and change no bit (bench/chaos.sh sets it)
#   PLEXUS_CHAOS_HOSTS=1   the ranks on simulated hosts (network namespaces, fixtures/netns_hosts.sh, root; the job
#                          launched from host 1 with a hostfile), and also CUT: the link of a rank's host other than
#                          host 1 is set down, its processes alive, until the restart it causes; by then every process
#                          behind the cut must have ended by itself, and the restart runs on the hosts that answer
#                          (bench/chaos.sh sets it)
#   PLEXUS_CHAOS_TIMEOUT=5 distributed.timeout_seconds (3): longer on a loaded machine, where a checkpoint or a step
#                          can keep a rank away for 3 s without any fault, and the job restarts for it
#   PLEXUS_CHAOS_KINDS="CUT STOP"   only these kinds of fault (of those the settings above allow), e.g. to replay one
set -euo pipefail
name=chaos
source "$(dirname "${BASH_SOURCE[0]}")/fixtures/harness.sh"
source "$here/fixtures/faults.sh"
source "$here/fixtures/netns_hosts.sh"

[ -x "$binary" ] || fail "no plexus binary at $binary"
command -v mpirun >/dev/null || fail "mpirun missing (openmpi-bin)"
mpirun_root_flags

faults=${PLEXUS_CHAOS_FAULTS:-4}
runs=${PLEXUS_CHAOS_RUNS:-1}
seed=${PLEXUS_CHAOS_SEED:-$(( $(date +%s) % 100000 ))}
RANDOM=$seed
ranks=3
# Long enough for every fault (at most ~2 s of training each, ~2,000 steps/s with the shared-memory reduction)
# to land before the end.
epochs=${PLEXUS_CHAOS_EPOCHS:-$((20 + 80 * faults))}
scratch_directory plexus-chaos
slow_group=""
hosts=${PLEXUS_CHAOS_HOSTS:-0}
# Everything this harness made, also on failure: the quota's cgroup, the namespace hosts, the scratch directory.
chaos_cleanup() {
    if [ -n "$slow_group" ] && [ -d "$slow_group" ]; then
        while read -r p; do echo "$p" > "$cpu/cgroup.procs" 2>/dev/null || true; done < "$slow_group/cgroup.procs"
        rmdir "$slow_group"
    fi
    netns_hosts_down
    cleanup_scratch
}
trap chaos_cleanup EXIT
# 60 steps per epoch; checkpoints every 30 steps and every 0.5 s; a stall is declared after 3 s (PLEXUS_CHAOS_TIMEOUT).
stall_timeout=${PLEXUS_CHAOS_TIMEOUT:-3}
cat > "$tmp/config.yaml" <<YAML
seed: 9
data: {train: $PLEXUS_FASHION_MNIST/train, train_limit: 6000}
model: {layers: [{units: 64, activation: relu}, {units: 10}]}
optimizer: {name: adamw, lr: 0.002}
schedule: {name: cosine, warmup_steps: 50}
training: {epochs: $epochs, batch_size: 100, threads: 1, deterministic: true}
checkpoint: {every_steps: 30, every_seconds: 0.5, keep: 2}
distributed: {timeout_seconds: $stall_timeout, startup_timeout_seconds: 20}
YAML
export PLEXUS_SKIP_BUILD=1 PLEXUS_SKIP_PACKAGES=1 PLEXUS_BINARY="$binary" PLEXUS_RANKS=$ranks

uninterrupted_run "$tmp/config.yaml"

signals=(KILL STOP TERM USR1)
declare -A sent=([KILL]=0 [STOP]=0 [TERM]=0 [USR1]=0 [SLOW]=0 [CUT]=0)
cpu=/sys/fs/cgroup/cpu
if [ "${PLEXUS_CHAOS_SLOW:-0}" = 1 ]; then
    [ "$(id -u)" = 0 ] && [ -w "$cpu/cgroup.procs" ] || fail "PLEXUS_CHAOS_SLOW needs root and a writable $cpu"
    signals+=(SLOW)
    slow_group="$cpu/plexus-chaos-slow-$$"
    mkdir "$slow_group"
    echo 10000 > "$slow_group/cpu.cfs_period_us"
    echo 1000 > "$slow_group/cpu.cfs_quota_us"
fi
if [ "$hosts" = 1 ]; then
    [ "$(id -u)" = 0 ] && command -v ip >/dev/null || fail "PLEXUS_CHAOS_HOSTS needs root and ip (iproute2)"
    signals+=(CUT)
    netns_hosts_up "$ranks" "$tmp" || fail "cannot create the namespace hosts"
    netns_refusing_agent "$tmp"   # our ssh: it refuses a host whose link is cut, as ssh would
    cat > "$tmp/job.sh" <<JOB
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export PLEXUS_MPIRUN_ARGS="--hostfile $tmp/hostfile --bind-to none --mca plm_rsh_agent $tmp/ssh --mca btl tcp,self --mca btl_tcp_if_include $netns_net.0/24 --mca oob_tcp_if_include $netns_net.0/24"
exec "$root/launch/train" "\$@"
JOB
fi
if [ -n "${PLEXUS_CHAOS_KINDS:-}" ]; then
    for kind in $PLEXUS_CHAOS_KINDS; do
        [[ " ${signals[*]} " == *" $kind "* ]] || fail "PLEXUS_CHAOS_KINDS: $kind is not one of ${signals[*]} (with these settings)"
    done
    read -ra signals <<<"$PLEXUS_CHAOS_KINDS"
fi
# start_job RUN: the job under automatic restarts, in the background (from host 1 in hosts mode); sets `job`.
start_job() {
    local train=("$root/launch/train")
    [ "$hosts" = 1 ] && train=("$tmp/agent" "$netns_net.1" "bash $tmp/job.sh $tmp/config.yaml --run-dir $1 --progress plain")
    [ "$hosts" = 1 ] || train+=("$tmp/config.yaml" --run-dir "$1" --progress plain)
    PLEXUS_MAX_RESTARTS=$((faults + 3)) timeout -k 5 600 "${train[@]}" >"$1.out" 2>"$1.err" </dev/null &
    job=$!
}
# The namespace host a process runs on (pxhI-...), and its index I.
host_of() { ip netns identify "$1"; }
host_index() { local ns=${1#pxh}; echo "${ns%%-*}"; }
# SLOW: rank pid $1 held to 10% of a core for 1-3 s, then let go.
slow_down() {
    echo "$1" > "$slow_group/cgroup.procs" 2>/dev/null || return 0
    sleep "$((1 + RANDOM % 3))"
    echo "$1" > "$cpu/cgroup.procs" 2>/dev/null || true
}
# CUT: the link of rank $3's host (pid $4) set down in run $1 at fault $2; once the job has restarted without it,
# nothing may be left behind the cut, and the link comes back (for a later restart to use the host again).
cut_link() {
    local ns host before cut lines
    ns=$(host_of "$4") || fail "run $1: rank $3 (pid $4) runs on no namespace host"
    host=$netns_net.$(host_index "$ns")
    before=$(restart_count "$run")
    lines=$(grep -c "the dying job still has" "$run.err" || true)
    touch "$tmp/down-$host"
    ip -n "$ns" link set eth0 down
    cut=$(date +%s.%N)
    echo "run $1 fault $2: link of $host cut (rank $3, pid $4) at step ~$(newest_step "$run")"
    wait_until 60 restarted "$run" $((before + 1)) \
        || fail "run $1: no restart within 60 s of the cut of $host: $(grep plexus "$run.err" | tail -3 | tr '\n' ' ')"
    echo "  restarted $(python3 -c "print(f'{$(date +%s.%N) - $cut:.1f}')") s after the cut: $(tail -1 "$run/restarts.jsonl")"
    [ "$(grep -c "the dying job still has" "$run.err" || true)" = "$lines" ] \
        || fail "run $1: the attempt cut at $host did not end by itself: $(grep "the dying job still has" "$run.err" | tail -1)"
    netns_hosts_assert_empty "run $1: behind the cut of $host, " "$ns"
    python3 -c 'import json, sys; sys.exit(json.loads(open(sys.argv[1]).readlines()[-1])["exit_status"] != 1)' \
        "$run/restarts.jsonl" || fail "run $1: the cut attempt did not end with status 1: $(tail -1 "$run/restarts.jsonl")"
    ip -n "$ns" link set eth0 up
    rm -f "$tmp/down-$host"
}
injected=0 restarts=0 identical=0
trained_since() { checkpoint_after "$1" "$2" && rank_pid "$1" 0 >/dev/null; }
for r in $(seq "$runs"); do
    run="$tmp/run$r"
    start_job "$run"
    # A shuffled cycle of the kinds, so that every kind is sent.
    mapfile -t kinds < <(for i in $(seq 0 $((faults - 1))); do echo "$((RANDOM)) ${signals[$((i % ${#signals[@]}))]}"; done | sort -n | cut -d' ' -f2)
    resumed=0
    for i in $(seq 0 $((faults - 1))); do
        # This attempt trains (a checkpoint of its own, rank 0 alive); the fault comes 0.3-2 s later.
        wait_until 120 trained_since "$run" "$resumed" \
            || fail "run $r: the job did not train again before fault $((i + 1)) ($(kill -0 $job 2>/dev/null && echo running || echo ended)): $(grep plexus "$tmp/run$r.err" | tail -3 | tr '\n' ' ')"
        tenths=$((3 + RANDOM % 18))
        sleep "$((tenths / 10)).$((tenths % 10))"
        # After a cut the job runs on the hosts that answered: fewer ranks.
        live=$ranks
        [ "$hosts" = 1 ] && live=$(job_ranks "$run" | wc -l)
        victim=$((RANDOM % live))
        # A cut never falls on rank 0's host, host 1: the launcher runs there.
        if [ "${kinds[$i]}" = CUT ]; then
            [ "$live" -ge 2 ] || fail "run $r: $live rank(s) running at fault $((i + 1)), none off host 1 to cut"
            victim=$((1 + RANDOM % (live - 1)))
        fi
        pid=$(rank_pid "$run" "$victim") || fail "run $r: rank $victim not running at fault $((i + 1)) (the run ended too soon? PLEXUS_CHAOS_EPOCHS)"
        before=$(restart_count "$run")
        injected=$((injected + 1))
        sent[${kinds[$i]}]=$((sent[${kinds[$i]}] + 1))
        if [ "${kinds[$i]}" = SLOW ]; then
            echo "run $r fault $((i + 1)): rank $victim (pid $pid) held to 10% of a core at step ~$(newest_step "$run")"
            slow_down "$pid"
            [ "$(restart_count "$run")" = "$before" ] || fail "run $r: a slow rank made the job restart"
            continue
        fi
        if [ "${kinds[$i]}" = CUT ]; then
            cut_link "$r" "$((i + 1))" "$victim" "$pid"
            resumed=$(newest_step "$run")
            continue
        fi
        kill "-${kinds[$i]}" "$pid"
        echo "run $r fault $((i + 1)): SIG${kinds[$i]} to rank $victim (pid $pid) at step ~$(newest_step "$run")"
        # Wait for the restart it causes (a stop signal after the last step causes none: the run then ends).
        wait_until 60 restarted "$run" $((before + 1)) || ! kill -0 "$job" 2>/dev/null \
            || fail "run $r: no restart within 60 s of SIG${kinds[$i]} to rank $victim: $(grep plexus "$tmp/run$r.err" | tail -3 | tr '\n' ' ')"
        resumed=$(newest_step "$run")
    done
    st=0
    wait "$job" || st=$?
    [ "$st" = 0 ] || fail "run $r exited $st (seed $seed): $(grep plexus "$tmp/run$r.err" | tail -4 | tr '\n' ' ')"
    problems=$(check_run_files "$run") || fail "run $r (seed $seed): $problems"
    sleep 0.5
    left=$(leftover_processes "$run")
    [ -z "$left" ] || fail "run $r: processes left: $left"
    netns_hosts_assert_empty "run $r: "
    count=$(restart_count "$run")
    restarts=$((restarts + count))
    sha=$(sha_of "$run")
    if [ "$sha" = "$reference" ]; then identical=$((identical + 1)); fi
    echo "run $r: $faults faults, $count restarts, param_sha256 $sha ($( [ "$sha" = "$reference" ] && echo identical || echo DIFFERENT))"
    grep '^plexus: supervise: restart' "$tmp/run$r.err" | sed 's/^/  /'
done
summary="$injected faults (KILL ${sent[KILL]}, STOP ${sent[STOP]}, TERM ${sent[TERM]}, USR1 ${sent[USR1]}, SLOW ${sent[SLOW]}, CUT ${sent[CUT]}), $restarts restarts, $identical/$runs runs identical to the uninterrupted one, seed $seed"
echo "chaos: $summary"
[ "$identical" = "$runs" ] || fail "$summary"
echo "PASS $name"
