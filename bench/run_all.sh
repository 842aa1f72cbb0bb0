#!/usr/bin/env bash
# Builds plexus and runs every peer comparison on the same machine in one go, then prints the ratio table.
#   bench/run_all.sh            (BENCH_ROUNDS=3 rounds, BENCH_STEPS=300 timed steps)
# The Python peers run from bench/python's environment (made on first use with bench/requirements.txt's pinned
# packages) with their best kernels: OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are unset for the peer commands only (the
# scripts print the kernel threadpoolctl reports), PyTorch reports its CPU capability; plexus reports its kernel
# variant. Results go to bench/results/*.json.
set -euo pipefail
cd "$(dirname "$0")/.."
python=bench/python
# The peers' commands run with OpenBLAS free to pick its best kernel for this CPU.
peer() { env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$@"; }
steps=${BENCH_STEPS:-300}
rounds=${BENCH_ROUNDS:-3}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
out=bench/results
mkdir -p "$out"

swift build -c release 2>&1 | tail -1
plexus=.build/release/plexus
config=bench/mlp-784-512-256-10.yaml
bench/machine
echo "PyTorch: $(peer "$python" -c 'import torch; print(torch.__version__, "CPU capability", torch.backends.cpu.get_cpu_capability())')"

echo; echo "== GEMM: plexus vs numpy/OpenBLAS (best of 3 runs of >= 0.2 s) =="
"$plexus" bench gemm --json --threads 1,2 > "$out/gemm_plexus.json"
"$python" bench/gemm_vs_numpy.py --plexus-json "$out/gemm_plexus.json" --rounds "$rounds" \
    --json-out "$out/gemm_vs_numpy.json"
echo; echo "== GEMM at 64 rows (each rank's share of batch 128 at 2 ranks) =="
"$python" bench/gemm_vs_numpy.py "$plexus" --threads 1,2 --batch 64 --rounds "$rounds" --json-out "$out/gemm_vs_numpy_64.json"
if grep -qw avx512f /proc/cpuinfo; then
    echo; echo "== GEMM, the avx2 kernel (PLEXUS_KERNEL=avx2) against OpenBLAS's Haswell kernel =="
    PLEXUS_KERNEL=avx2 OPENBLAS_CORETYPE=Haswell "$python" bench/gemm_vs_numpy.py "$plexus" --threads 1,2 \
        --rounds "$rounds" --keep-openblas-overrides --json-out "$out/gemm_vs_numpy_avx2.json"
fi

echo; echo "== training step, $config (global batch 128), $rounds rounds alternating plexus and its peer =="
# Each layout runs once per round, plexus then its peer, so slow phases of a shared host hit both sides;
# the table keeps each side's best round and prints every round's ratio.
for round in $(seq 1 "$rounds"); do
    for threads in 1 2; do
        "$plexus" bench step "$config" --steps "$steps" --set training.threads=$threads --json > "$out/step_plexus_1x$threads.$round.json"
        peer "$python" bench/torch_mlp.py --threads $threads --steps "$steps" > "$out/step_torch_1x$threads.$round.json"
        peer "$python" bench/torch_epoch.py --threads $threads --epochs 2 > "$out/step_torch_epoch_1x$threads.$round.json"
    done
    mpirun -np 2 "$plexus" bench step "$config" --steps "$steps" --json > "$out/step_plexus_2x1.$round.json"
    peer OMP_NUM_THREADS=1 "$python" -m torch.distributed.run --nproc_per_node=2 bench/torch_mlp.py --threads 1 --steps "$steps" 2>/dev/null \
        | grep '^{' > "$out/step_torch_ddp_2x1.$round.json"
    "$plexus" bench step "$config" --steps "$steps" --set training.deterministic=true --set training.threads=1 --json \
        > "$out/step_plexus_1x1_deterministic.$round.json"
    mpirun -np 2 "$plexus" bench step "$config" --steps "$steps" --set training.deterministic=true --json \
        > "$out/step_plexus_2x1_deterministic.$round.json"
    "$plexus" bench step Configs/fashion-mnist.yaml --steps "$steps" --set training.threads=1 --json > "$out/step_default_1x1.$round.json"
    "$plexus" bench step Configs/fashion-mnist.yaml --steps "$steps" --set training.threads=2 --json > "$out/step_default_1x2.$round.json"
    mpirun -np 2 "$plexus" bench step Configs/fashion-mnist.yaml --steps "$steps" --json > "$out/step_default_2x1.$round.json"
    echo "round $round done"
done

echo; echo "== allreduce, mpirun -np 2 =="
mpirun -np 2 "$plexus" bench allreduce --json > "$out/allreduce_2.json"
mpirun -np 2 "$plexus" bench allreduce

"$python" - "$out" "$rounds" <<'PY'
import json, sys, os
out, rounds = sys.argv[1], int(sys.argv[2])
def runs(name):
    return [json.load(open(os.path.join(out, f"{name}.{r}.json"))) for r in range(1, rounds + 1)]
best = lambda results: max(results, key=lambda r: r["samples_per_second"])
print(f"\n== samples/s (global batch 128), best of {rounds} rounds per side ==")
print(f"{'layout':36} {'plexus':>9} {'pytorch':>9} {'ratio':>6} {'ratio per round':>22} {'wait + allreduce %':>19}")
for label, mine, peer in [("784-512-256-10, 1 process x 1 thread", "step_plexus_1x1", "step_torch_1x1"),
                          ("  against a DataLoader loop", "step_plexus_1x1", "step_torch_epoch_1x1"),
                          ("784-512-256-10, 1 process x 2 threads", "step_plexus_1x2", "step_torch_1x2"),
                          ("  against a DataLoader loop", "step_plexus_1x2", "step_torch_epoch_1x2"),
                          ("784-512-256-10, 2 ranks x 1 thread", "step_plexus_2x1", "step_torch_ddp_2x1"),
                          ("  deterministic, 1 x 1", "step_plexus_1x1_deterministic", None),
                          ("  deterministic, 2 ranks x 1", "step_plexus_2x1_deterministic", None),
                          ("784-256-128-10 (default), 1 x 1", "step_default_1x1", None),
                          ("784-256-128-10 (default), 1 x 2", "step_default_1x2", None),
                          ("784-256-128-10 (default), 2 x 1", "step_default_2x1", None)]:
    mine_runs = runs(mine)
    p = best(mine_runs)
    shares = f"{100 * (p['wait_ms'] + p['reduce_ms']) / p['step_ms']:18.1f}%"
    if peer:
        peer_runs = runs(peer)
        q = best(peer_runs)
        per_round = ", ".join(f"{a['samples_per_second'] / b['samples_per_second']:.2f}" for a, b in zip(mine_runs, peer_runs))
        print(f"{label:36} {p['samples_per_second']:9.0f} {q['samples_per_second']:9.0f} "
              f"{p['samples_per_second'] / q['samples_per_second']:6.2f} {per_round:>22} {shares}")
    else:
        print(f"{label:36} {p['samples_per_second']:9.0f} {'':>9} {'':>6} {'':>22} {shares}")
for name in ["gemm_vs_numpy", "gemm_vs_numpy_64", "gemm_vs_numpy_avx2"]:
    if not os.path.exists(os.path.join(out, f"{name}.json")):
        continue
    rows = json.load(open(os.path.join(out, f"{name}.json")))
    for t in sorted({r["threads"] for r in rows}):
        ratios = [r["ratio"] for r in rows if r["threads"] == t]
        mean = 1.0
        for r in ratios: mean *= r
        print(f"{name}, {t} thread(s): geometric mean {mean ** (1 / len(ratios)):.2f}, min {min(ratios):.2f}, "
              f"max {max(ratios):.2f} over {len(ratios)} shapes")
PY
echo; echo "== memory and start-up =="
bash bench/memory_startup.sh "$plexus"
