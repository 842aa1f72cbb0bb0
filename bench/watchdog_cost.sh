#!/usr/bin/env bash
# Two builds' training step against each other: `mpirun -np 2 plexus bench step` alternating BASE (e.g. a build
# whose MPI collectives block, without the stall watchdog) and NEW (non-blocking collectives polled against their
# deadline), ROUNDS times each in one run, then the median samples/s of each and their ratio. Run it on an
# otherwise idle machine:
#
#   bench/watchdog_cost.sh BASE_BINARY [NEW_BINARY] [ROUNDS] [CONFIG] [--set k=v ...]
#
# NEW defaults to .build/release/plexus, ROUNDS to 7, CONFIG to the benchmark net (bench/mlp-784-512-256-10.yaml).
set -euo pipefail
cd "$(dirname "$0")/.."
base=${1:?usage: bench/watchdog_cost.sh BASE_BINARY [NEW_BINARY] [ROUNDS] [CONFIG] [--set k=v ...]}
new=${2:-.build/release/plexus}
rounds=${3:-7}
config=${4:-bench/mlp-784-512-256-10.yaml}
shift $(($# < 4 ? $# : 4))
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
bench/machine

for round in $(seq "$rounds"); do
    for side in base new; do
        binary=$base; [ "$side" = new ] && binary=$new
        mpirun -np 2 "$binary" bench step "$config" --steps 300 --warmup 20 --json "$@" > "$tmp/out"
        python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(sys.argv[2], sys.argv[3], "%.0f" % r["samples_per_second"], "%.3f" % r["step_ms"], "%.3f" % r["wait_ms"], "%.3f" % r["reduce_ms"])' \
            "$tmp/out" "$round" "$side" | tee -a "$tmp/rounds"
    done
done
python3 - "$tmp/rounds" <<'PY'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1])]
def column(side, index): return [float(r[index]) for r in rows if r[1] == side]
for side in ("base", "new"):
    print(f"{side}: median {statistics.median(column(side, 2)):.0f} samples/s, step {statistics.median(column(side, 3)):.3f} ms, "
          f"wait {statistics.median(column(side, 4)):.3f} ms, allreduce {statistics.median(column(side, 5)):.3f} ms")
ratios = [n / b for b, n in zip(column("base", 2), column("new", 2))]
print("new/base per round: " + ", ".join(f"{r:.3f}" for r in ratios))
print(f"median new/base: {statistics.median(column('new', 2)) / statistics.median(column('base', 2)):.3f}")
PY
