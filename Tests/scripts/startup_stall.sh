#!/usr/bin/env bash
# A rank that stops before MPI_Init must not hang the job: MPI_Init waits for every rank and cannot be polled, so a
# watchdog thread holds it to distributed.startup_timeout_seconds, read from the config by each process before MPI
# starts. Two ranks under mpirun, rank 1 stopped (SIGSTOP) before plexus starts, startup_timeout_seconds T: the job
# must end with status 1 within T + 10 s, rank 0 must print one line naming itself and MPI_Init, and no process may
# be left (the stopped one included).
set -euo pipefail
name=startup_stall
source "$(dirname "${BASH_SOURCE[0]}")/fixtures/harness.sh"
source "$here/fixtures/faults.sh"

[ -x "$binary" ] || fail "no plexus binary at $binary"
command -v mpirun >/dev/null || fail "mpirun missing (openmpi-bin)"
mpirun_root_flags

scratch_directory plexus-startup-stall
timeout=3
# Rank 1 stops itself before it becomes plexus; the launcher's SIGKILL still ends it.
cat > "$tmp/stop-rank-1" <<'EOF'
#!/usr/bin/env bash
[ "${OMPI_COMM_WORLD_RANK:-0}" = 1 ] && kill -STOP $$
exec "$@"
EOF
chmod +x "$tmp/stop-rank-1"

run="$tmp/run"
started=$(date +%s.%N)
st=0
timeout -k 5 60 mpirun --oversubscribe -np 2 "$tmp/stop-rank-1" "$binary" train "$config" --run-dir "$run" \
    --progress plain --set "distributed.startup_timeout_seconds=$timeout" >"$tmp/out" 2>"$tmp/err" </dev/null || st=$?
took=$(python3 -c "print(f'{$(date +%s.%N) - $started:.1f}')")
[ "$st" != 124 ] && [ "$st" != 137 ] || fail "the job hung in MPI_Init (killed by timeout after ${took}s)"
[ "$st" = 1 ] || fail "exit status $st, expected 1; stderr: $(tail -5 "$tmp/err" | tr '\n' ' ')"
pattern="^plexus: rank 0: MPI_Init did not return within $timeout s \(a rank stopped, or its host unreachable\); stopping the job\$"
lines=$(grep -cE "$pattern" "$tmp/err" || true)
[ "$lines" = 1 ] || fail "expected one line from rank 0 naming MPI_Init, found $lines: $(grep plexus "$tmp/err" | tr '\n' ' ')"
python3 -c "import sys; sys.exit(0 if $took <= $timeout + 10 else 1)" || fail "the job ended ${took}s after it started (timeout $timeout s)"
sleep 1
if pgrep -f -- "--run-dir $run( |$)" >/dev/null; then
    fail "processes left: $(pgrep -af -- "--run-dir $run( |$)" | head -3 | tr '\n' ' ')"
fi
echo "'$(grep -E "$pattern" "$tmp/err")' after ${took}s"
echo "PASS $name"
