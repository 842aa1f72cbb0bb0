#!/usr/bin/env bash
# Balanced shares against a slow rank: two ranks on this node (one thread each) train the benchmark net on
# Fashion-MNIST in deterministic mode, batch 256, rank 1 held from its start to 30% of a core by the cgroup v1 cpu
# controller (cpu.cfs_period_us 10000, cpu.cfs_quota_us 3000). Both ranks run in cgroups of cpu.shares 262144 (the most), so other
# processes on the machine take little of their CPU. Runs without and with distributed.balance alternate,
# ROUNDS times each; prints each run's samples/s, param_sha256 and whether rank 0 named the slow rank, then the
# medians and their ratio. Needs root and /sys/fs/cgroup/cpu:
#
#   bench/slow_rank_balance.sh [ROUNDS] [EPOCHS] [--set k=v ...]
#
# ROUNDS defaults to 3, EPOCHS to 4; the binary is $PLEXUS_BINARY or .build/release/plexus.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
epochs=${2:-4}
shift $(($# < 2 ? $# : 2))
binary=${PLEXUS_BINARY:-$PWD/.build/release/plexus}
cpu=/sys/fs/cgroup/cpu
[ -w "$cpu/cgroup.procs" ] || { echo "needs root and a writable cgroup v1 cpu controller at $cpu" >&2; exit 2; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
tmp=$(mktemp -d)
group="$cpu/plexus-balance-bench-$$"
mkdir "$group-0" "$group-1"
cleanup() {
    for rank in 0 1; do
        while read -r pid; do echo "$pid" > "$cpu/cgroup.procs" 2>/dev/null || true; done < "$group-$rank/cgroup.procs"
        rmdir "$group-$rank" 2>/dev/null || true
    done
    rm -rf "$tmp"
}
trap cleanup EXIT
echo 262144 > "$group-0/cpu.shares"
echo 262144 > "$group-1/cpu.shares"
echo 10000 > "$group-1/cpu.cfs_period_us"
echo 3000 > "$group-1/cpu.cfs_quota_us"
# Each rank joins its group before plexus starts, so rank 1 is slow from its first instruction.
cat > "$tmp/slow-rank-1" <<SCRIPT
#!/usr/bin/env bash
echo \$\$ > "$group-\${OMPI_COMM_WORLD_RANK:-0}/cgroup.procs"
exec "\$@"
SCRIPT
chmod +x "$tmp/slow-rank-1"
bench/machine

for round in $(seq "$rounds"); do
    for balance in false true; do
        run="$tmp/run-$round-$balance"
        mpirun -np 2 --bind-to core "$tmp/slow-rank-1" "$binary" train bench/mlp-784-512-256-10.yaml --run-dir "$run" \
            --progress plain --set training.epochs="$epochs" --set training.batch_size=256 --set training.threads=1 \
            --set training.deterministic=true --set distributed.balance="$balance" "$@" > "$tmp/out" 2>&1 \
            || { tail -5 "$tmp/out" >&2; exit 1; }
        [ -z "${PLEXUS_BENCH_SHOW:-}" ] || grep "^plexus" "$tmp/out" >&2
        named=$(grep -c "^plexus: rank 1 .* slower than the others' median" "$tmp/out" || true)
        shares=$( (grep -o "balance: rows per rank [0-9, ]*" "$tmp/out" || true) | tail -1 | sed "s/balance: rows per rank //")
        python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print(sys.argv[2], sys.argv[3], "%.0f" % s["samples_per_second"], s["param_sha256"], sys.argv[4], sys.argv[5] or "-")' \
            "$run/summary.json" "$round" "$balance" "$named" "${shares// /}" | tee -a "$tmp/rounds"
    done
done
echo "columns: round, balance, samples/s, param_sha256, slow-rank lines, last shares"
python3 - "$tmp/rounds" <<'PY'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1])]
median = {side: statistics.median(float(r[2]) for r in rows if r[1] == side) for side in ("false", "true")}
print(f"median samples/s: even {median['false']:.0f}, balanced {median['true']:.0f}, ratio {median['true'] / median['false']:.2f}")
hashes = {r[3] for r in rows}
print("param_sha256: " + ("the same in every run" if len(hashes) == 1 else f"{len(hashes)} different"))
PY
