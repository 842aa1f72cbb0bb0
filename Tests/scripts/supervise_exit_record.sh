#!/usr/bin/env bash
# RUN_DIR/exit.json and what launch/supervise decides from it.
#   1. Real one-rank runs record how they ended: completed (the done line, the step count), user_error (a
#      --resume with nothing to resume; rank 0), diverged (the step), signal (SIGTERM; the step of the
#      checkpoint): status, cause, rank, step, and the very line the run printed.
#   2. launch/supervise, given an attempt command that leaves one of those real records and exits with some
#      status, goes by the record, not the status: user_error and diverged are final and completed is done even
#      when the attempt exited 1; signal restarts; with no record it goes by the status (137 and 1 restart, 2 is
#      final). It removes a record before every attempt, so an earlier one never speaks for it.
set -euo pipefail
name=supervise_exit_record
source "$(dirname "${BASH_SOURCE[0]}")/fixtures/harness.sh"
source "$here/fixtures/faults.sh"

[ -x "$binary" ] || fail "no plexus binary at $binary"
scratch_directory plexus-exitrecord
export PLEXUS_BINARY="$binary"

# check_record RUN STATUS CAUSE RANK STEP LINE: RUN/exit.json holds exactly these (RANK or STEP "" for null).
check_record() {
    python3 - "$@" <<'PY' || fail "$1/exit.json is $(cat "$1/exit.json" 2>&1), expected status $2 cause $3 rank '$4' step '$5' message '$6'"
import json, sys
run, status, cause, rank, step, line = sys.argv[1:]
record = json.load(open(f"{run}/exit.json"))
expected = {"status": int(status), "cause": cause, "rank": int(rank) if rank else None, "step": int(step) if step else None,
            "message": line}
sys.exit(0 if record == expected else 1)
PY
    [ ! -e "$1/.exit.json.claimed" ] || fail "$1: the claimed file is still there"
}

# --- 1. real records ------------------------------------------------------------------------------
st=0
"$binary" train "$config" --run-dir "$tmp/completed" --progress plain --set training.epochs=1 >"$tmp/completed.out" 2>&1 || st=$?
[ "$st" = 0 ] || fail "the one-epoch run exited $st: $(tail -2 "$tmp/completed.out")"
steps=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["steps"])' "$tmp/completed/summary.json")
check_record "$tmp/completed" 0 completed "" "$steps" "$(tail -1 "$tmp/completed.out")"
grep -q '^plexus: done: ' <<<"$(tail -1 "$tmp/completed.out")" || fail "the last line is not the done line"

mkdir "$tmp/nothing"
st=0
"$binary" train "$config" --run-dir "$tmp/nothing" --resume >/dev/null 2>"$tmp/nothing.err" || st=$?
[ "$st" = 2 ] || fail "--resume with nothing to resume exited $st"
check_record "$tmp/nothing" 2 user_error 0 "" "$(cat "$tmp/nothing.err")"

st=0
"$binary" train "$config" --run-dir "$tmp/diverged" --set optimizer.lr=1e30 >/dev/null 2>"$tmp/diverged.err" || st=$?
[ "$st" = 3 ] || fail "lr 1e30 exited $st, expected 3 (diverged)"
line=$(grep non-finite "$tmp/diverged.err")
check_record "$tmp/diverged" 3 diverged "" "$(sed -E 's/.* at step ([0-9]+) .*/\1/' <<<"$line")" "$line"

"$binary" train "$config" --run-dir "$tmp/signal" --progress plain --set training.epochs=5000 --set checkpoint.every_steps=20 \
    >/dev/null 2>"$tmp/signal.err" </dev/null &
job=$!
wait_until 60 checkpoint_after "$tmp/signal" 0 || fail "the signal run saved no checkpoint in 60 s"
kill -TERM "$job"
st=0
wait "$job" || st=$?
[ "$st" = 75 ] || fail "SIGTERM: exit status $st, expected 75"
line=$(grep 'stopped by signal' "$tmp/signal.err") || fail "no stop line: $(cat "$tmp/signal.err")"
check_record "$tmp/signal" 75 signal "" "$(sed -E 's/.*after step ([0-9]+);.*/\1/' <<<"$line")" "$line"
echo "records: completed, user_error, diverged, signal as printed"

# --- 2. supervise decides from the record --------------------------------------------------------
# The attempt: appends to RUN.log whether a record was there at its start, then leaves the record of line N of
# RUN.plan ("SOURCE_RUN STATUS", SOURCE_RUN - for none) and exits STATUS.
cat > "$tmp/attempt" <<'ATTEMPT'
#!/usr/bin/env bash
run=$1
n=$(( $(cat "$run.count" 2>/dev/null || echo 0) + 1 ))
echo "$n" > "$run.count"
if [ -e "$run/exit.json" ]; then echo stale >> "$run.log"; else echo clean >> "$run.log"; fi
read -r source status < <(sed -n "${n}p" "$run.plan")
[ "$source" = - ] || cp "$source/exit.json" "$run/exit.json"
exit "$status"
ATTEMPT
chmod +x "$tmp/attempt"

# supervised NAME STALE PLAN...: runs launch/supervise over the plan (STALE 1: a completed record is in the run
# directory before it starts); sets `status`, `attempts`, `restarts` and `log` (one clean/stale per attempt).
supervised() {
    local run="$tmp/super-$1" stale=$2
    shift 2
    mkdir -p "$run"
    printf '%s\n' "$@" > "$run.plan"
    [ "$stale" = 0 ] || cp "$tmp/completed/exit.json" "$run/exit.json"
    status=0
    PLEXUS_MAX_RESTARTS=3 PLEXUS_RESTART_WAIT=5 timeout -k 5 60 "$root/launch/supervise" "$run" "$tmp/attempt" "$run" \
        2>"$run.err" </dev/null || status=$?
    attempts=$(cat "$run.count")
    restarts=$(restart_count "$run")
    log=$(tr '\n' ' ' < "$run.log")
}

supervised final-user 0 "$tmp/nothing 1"
[ "$status/$attempts" = 1/1 ] || fail "a user_error record with status 1: supervise exited $status after $attempts attempts (final expected)"
supervised final-diverged 0 "$tmp/diverged 1"
[ "$status/$attempts" = 1/1 ] || fail "a diverged record with status 1: exited $status after $attempts attempts (final expected)"
supervised finished 0 "$tmp/completed 1"
[ "$status/$attempts" = 0/1 ] || fail "a completed record with status 1: exited $status after $attempts attempts (done expected)"

supervised signal 0 "$tmp/signal 75" "$tmp/completed 0"
[ "$status/$attempts/$restarts" = 0/2/1 ] || fail "signal then completed: status $status, $attempts attempts, $restarts restarts"
[ "$log" = "clean clean " ] || fail "signal then completed: the second attempt found the first one's record ($log)"
step=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["step"])' "$tmp/signal/exit.json")
cause=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["cause"])' "$tmp/super-signal/restarts.jsonl")
[ "$cause" = "a rank got a stop signal and checkpointed after step $step (status 75)" ] || fail "signal restart cause: $cause"
grep -qF "plexus: supervise: restart 1/3 after $cause; from scratch (no checkpoint yet)" "$tmp/super-signal.err" \
    || fail "signal restart line: $(grep supervise "$tmp/super-signal.err")"

supervised fallback 1 "- 137" "- 1" "- 2"
[ "$status/$attempts/$restarts" = 2/3/2 ] || fail "no records (137, 1, 2): status $status, $attempts attempts, $restarts restarts"
[ "$log" = "clean clean clean " ] || fail "no records: an attempt found a record ($log)"
grep -qF "restart 1/3 after a rank was killed by signal SIGKILL (exit status 137); from scratch" "$tmp/super-fallback.err" \
    || fail "killed-rank restart line: $(grep supervise "$tmp/super-fallback.err")"
grep -qF "restart 2/3 after exit status 1 (rank 0 recorded no cause); from scratch" "$tmp/super-fallback.err" \
    || fail "status-1 restart line: $(grep supervise "$tmp/super-fallback.err")"
echo "supervise: final user_error/diverged and done completed despite status 1; signal restarted; 137 and 1 restarted, 2 final"
echo "PASS $name"
