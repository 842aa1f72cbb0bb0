#!/usr/bin/env bash
# bf16 mixed precision against fp32 on the benchmark net's training step, and against PyTorch with and without
# bf16 autocast, in one alternating run (on an otherwise idle machine with AVX512_BF16):
#   bench/bf16_step.sh [ROUNDS] [STEPS]    (default 5 rounds of 300 steps; the peers run from bench/python)
# Per round, at 1 then 2 threads: plexus bench step in fp32 and with training.precision=bf16, bench/torch_mlp.py in
# fp32 and with --autocast bf16. Prints samples/s and each step's mfu (the products' rate over the GEMM peak of the
# run's precision) per round, then the medians and the ratios of the medians.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
steps=${2:-300}
py=bench/python
cfg=bench/mlp-784-512-256-10.yaml
plexus=.build/release/plexus
peer() { env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$@"; }
field() { python3 -c "import json,sys; print(json.loads(sys.stdin.read().strip().splitlines()[-1])['$1'])"; }
bench/machine
results=$(mktemp)
trap 'rm -f "$results"' EXIT
for round in $(seq 1 "$rounds"); do
    for threads in 1 2; do
        line="round $round, $threads thread(s):"
        for precision in fp32 bf16; do
            json=$($plexus bench step $cfg --steps "$steps" --set training.threads=$threads --set training.precision=$precision --json)
            rate=$(field samples_per_second <<<"$json"); mfu=$(field mfu <<<"$json")
            echo "$threads plexus-$precision $rate" >> "$results"
            line+=" plexus $precision $(printf %.0f "$rate") (mfu $(printf %.2f "$mfu")),"
        done
        for autocast in none bf16; do
            json=$(peer "$py" bench/torch_mlp.py --threads $threads --steps "$steps" --autocast $autocast)
            [ "$round" != 1 ] || [ "$autocast" != bf16 ] || [ "$threads" != 1 ] || echo "PyTorch: $(field framework <<<"$json"), CPU capability $(field cpu_capability <<<"$json")"
            rate=$(field samples_per_second <<<"$json")
            echo "$threads torch-$autocast $rate" >> "$results"
            line+=" torch autocast $autocast $(printf %.0f "$rate"),"
        done
        echo "${line%,}"
    done
done
python3 - "$results" <<'PY'
import collections, statistics, sys
rates = collections.defaultdict(list)
for line in open(sys.argv[1]):
    threads, name, rate = line.split()
    rates[(int(threads), name)].append(float(rate))
for threads in sorted({t for t, _ in rates}):
    m = {name: statistics.median(v) for (t, name), v in rates.items() if t == threads}
    print(f"{threads} thread(s), medians (samples/s): " + ", ".join(f"{k} {v:.0f}" for k, v in sorted(m.items())))
    print(f"  bf16/fp32 {m['plexus-bf16'] / m['plexus-fp32']:.2f}; plexus bf16 / torch autocast bf16 "
          f"{m['plexus-bf16'] / m['torch-bf16']:.2f}; plexus fp32 / torch fp32 {m['plexus-fp32'] / m['torch-none']:.2f}; "
          f"torch autocast/fp32 {m['torch-bf16'] / m['torch-none']:.2f}")
PY
