#!/usr/bin/env bash
# A rank much slower than the others must be named, not just slow the job down. Two ranks under mpirun, rank 1 held
# from its start to 10% of a core by the cgroup v1 cpu controller (cpu.cfs_quota_us): rank 0 must print, once,
# "plexus: rank 1 (host H) computes R× slower than the others' median; the job runs at its pace, P% of each step
# waiting" with R > 3 (a tenth of a core predicts about 10; a clock that missed the time the quota held rank 1
# inside a wait saw 1.1–6), and the lines of metrics.jsonl past the first 100 steps (the window judged) must carry
# slowest_rank 1, its ratio and the wait fraction. Then, under the same quota in deterministic mode, a run with
# distributed.balance must move rows away from rank 1 and end with the same param_sha256 as a run without it.
set -euo pipefail
name=slow_rank
source "$(dirname "${BASH_SOURCE[0]}")/fixtures/harness.sh"
source "$here/fixtures/faults.sh"

[ -x "$binary" ] || fail "no plexus binary at $binary"
command -v mpirun >/dev/null || fail "mpirun missing (openmpi-bin)"
[ "$(id -u)" = 0 ] || { echo "SKIP $name: needs root (a cgroup cpu quota)"; exit 0; }
cpu=/sys/fs/cgroup/cpu
[ -w "$cpu/cgroup.procs" ] && [ -e "$cpu/cpu.cfs_quota_us" ] \
    || { echo "SKIP $name: no writable cgroup v1 cpu controller at $cpu"; exit 0; }
mpirun_root_flags

scratch_directory plexus-slow-rank
# Rank 1's group holds it to 10% of a core; both groups have the most cpu.shares, so other load on the machine
# does not make rank 0 as slow.
group="$cpu/plexus-slow-rank-$$"
mkdir "$group-0" "$group-1"
remove_group() {
    for rank in 0 1; do
        [ -d "$group-$rank" ] || continue
        while read -r pid; do echo "$pid" > "$cpu/cgroup.procs" 2>/dev/null || true; done < "$group-$rank/cgroup.procs"
        rmdir "$group-$rank" 2>/dev/null || true
    done
    cleanup_scratch
}
trap remove_group EXIT
echo 262144 > "$group-0/cpu.shares"
echo 262144 > "$group-1/cpu.shares"
echo 10000 > "$group-1/cpu.cfs_period_us"
echo 1000 > "$group-1/cpu.cfs_quota_us"

# Each rank joins its group before plexus starts, so rank 1 is slow from its first instruction.
cat > "$tmp/slow-rank-1" <<EOF
#!/usr/bin/env bash
echo \$\$ > "$group-\${OMPI_COMM_WORLD_RANK:-0}/cgroup.procs"
exec "\$@"
EOF
chmod +x "$tmp/slow-rank-1"

run="$tmp/run"
started=$(date +%s.%N)
timeout -k 5 120 mpirun --oversubscribe --bind-to none -np 2 "$tmp/slow-rank-1" "$binary" train "$config" \
    --run-dir "$run" --progress plain --set data.test=null --set training.epochs=8 \
    --set 'model.layers=[{units: 256, activation: relu}, {units: 10}]' \
    >"$tmp/out" 2>"$tmp/err" </dev/null || fail "training failed: $(tail -3 "$tmp/err" | tr '\n' ' ')"
took=$(python3 -c "print(f'{$(date +%s.%N) - $started:.1f}')")

pattern="^plexus: rank 1 \(host [^)]+\) computes [0-9]+\.[0-9]× slower than the others' median; the job runs at its pace, [0-9]+% of each step waiting\$"
lines=$(grep -cE "$pattern" "$tmp/out" || true)
[ "$lines" = 1 ] || fail "expected one line naming rank 1, found $lines: $(grep plexus "$tmp/out" | tr '\n' ' ')"
line=$(grep -E "$pattern" "$tmp/out")
ratio=$(sed -E 's/.* computes ([0-9.]+)× .*/\1/' <<<"$line")
python3 -c "import sys; sys.exit(0 if $ratio > 3 else 1)" || fail "ratio $ratio not above 3: $line"
python3 - "$run/metrics.jsonl" <<'PY' || fail "metrics.jsonl lacks the slow rank's figures: $(head -2 "$run/metrics.jsonl")"
import json, sys
lines = [json.loads(line) for line in open(sys.argv[1])]
assert len(lines) == 8, len(lines)
for record in (record for record in lines if record["step"] >= 100):
    assert record["slowest_rank"] == 1 and record["slowest_rank_ratio"] > 3 and 0 < record["wait_fraction"] <= 1, record
PY
# Balanced or not, the same bits: 80 steps, so the first shares (60 steps in) move whole deterministic groups of 10.
for balance in false true; do
    timeout -k 5 120 mpirun --oversubscribe --bind-to none -np 2 "$tmp/slow-rank-1" "$binary" train "$config" \
        --run-dir "$tmp/run-$balance" --progress plain --set data.test=null --set training.epochs=4 \
        --set 'model.layers=[{units: 256, activation: relu}, {units: 10}]' --set training.deterministic=true \
        --set training.deterministic_group=10 --set distributed.balance=$balance \
        >"$tmp/out-$balance" 2>"$tmp/err" </dev/null || fail "training with balance $balance failed: $(tail -3 "$tmp/err" | tr '\n' ' ')"
done
shares=$(grep -oE "balance: rows per rank [0-9]+, [0-9]+" "$tmp/out-true" | tail -1 || true)
[[ "$shares" =~ rows\ per\ rank\ ([0-9]+),\ ([0-9]+) ]] && [ "${BASH_REMATCH[1]}" -gt "${BASH_REMATCH[2]}" ] \
    || fail "the balanced run did not move rows from rank 1: ${shares:-no balance line} $(grep plexus "$tmp/out-true" | tr '\n' ' ')"
hashes=$(python3 -c 'import json,sys; print(" ".join(json.load(open(f))["param_sha256"][:16] for f in sys.argv[1:]))' \
    "$tmp/run-false/summary.json" "$tmp/run-true/summary.json")
read -r even balanced <<<"$hashes"
[ "$even" = "$balanced" ] || fail "param_sha256 differs balanced ($balanced) or not ($even)"
echo "balanced: $shares, param_sha256 $even… in both runs"
echo "$line (run ${took}s); metrics: $(python3 -c "import json,sys; r=json.loads(open(sys.argv[1]).readlines()[-1]); print(r['slowest_rank'], round(r['slowest_rank_ratio'], 2), round(r['wait_fraction'], 2))" "$run/metrics.jsonl")"
echo "PASS $name"
