#!/usr/bin/env bash
# The training step of the benchmark net against PyTorch, and deterministic mode's cost, in one alternating run
# (on an otherwise idle machine):
#   bench/kernel_targets.sh [ROUNDS] [STEPS]    (default 3 rounds of 400 steps; the peers run from bench/python)
# Per round, at 1 then 2 threads: plexus (its widest kernel), plexus with PLEXUS_KERNEL=avx2, $BASELINE (an older
# plexus binary, if set), bench/torch_mlp.py, bench/torch_epoch.py and a 2048³ numpy sgemm with OpenBLAS's best
# kernel (OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE unset for the peers only); then default against deterministic mode
# at 1 × 1 and 2 ranks × 1. Prints samples/s (and the sgemm's GFLOP/s and kernel) per round.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
steps=${2:-400}
py=bench/python
cfg=bench/mlp-784-512-256-10.yaml
plexus=.build/release/plexus
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
peer() { env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$@"; }
rate() { python3 -c "import json,sys; print(round(json.loads(sys.stdin.read().strip().splitlines()[-1])['samples_per_second']))"; }
bench/machine
for round in $(seq 1 "$rounds"); do
    for threads in 1 2; do
        mine=$($plexus bench step $cfg --steps "$steps" --set training.threads=$threads --json | rate)
        avx2=$(PLEXUS_KERNEL=avx2 $plexus bench step $cfg --steps "$steps" --set training.threads=$threads --json | rate)
        base=${BASELINE:+$($BASELINE bench step $cfg --steps "$steps" --set training.threads=$threads --json | rate)}
        torch_json=$(peer "$py" bench/torch_mlp.py --threads $threads --steps "$steps")
        torch=$(rate <<<"$torch_json")
        [ "$round" != 1 ] || echo "PyTorch at $threads thread(s): $(python3 -c "import json,sys; d=json.loads(sys.argv[1].splitlines()[-1]); print(d['framework'], 'CPU capability', d['cpu_capability'] + ';', d['kernels'])" "$torch_json")"
        epoch=$(peer "$py" bench/torch_epoch.py --threads $threads --epochs 2 | rate)
        blas=$(peer OPENBLAS_NUM_THREADS=$threads "$py" -c "
import time, numpy as np
from threadpoolctl import threadpool_info
a, b = (np.random.rand(2048, 2048).astype(np.float32) for _ in range(2)); c = np.empty_like(a)
np.matmul(a, b, out=c); best = 1e9
for _ in range(5):
    t = time.perf_counter(); np.matmul(a, b, out=c); best = min(best, time.perf_counter() - t)
print(round(2 * 2048**3 / best / 1e9, 1), 'GFLOP/s', [i['architecture'] for i in threadpool_info() if i['user_api'] == 'blas'][0])")
        echo "round $round, $threads thread(s): plexus $mine, avx2 $avx2${base:+, baseline $base}, torch_mlp $torch," \
             "torch_epoch $epoch; plexus $(python3 -c "print(round($mine * 2.41e-3, 1))") GFLOP/s, openblas 2048³ $blas"
    done
    line="round $round, deterministic:"
    for det in false true; do line="$line 1x1 $det $($plexus bench step $cfg --steps "$steps" --set training.threads=1 --set training.deterministic=$det --json | rate)"; done
    for det in false true; do line="$line 2x1 $det $(mpirun -np 2 $plexus bench step $cfg --steps "$steps" --set training.deterministic=$det --json | rate)"; done
    echo "$line"
done
