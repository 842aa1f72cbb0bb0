#!/usr/bin/env bash
# One node, which layout is fastest: 1 rank × 2 threads against 2 ranks × 1 thread with the node-shared
# reduction (default), with the plain allreduce (distributed.shared_memory false), and with a base binary
# ($PLEXUS_BASE, e.g. the build before the node-shared reduction), plus PyTorch DDP (gloo, 2 processes) as the
# peer (from bench/python's environment); the benchmark net and the default config; alternating over rounds. Run
# it on an otherwise idle machine.
#
#   bench/node_layouts.sh [--rounds N] [--steps N] [--no-torch]
#
# Prints each layout's best round and every round's samples/s, and the ratios docs/benchmarks.md quotes.
set -euo pipefail
cd "$(dirname "$0")/.."
source launch/common.sh
mpirun_root_flags
rounds=3 steps=300 torch=1
while [ $# -gt 0 ]; do
    case "$1" in
        --rounds) rounds=$2; shift 2 ;;
        --steps) steps=$2; shift 2 ;;
        --no-torch) torch=0; shift ;;
        *) echo "bench/node_layouts.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
binary=${PLEXUS_BINARY:-$PWD/.build/release/plexus}
base=${PLEXUS_BASE:-}
results=$(mktemp)
trap 'rm -f "$results"' EXIT

step() {  # step NAME CONFIG MPIRUN-OPTIONS BINARY SETTINGS...
    local name=$1 config=$2 options=$3 program=$4; shift 4
    # shellcheck disable=SC2086
    echo "$name $(mpirun $options "$program" bench step "$config" --steps "$steps" --warmup 20 --json "$@" | grep '^{')" >> "$results"
}

bench/machine
echo "$rounds round(s), $steps steps"
for round in $(seq 1 "$rounds"); do
    for net in bench/mlp-784-512-256-10.yaml Configs/fashion-mnist.yaml; do
        tag=$(basename "$net" .yaml)
        step "$tag:1x2" "$net" "-np 1 --bind-to none" "$binary" --set training.threads=2
        step "$tag:2x1-shared" "$net" "-np 2" "$binary" --set training.threads=1 --split-wait
        step "$tag:2x1-plain" "$net" "-np 2" "$binary" --set training.threads=1 --set distributed.shared_memory=false \
            --set distributed.bucket_mb=1000 --split-wait
        [ -z "$base" ] || step "$tag:2x1-base" "$net" "-np 2" "$base" --set training.threads=1
    done
    if [ "$torch" = 1 ]; then
        echo "torch:ddp2 $(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OMP_NUM_THREADS=1 bench/python -m torch.distributed.run \
            --nproc_per_node=2 bench/torch_mlp.py --threads 1 \
            --steps "$steps" 2>/dev/null | grep '^{')" >> "$results"
    fi
done

python3 - "$results" <<'PY'
import json, sys
runs = {}
for line in open(sys.argv[1]):
    name, _, payload = line.partition(" ")
    runs.setdefault(name, []).append(json.loads(payload))
best = {name: max(r["samples_per_second"] for r in rs) for name, rs in runs.items()}
for name, rs in runs.items():
    split = ""
    if "step_ms" in rs[0]:
        r = max(rs, key=lambda r: r["samples_per_second"])
        split = "  (ms: " + ", ".join(f"{k[:-3]} {r[k]:.3f}" for k in ("step_ms", "forward_ms", "backward_ms", "wait_ms",
                                                                        "reduce_ms", "optimizer_ms")) + ")"
    print(f"{name:34} best {best[name]:>9,.0f}  rounds " + ", ".join(f"{r['samples_per_second']:,.0f}" for r in rs) + split)
def ratio(a, b, label):
    if a in best and b in best:
        per_round = ", ".join(f"{x['samples_per_second'] / y['samples_per_second']:.2f}" for x, y in zip(runs[a], runs[b]))
        print(f"{label:60} {best[a] / best[b]:.2f}x  (per round {per_round})")
for net in ("mlp-784-512-256-10", "fashion-mnist"):
    ratio(f"{net}:2x1-shared", f"{net}:1x2", f"{net}: 2 ranks x 1 (shared) / 1 rank x 2 threads")
    ratio(f"{net}:2x1-shared", f"{net}:2x1-plain", f"{net}: shared / plain allreduce, 2 ranks")
    ratio(f"{net}:2x1-shared", f"{net}:2x1-base", f"{net}: shared / base binary, 2 ranks")
    ratio(f"{net}:1x2", f"{net}:2x1-base", f"{net}: 1 x 2 (new default) / base 2 x 1 (old default)")
ratio("mlp-784-512-256-10:2x1-shared", "torch:ddp2", "benchmark net: plexus 2 ranks (shared) / DDP 2 processes")
PY
