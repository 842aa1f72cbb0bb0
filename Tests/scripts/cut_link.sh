#!/usr/bin/env bash
# A cut link: two simulated hosts (network namespaces, Tests/scripts/fixtures/netns_hosts.sh), launch/train with a
# hostfile and PLEXUS_MAX_RESTARTS=1 in deterministic mode. Once training runs, host 2's link is set down while its
# processes stay alive (and our ssh no longer reaches it). Rank 0 must name the ranks behind the cut as stalled within
# distributed.timeout_seconds of the cut, the attempt must end within 20 s of that line - mpirun, its daemons and every
# rank, those behind the cut too - with exit.json recording the stall, and the restart must continue on host 1 and end
# with the param_sha256 of an uninterrupted run, nothing left on either host. Three times: one rank per host with
# rank 1 alive behind the cut; the same with rank 1 stopped across the cut (SIGSTOP, resumed 2 x timeout_seconds later,
# when it names itself stalled: it must still end its host's daemon); and ranks 1 and 2 alive behind the cut (host 2
# has two slots: they hear from each other, not from host 1, and must still end their daemon). Root only.
set -euo pipefail
name=cut_link
source "$(dirname "${BASH_SOURCE[0]}")/fixtures/harness.sh"
source "$here/fixtures/faults.sh"
source "$here/fixtures/netns_hosts.sh"

if [ "$(id -u)" != 0 ]; then echo "SKIP $name: needs root for network namespaces"; exit 0; fi
command -v ip >/dev/null || { echo "SKIP $name: no ip command (iproute2)"; exit 0; }
[ -x "$binary" ] || fail "no plexus binary at $binary"
mpirun_root_flags

scratch_directory plexus-cutlink
trap 'netns_hosts_down; cleanup_scratch' EXIT
netns_hosts_up 2 "$tmp" || fail "cannot create the namespace hosts"

netns_refusing_agent "$tmp"   # our ssh: it refuses hosts marked down, as ssh fails for a host it cannot reach

timeout=4
cat > "$tmp/config.yaml" <<YAML
seed: 23
data: {train: $PLEXUS_FASHION_MNIST/train, train_limit: 3000}
model: {layers: [{units: 64, activation: relu}, {units: 10}]}
optimizer: {name: adam, lr: 0.002}
training: {epochs: 10, batch_size: 120, threads: 1, deterministic: true}
checkpoint: {every_steps: 25, keep: 2}
distributed: {timeout_seconds: $timeout, startup_timeout_seconds: 30}
YAML
uninterrupted_run "$tmp/config.yaml"

# Two slots on host 2 for the case "several".
sed "2s/slots=1/slots=2/" "$tmp/hostfile" > "$tmp/hostfile-several"

# cut_case CASE: one job whose host 2 is cut off; CASE alive, stopped (rank 1 stopped across the cut) or several
# (ranks 1 and 2 behind the cut, alive).
cut_case() {
    local case=$1 run="$tmp/run-$1" job st left named ended cut stopped hostfile="$tmp/hostfile" ranks=2
    [ "$case" != several ] || { hostfile="$tmp/hostfile-several"; ranks=3; }
    ip -n "${netns_hosts[1]}" link set eth0 up
    rm -f "$tmp/down-$netns_net.2"
    cat > "$tmp/job-$case.sh" <<JOB
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export PLEXUS_SKIP_BUILD=1 PLEXUS_SKIP_PACKAGES=1 PLEXUS_BINARY="$binary" PLEXUS_RANKS=$ranks PLEXUS_MAX_RESTARTS=1
export PLEXUS_END_GRACE=${PLEXUS_END_GRACE:-10}
export PLEXUS_MPIRUN_ARGS="--hostfile $hostfile --bind-to none --mca plm_rsh_agent $tmp/ssh --mca btl tcp,self --mca btl_tcp_if_include $netns_net.0/24 --mca oob_tcp_if_include $netns_net.0/24"
exec "$root/launch/train" "$tmp/config.yaml" --run-dir "$run" --progress plain
JOB
    timeout -k 5 240 "$tmp/agent" "$netns_net.1" "bash $tmp/job-$case.sh" >"$tmp/job-$case.out" 2>"$tmp/job-$case.err" </dev/null &
    job=$!
    wait_until 120 checkpoint_after "$run" 25 || fail "$case: the 2-host job saved no checkpoint: $(tail -5 "$tmp/job-$case.err" | tr '\n' ' ')"
    [ "$(ip netns pids "${netns_hosts[1]}" | wc -l)" -gt "$((ranks - 2))" ] || fail "$case: too little runs on host 2"
    stopped=""
    if [ "$case" = stopped ]; then stopped=$(rank_pid "$run" 1) || fail "$case: rank 1 is not running"; kill -STOP "$stopped"; fi
    touch "$tmp/down-$netns_net.2"
    ip -n "${netns_hosts[1]}" link set eth0 down
    cut=$(date +%s.%N)
    [ -z "$stopped" ] || { sleep $((2 * timeout)); kill -CONT "$stopped"; } &
    # Rank 0 records the stall as it prints its line (which mpirun may pass on late, or not at all once it is ended).
    recorded() { [ -e "$run/exit.json" ]; }
    wait_until $((timeout + 10)) recorded || fail "$case: no stall recorded within $((timeout + 10)) s of the cut: $(grep plexus "$tmp/job-$case.err" | tail -3 | tr '\n' ' ')"
    named=$(stat -c %.9Y "$run/exit.json")
    [ "$(exit_field "$run" cause)" = stalled ] && [[ "$(exit_field "$run" rank)" =~ ^[1-$((ranks - 1))]$ ]] || fail "$case: exit.json: $(cat "$run/exit.json")"
    restart_line() { grep -q "^plexus: supervise: restart 1/1" "$tmp/job-$case.err"; }
    wait_until 25 restart_line || fail "$case: the cut attempt did not end within 25 s of the stall: $(grep plexus "$tmp/job-$case.err" | tail -3 | tr '\n' ' ')"
    ended=$(date +%s.%N)
    python3 -c "import sys; sys.exit(0 if $named - $cut <= $timeout + 2 and $ended - $named <= 20 else 1)" \
        || fail "$case: named $(python3 -c "print(f'{$named - $cut:.1f}')") s after the cut, ended $(python3 -c "print(f'{$ended - $named:.1f}')") s after that"
    left=$(ip netns pids "${netns_hosts[1]}" | wc -l)
    [ "$left" = 0 ] || fail "$case: $left processes left behind the cut: $(ip netns pids "${netns_hosts[1]}" | xargs -r ps -o pid,stat,args -p | tail -n +2 | tr '\n' ' ')"
    st=0
    wait "$job" || st=$?
    [ "$st" = 0 ] || fail "$case: the job exited $st after the cut: $(grep plexus "$tmp/job-$case.err" | tail -5 | tr '\n' ' ')"
    python3 - "$run/restarts.jsonl" "$ranks" <<'PY' || fail "$case: restart record: $(cat "$run/restarts.jsonl")"
import json, re, sys
record = json.loads(open(sys.argv[1]).readline())
# Rank 0 names every rank behind the cut it heard nothing from: rank 1, or with three ranks 1, 2 or both.
expected = r"rank 1 stalled" if sys.argv[2] == "2" else r"ranks? (1|2|1, 2) stalled"
sys.exit(0 if record["exit_status"] == 1 and re.match(expected, record["cause"]) else 1)
PY
    grep -q "host $netns_net.2 does not answer; leaving it out" "$tmp/job-$case.err" || fail "$case: the restart did not leave host 2 out"
    [ "$(sha_of "$run")" = "$reference" ] || fail "$case: param_sha256 $(sha_of "$run") differs from the uninterrupted run's $reference"
    sleep 1
    netns_hosts_assert_empty "$case: "
    [ -z "$(leftover_processes "$run")" ] || fail "$case: processes left: $(leftover_processes "$run")"
    python3 -c "print(f'$case: named {$named - $cut:.1f} s after the cut; attempt ended {$ended - $named:.1f} s after the line')"
    grep -E '^plexus: (ranks? [12].* stalled|supervise:|mpirun did not end)' "$tmp/job-$case.err"
}

for kind in alive stopped several; do cut_case "$kind"; done
echo "PASS $name"
