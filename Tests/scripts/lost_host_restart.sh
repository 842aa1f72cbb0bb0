#!/usr/bin/env bash
# A host lost mid-run: three simulated hosts (network namespaces, Tests/scripts/fixtures/netns_hosts.sh), one rank
# each, launch/train with a hostfile and PLEXUS_MAX_RESTARTS=2 in deterministic mode. Once training runs, host 3
# is lost: everything on it is killed and it stops answering (its link goes down and the rsh agent, our ssh,
# refuses it). The job must restart by itself on the two hosts that answer (2 ranks), from its newest checkpoint,
# and end with the param_sha256 of an uninterrupted run, restarts.jsonl naming the cause, summary.json world_size 2
# and restarts 1, and no process left on any host. Root only.
set -euo pipefail
name=lost_host_restart
source "$(dirname "${BASH_SOURCE[0]}")/fixtures/harness.sh"
source "$here/fixtures/faults.sh"
source "$here/fixtures/netns_hosts.sh"

if [ "$(id -u)" != 0 ]; then echo "SKIP $name: needs root for network namespaces"; exit 0; fi
command -v ip >/dev/null || { echo "SKIP $name: no ip command (iproute2)"; exit 0; }
[ -x "$binary" ] || fail "no plexus binary at $binary"
mpirun_root_flags

scratch_directory plexus-losthost
trap 'netns_hosts_down; cleanup_scratch' EXIT
netns_hosts_up 3 "$tmp" || fail "cannot create the namespace hosts"

netns_refusing_agent "$tmp"   # our ssh: it refuses hosts marked down, as ssh fails for a host that is gone

cat > "$tmp/config.yaml" <<YAML
seed: 21
data: {train: $PLEXUS_FASHION_MNIST/train, train_limit: 6000}
model: {layers: [{units: 64, activation: relu}, {units: 10}]}
optimizer: {name: adam, lr: 0.002}
training: {epochs: 40, batch_size: 120, threads: 1, deterministic: true}
checkpoint: {every_steps: 25, keep: 2}
distributed: {timeout_seconds: 4, startup_timeout_seconds: 30}
YAML
uninterrupted_run "$tmp/config.yaml"

run="$tmp/run"
cat > "$tmp/job.sh" <<JOB
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export PLEXUS_SKIP_BUILD=1 PLEXUS_SKIP_PACKAGES=1 PLEXUS_BINARY="$binary" PLEXUS_RANKS=3 PLEXUS_MAX_RESTARTS=2
export PLEXUS_MPIRUN_ARGS="--hostfile $tmp/hostfile --bind-to none --mca plm_rsh_agent $tmp/ssh --mca btl tcp,self --mca btl_tcp_if_include $netns_net.0/24 --mca oob_tcp_if_include $netns_net.0/24"
exec "$root/launch/train" "$tmp/config.yaml" --run-dir "$run" --progress plain
JOB
timeout -k 5 300 "$tmp/agent" "$netns_net.1" "bash $tmp/job.sh" >"$tmp/job.out" 2>"$tmp/job.err" </dev/null &
job=$!
wait_until 120 checkpoint_after "$run" 50 || fail "the 3-host job saved no checkpoint: $(tail -5 "$tmp/job.err" | tr '\n' ' ')"
[ "$(ip netns pids "${netns_hosts[2]}" | wc -l)" -gt 0 ] || fail "nothing runs on host 3"
# Host 3 is lost: what runs there dies, and it answers no more.
touch "$tmp/down-$netns_net.3"
ip netns pids "${netns_hosts[2]}" | xargs -r kill -9
ip -n "${netns_hosts[2]}" link set eth0 down
lost_at=$(newest_step "$run")
st=0
wait "$job" || st=$?
[ "$st" = 0 ] || fail "the job exited $st after host 3 was lost: $(grep plexus "$tmp/job.err" | tail -5 | tr '\n' ' ')"
[ "$(restart_count "$run")" = 1 ] || fail "$(restart_count "$run") restarts logged, expected 1: $(grep supervise "$tmp/job.err" | tr '\n' ' ')"
grep -qE '"cause": "(a host was lost|rank 2 stalled)' "$run/restarts.jsonl" || fail "restart cause: $(cat "$run/restarts.jsonl")"
grep -q "host $netns_net.3 does not answer; leaving it out" "$tmp/job.err" || fail "the restart did not leave host 3 out"
grep -q "restarting on $netns_net.1 $netns_net.2 (2 ranks)" "$tmp/job.err" || fail "the restart did not run on hosts 1 and 2"
python3 - "$run/summary.json" <<'PY' || fail "summary.json: $(cat "$run/summary.json")"
import json, sys
summary = json.load(open(sys.argv[1]))
sys.exit(0 if summary["world_size"] == 2 and summary["restarts"] == 1 else 1)
PY
[ "$(sha_of "$run")" = "$reference" ] || fail "param_sha256 $(sha_of "$run") differs from the uninterrupted run's $reference"
problems=$(check_run_files "$run") || fail "$problems"
sleep 1
netns_hosts_assert_empty ""
[ -z "$(leftover_processes "$run")" ] || fail "processes left: $(leftover_processes "$run")"
grep '^plexus: supervise:' "$tmp/job.err"
echo "host 3 lost after checkpoint step $lost_at; param_sha256 $(sha_of "$run") (uninterrupted $reference)"
echo "PASS $name"
