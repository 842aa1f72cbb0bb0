#!/usr/bin/env bash
# Automatic restarts through launch/train with PLEXUS_MAX_RESTARTS (launch/supervise), 2 ranks, deterministic mode:
#   1. a rank killed twice (SIGKILL): no rank can write exit.json, so the supervisor goes by mpirun's status
#      (137): the job restarts twice from its newest checkpoint, logs each restart with its cause (stderr and
#      RUN_DIR/restarts.jsonl), summary.json counts 2, exit.json says completed, and param_sha256 equals an
#      uninterrupted run's;
#   2. out of restarts (PLEXUS_MAX_RESTARTS=1, two kills): the job ends with the failure's status after 1 restart;
#   3. a user error (status 2) is never restarted;
#   4. a signal to the launcher itself (SIGTERM, as Ctrl-C or scancel) is never restarted: the ranks checkpoint
#      and the launcher exits 75;
#   5. a stopped rank (SIGSTOP): rank 0 reports the stall and records it in exit.json, and the restart is logged
#      (stderr and restarts.jsonl) with that record's message.
# No process of any run may be left behind.
set -euo pipefail
name=supervise_restarts
source "$(dirname "${BASH_SOURCE[0]}")/fixtures/harness.sh"
source "$here/fixtures/faults.sh"

[ -x "$binary" ] || fail "no plexus binary at $binary"
command -v mpirun >/dev/null || fail "mpirun missing (openmpi-bin)"
mpirun_root_flags

scratch_directory plexus-supervise
cat > "$tmp/config.yaml" <<YAML
seed: 3
data: {train: $PLEXUS_FASHION_MNIST/train, train_limit: 4000}
model: {layers: [{units: 32, activation: relu}, {units: 10}]}
optimizer: {name: adam, lr: 0.002}
training: {epochs: 150, batch_size: 100, threads: 1, deterministic: true}
checkpoint: {every_steps: 25, keep: 2}
distributed: {timeout_seconds: 3, startup_timeout_seconds: 30}
YAML
export PLEXUS_SKIP_BUILD=1 PLEXUS_SKIP_PACKAGES=1 PLEXUS_BINARY="$binary" PLEXUS_RANKS=2

uninterrupted_run "$tmp/config.yaml"

# kill_rank_after RUN STEP: SIGKILL a random rank of RUN once its newest checkpoint is past STEP; sets `seen` to
# the newest checkpoint's step at that moment.
seen=0
kill_rank_after() {
    wait_until 60 checkpoint_after "$1" "$2" || fail "no checkpoint after step $2 in $1 within 60 s"
    local rank=$((RANDOM % 2)) pid
    wait_until 60 rank_pid "$1" "$rank" >/dev/null || fail "rank $rank of $1 is not running"
    seen=$(newest_step "$1")
    pid=$(rank_pid "$1" "$rank") || fail "rank $rank of $1 ended"
    kill -9 "$pid"
}

# --- 1. killed twice, restarted twice, the same bits ---------------------------------------------
run="$tmp/twice"
PLEXUS_MAX_RESTARTS=3 timeout -k 5 300 "$root/launch/train" "$tmp/config.yaml" --run-dir "$run" \
    >"$tmp/twice.out" 2>"$tmp/twice.err" </dev/null &
job=$!
kill_rank_after "$run" 0
wait_until 60 restarted "$run" 1 || fail "no restart logged after the first kill: $(tail -3 "$tmp/twice.err" | tr '\n' ' ')"
# The second kill once the resumed job has saved a checkpoint of its own.
kill_rank_after "$run" "$(newest_step "$run")"
st=0
wait "$job" || st=$?
[ "$st" = 0 ] || fail "twice-killed run exited $st: $(grep plexus "$tmp/twice.err" | tail -4 | tr '\n' ' ')"
[ "$(restart_count "$run")" = 2 ] || fail "restarts.jsonl has $(restart_count "$run") lines, expected 2"
[ "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["restarts"])' "$run/summary.json")" = 2 ] \
    || fail "summary.json does not count 2 restarts"
[ "$(grep -c '^plexus: supervise: restart [12]/3 after a rank was killed by signal SIGKILL (exit status 137); resuming' "$tmp/twice.err")" = 2 ] \
    || fail "stderr does not log two restarts with their cause: $(grep supervise "$tmp/twice.err" | tr '\n' ' ')"
[ "$(sha_of "$run")" = "$reference" ] || fail "twice-killed run: param_sha256 $(sha_of "$run") differs from the uninterrupted $reference"
problems=$(check_run_files "$run") || fail "twice-killed run: $problems"
[ "$(exit_field "$run" cause)/$(exit_field "$run" status)" = completed/0 ] || fail "twice-killed run: exit.json $(cat "$run/exit.json")"
grep '^plexus: supervise: restart' "$tmp/twice.err"
echo "param_sha256 $(sha_of "$run") (uninterrupted $reference)"

# --- 2. out of restarts ---------------------------------------------------------------------------
run="$tmp/budget"
PLEXUS_MAX_RESTARTS=1 timeout -k 5 300 "$root/launch/train" "$tmp/config.yaml" --run-dir "$run" \
    >"$tmp/budget.out" 2>"$tmp/budget.err" </dev/null &
job=$!
kill_rank_after "$run" 0
wait_until 60 restarted "$run" 1 || fail "no restart logged in the budget run"
kill_rank_after "$run" "$seen"
st=0
wait "$job" || st=$?
[ "$st" != 0 ] && [ "$st" != 124 ] || fail "out of restarts, the run exited $st"
[ "$(restart_count "$run")" = 1 ] || fail "budget run: $(restart_count "$run") restarts logged, expected 1"
grep -q "no restart left (PLEXUS_MAX_RESTARTS=1)" "$tmp/budget.err" || fail "budget run: no 'no restart left' line"

# --- 3. a user error is final ---------------------------------------------------------------------
st=0
PLEXUS_MAX_RESTARTS=3 timeout -k 5 60 "$root/launch/train" "$tmp/config.yaml" --run-dir "$tmp/bad" \
    --set training.epochs=0 >/dev/null 2>"$tmp/bad.err" </dev/null || st=$?
[ "$st" = 2 ] || fail "user error exited $st, expected 2"
[ "$(restart_count "$tmp/bad")" = 0 ] || fail "a user error was restarted"

# --- 4. a signal to the launcher is final: 75 ----------------------------------------------------
run="$tmp/signal"
PLEXUS_MAX_RESTARTS=3 timeout -k 5 300 "$root/launch/train" "$tmp/config.yaml" --run-dir "$run" \
    >"$tmp/signal.out" 2>"$tmp/signal.err" </dev/null &
job=$!
wait_until 60 checkpoint_after "$run" 0 || fail "signal run: no checkpoint within 60 s"
launcher=$(pgrep -f -- "supervise $run " | head -1) || fail "no supervise process for $run"
kill -TERM "$launcher"
st=0
wait "$job" || st=$?
[ "$st" = 75 ] || fail "SIGTERM to the launcher: exit status $st, expected 75: $(grep plexus "$tmp/signal.err" | tail -3 | tr '\n' ' ')"
[ "$(restart_count "$run")" = 0 ] || fail "a signal to the launcher was restarted"
grep -q "stopped by signal after step" "$tmp/signal.err" || fail "the ranks did not checkpoint and stop"

# --- 5. a stall, recorded by rank 0, restarts with the record's cause ----------------------------
run="$tmp/stall"
PLEXUS_MAX_RESTARTS=1 timeout -k 5 300 "$root/launch/train" "$tmp/config.yaml" --run-dir "$run" --set training.epochs=20 \
    >"$tmp/stall.out" 2>"$tmp/stall.err" </dev/null &
job=$!
wait_until 60 checkpoint_after "$run" 0 || fail "stall run: no checkpoint within 60 s"
pid=$(rank_pid "$run" 1) || fail "stall run: rank 1 is not running"
kill -STOP "$pid"
wait_until 60 restarted "$run" 1 || fail "stall run: no restart: $(grep plexus "$tmp/stall.err" | tail -3 | tr '\n' ' ')"
st=0
wait "$job" || st=$?
[ "$st" = 0 ] || fail "stall run exited $st: $(grep plexus "$tmp/stall.err" | tail -4 | tr '\n' ' ')"
stall_line=$(grep -E '^plexus: rank 1 stalled (at step [0-9]+|in the evaluation after epoch [0-9]+): no progress for 3 s; stopping the job$' "$tmp/stall.err") \
    || fail "stall run: no stall line: $(grep plexus "$tmp/stall.err" | tr '\n' ' ')"
grep -qF "plexus: supervise: restart 1/1 after ${stall_line#plexus: }; resuming from the newest valid checkpoint" "$tmp/stall.err" \
    || fail "stall run: the restart does not give the recorded cause: $(grep supervise "$tmp/stall.err" | tr '\n' ' ')"
python3 - "$run/restarts.jsonl" "${stall_line#plexus: }" <<'PY' || fail "stall run: restarts.jsonl $(cat "$run/restarts.jsonl")"
import json, sys
line = json.loads(open(sys.argv[1]).read())
sys.exit(0 if sorted(line) == ["cause", "checkpoint", "exit_status", "restart", "time"] and line["cause"] == sys.argv[2]
         and line["exit_status"] == 1 else 1)
PY
[ "$(exit_field "$run" cause)" = completed ] || fail "stall run: exit.json $(cat "$run/exit.json")"
grep '^plexus: supervise: restart' "$tmp/stall.err"

sleep 1
for run in twice budget signal stall; do
    left=$(leftover_processes "$tmp/$run")
    [ -z "$left" ] || fail "processes of run $run left: $left"
done
echo "PASS $name"
