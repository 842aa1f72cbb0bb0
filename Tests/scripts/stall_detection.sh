#!/usr/bin/env bash
# A rank that stops making progress (kill -STOP, as a hung NFS read or a deadlock would look) must not hang the job.
# With 3 ranks and distributed.timeout_seconds=T, one rank is stopped mid-training (rank 2, then rank 0, whose
# stall rank 1 must report): the job must end with status 1 within T + 5 s of the stop, print a warning at half the
# timeout naming that rank and exactly one line "plexus: rank R stalled at step N: no progress for T s; stopping the
# job", and leave no process behind (the stopped one included). Rank 0, when it is the one that reports, records the
# stall in RUN_DIR/exit.json (status 1, cause stalled, the stopped rank, the step, the line); stopped itself, it
# writes none, or - resumed by OpenMPI's SIGCONT before the kill - a record naming itself.
set -euo pipefail
name=stall_detection
source "$(dirname "${BASH_SOURCE[0]}")/fixtures/harness.sh"
source "$here/fixtures/faults.sh"

[ -x "$binary" ] || fail "no plexus binary at $binary"
command -v mpirun >/dev/null || fail "mpirun missing (openmpi-bin)"
mpirun_root_flags

scratch_directory plexus-stall
timeout=3

report=""
for victim in 2 0; do
    run="$tmp/stall-$victim"
    timeout -k 5 120 mpirun --oversubscribe -np 3 "$binary" train "$config" --run-dir "$run" --progress plain \
        --set data.test=null --set training.epochs=2000 --set "distributed.timeout_seconds=$timeout" \
        >"$tmp/out-$victim" 2>"$tmp/err-$victim" </dev/null &
    job=$!
    # Stop the victim once training runs (two epochs logged).
    for _ in $(seq 600); do
        [ "$(cat "$run/metrics.jsonl" 2>/dev/null | wc -l)" -ge 2 ] && break
        kill -0 "$job" 2>/dev/null || break
        sleep 0.1
    done
    pid="$(rank_pid "$run" "$victim")" || fail "rank $victim of the job is not running: $(tail -3 "$tmp/err-$victim" | tr '\n' ' ')"
    kill -STOP "$pid"
    stopped=$(date +%s.%N)
    st=0
    wait "$job" || st=$?
    ended=$(date +%s.%N)
    took=$(python3 -c "print(f'{$ended - $stopped:.1f}')")
    [ "$st" != 124 ] && [ "$st" != 137 ] || fail "job with rank $victim stopped hung (killed by timeout)"
    [ "$st" = 1 ] || fail "stopping rank $victim: exit status $st, expected 1; stderr: $(tail -5 "$tmp/err-$victim" | tr '\n' ' ')"
    # The stop lands in a step or, with fast epochs, in the evaluation after one: either is named.
    where="(at step [0-9]+|in the evaluation after epoch [0-9]+)"
    pattern="^plexus: rank $victim stalled $where: no progress for $timeout s; stopping the job\$"
    lines=$(grep -cE "$pattern" "$tmp/err-$victim" || true)
    [ "$lines" = 1 ] || fail "stopping rank $victim: expected one stall line naming it, found $lines; stderr: $(grep plexus "$tmp/err-$victim" | tr '\n' ' ')"
    grep -qE "^plexus: warning: waiting [0-9.]+ s $where for rank $victim \(no arrival\)" "$tmp/err-$victim" \
        || fail "stopping rank $victim: no warning at half the timeout naming it: $(grep plexus "$tmp/err-$victim" | tr '\n' ' ')"
    python3 -c "import sys; sys.exit(0 if $took <= $timeout + 5 else 1)" \
        || fail "stopping rank $victim: the job ended $took s after the stop (timeout $timeout s)"
    sleep 1
    if pgrep -f -- "--run-dir $run( |$)" >/dev/null; then
        fail "stopping rank $victim: processes left: $(pgrep -af -- "--run-dir $run( |$)" | head -3 | tr '\n' ' ')"
    fi
    if [ "$victim" = 0 ]; then
        if [ -e "$run/exit.json" ]; then
            python3 - "$run/exit.json" <<'PY' || fail "stopped rank 0 wrote a record not naming itself: $(cat "$run/exit.json")"
import json, re, sys
record = json.load(open(sys.argv[1]))
sys.exit(0 if record["status"] == 1 and record["cause"] == "stalled" and record["rank"] == 0
         and re.fullmatch(r"plexus: rank 0: stalled .* itself: no progress for \d+ s; stopping the job", record["message"]) else 1)
PY
        fi
    else
        python3 - "$run/exit.json" "$victim" "$(grep -E "$pattern" "$tmp/err-$victim")" <<'PY' \
            || fail "stopping rank $victim: exit.json $(cat "$run/exit.json" 2>&1)"
import json, re, sys
record, victim, line = json.load(open(sys.argv[1])), int(sys.argv[2]), sys.argv[3]
step = re.search(r"at step (\d+)", line)
sys.exit(0 if record == {"status": 1, "cause": "stalled", "rank": victim, "step": int(step.group(1)) if step else None,
                         "message": line} else 1)
PY
    fi
    report+="rank $victim: '$(grep -E "$pattern" "$tmp/err-$victim")' after ${took}s; "
done
echo "$report"
echo "PASS $name"
