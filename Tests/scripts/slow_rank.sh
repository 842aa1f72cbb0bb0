#!/usr/bin/env bash
# A rank much slower than the others must be named, not just slow the job down. Two ranks under mpirun, rank 1 held
# from its start to 10% of a core by the cgroup v1 cpu controller (cpu.cfs_quota_us): rank 0 must print, once,
# "plexus: rank 1 (host H) computes R× slower than the others' median; the job runs at its pace, P% of each step
# waiting" with R > 1.5, and the lines of metrics.jsonl past the first 100 steps (the window judged) must carry
# slowest_rank 1, its ratio and the wait fraction.
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
group="$cpu/plexus-slow-rank-$$"
mkdir "$group"
remove_group() {
    if [ -d "$group" ]; then
        while read -r pid; do echo "$pid" > "$cpu/cgroup.procs" 2>/dev/null || true; done < "$group/cgroup.procs"
        rmdir "$group" 2>/dev/null || true
    fi
    cleanup_scratch
}
trap remove_group EXIT
echo 10000 > "$group/cpu.cfs_period_us"
echo 1000 > "$group/cpu.cfs_quota_us"

# Rank 1 joins the group before plexus starts, so it is slow from its first instruction.
cat > "$tmp/slow-rank-1" <<EOF
#!/usr/bin/env bash
[ "\${OMPI_COMM_WORLD_RANK:-0}" = 1 ] && echo \$\$ > "$group/cgroup.procs"
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
python3 -c "import sys; sys.exit(0 if $ratio > 1.5 else 1)" || fail "ratio $ratio not above 1.5: $line"
python3 - "$run/metrics.jsonl" <<'PY' || fail "metrics.jsonl lacks the slow rank's figures: $(head -2 "$run/metrics.jsonl")"
import json, sys
lines = [json.loads(line) for line in open(sys.argv[1])]
assert len(lines) == 8, len(lines)
for record in (record for record in lines if record["step"] >= 100):
    assert record["slowest_rank"] == 1 and record["slowest_rank_ratio"] > 1.5 and 0 < record["wait_fraction"] <= 1, record
PY
echo "$line (run ${took}s); metrics: $(python3 -c "import json,sys; r=json.loads(open(sys.argv[1]).readlines()[-1]); print(r['slowest_rank'], round(r['slowest_rank_ratio'], 2), round(r['wait_fraction'], 2))" "$run/metrics.jsonl")"
echo "PASS $name"
