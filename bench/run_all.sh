#!/usr/bin/env bash
# Builds plexus and runs every peer comparison on the same machine in one go, then prints the ratio table.
#   bench/run_all.sh            (needs python3 with numpy; PyTorch in $BENCH_VENV, default /tmp/benchvenv,
#                                created with `python3 -m venv /tmp/benchvenv && /tmp/benchvenv/bin/pip install torch numpy`)
# Results go to bench/results/*.json.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${BENCH_VENV:-/tmp/benchvenv}
python=$venv/bin/python
steps=${BENCH_STEPS:-300}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
out=bench/results
mkdir -p "$out"

swift build -c release 2>&1 | tail -1
plexus=.build/release/plexus
config=bench/mlp-784-512-256-10.yaml
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) CPUs; load average $(cut -d' ' -f1-3 /proc/loadavg)"

echo; echo "== GEMM: plexus vs numpy/OpenBLAS (best of 3 runs of >= 0.2 s) =="
"$plexus" bench gemm --json --threads 1,2 > "$out/gemm_plexus.json"
"$python" bench/gemm_vs_numpy.py --plexus-json "$out/gemm_plexus.json" --rounds "${BENCH_ROUNDS:-3}" \
    --json-out "$out/gemm_vs_numpy.json"

echo; echo "== training step, $config (global batch 128) =="
for threads in 1 2; do
    "$plexus" bench step "$config" --steps "$steps" --set training.threads=$threads --json > "$out/step_plexus_1x$threads.json"
    "$python" bench/torch_mlp.py --threads $threads --steps "$steps" > "$out/step_torch_1x$threads.json"
done
"$plexus" bench step "$config" --steps "$steps" --set training.deterministic=true --set training.threads=1 --json \
    > "$out/step_plexus_1x1_deterministic.json"
mpirun -np 2 "$plexus" bench step "$config" --steps "$steps" --json > "$out/step_plexus_2x1.json"
mpirun -np 2 "$plexus" bench step "$config" --steps "$steps" --set training.deterministic=true --json \
    > "$out/step_plexus_2x1_deterministic.json"
OMP_NUM_THREADS=1 "$venv/bin/torchrun" --nproc_per_node=2 bench/torch_mlp.py --threads 1 --steps "$steps" 2>/dev/null \
    | grep '^{' > "$out/step_torch_ddp_2x1.json"
"$plexus" bench step Configs/fashion-mnist.yaml --steps "$steps" --set training.threads=1 --json > "$out/step_default_1x1.json"
"$plexus" bench step Configs/fashion-mnist.yaml --steps "$steps" --set training.threads=2 --json > "$out/step_default_1x2.json"
mpirun -np 2 "$plexus" bench step Configs/fashion-mnist.yaml --steps "$steps" --json > "$out/step_default_2x1.json"

echo; echo "== allreduce, mpirun -np 2 =="
mpirun -np 2 "$plexus" bench allreduce --json > "$out/allreduce_2.json"
mpirun -np 2 "$plexus" bench allreduce

"$python" - "$out" <<'PY'
import json, sys, os
out = sys.argv[1]
load = lambda name: json.load(open(os.path.join(out, name)))
print("\n== samples/s (global batch 128) ==")
print(f"{'layout':34} {'plexus':>9} {'pytorch':>9} {'ratio':>6} {'allreduce %':>12}")
for label, mine, peer in [("784-512-256-10, 1 process x 1 thread", "step_plexus_1x1.json", "step_torch_1x1.json"),
                          ("784-512-256-10, 1 process x 2 threads", "step_plexus_1x2.json", "step_torch_1x2.json"),
                          ("784-512-256-10, 2 ranks x 1 thread", "step_plexus_2x1.json", "step_torch_ddp_2x1.json"),
                          ("  deterministic, 1 x 1", "step_plexus_1x1_deterministic.json", None),
                          ("  deterministic, 2 ranks x 1", "step_plexus_2x1_deterministic.json", None),
                          ("784-256-128-10 (default), 1 x 1", "step_default_1x1.json", None),
                          ("784-256-128-10 (default), 1 x 2", "step_default_1x2.json", None),
                          ("784-256-128-10 (default), 2 x 1", "step_default_2x1.json", None)]:
    p = load(mine)
    share = 100 * p["allreduce_ms"] / p["step_ms"]
    if peer:
        q = load(peer)
        print(f"{label:34} {p['samples_per_second']:9.0f} {q['samples_per_second']:9.0f} {p['samples_per_second'] / q['samples_per_second']:6.2f} {share:11.1f}%")
    else:
        print(f"{label:34} {p['samples_per_second']:9.0f} {'':>9} {'':>6} {share:11.1f}%")
rows = load("gemm_vs_numpy.json")
for t in sorted({r["threads"] for r in rows}):
    ratios = [r["ratio"] for r in rows if r["threads"] == t]
    print(f"GEMM vs numpy/OpenBLAS, {t} thread(s): min {min(ratios):.2f}, max {max(ratios):.2f} over {len(ratios)} shapes")
PY
echo; echo "== memory and start-up =="
bash bench/memory_startup.sh "$plexus"
