#!/usr/bin/env bash
# What logging.timeline costs the training step: `plexus bench step` alternately without and with the
# timeline recording every timed step, ROUNDS times in one run, at 1 process x 1 thread and at 2 ranks;
# prints each pair's samples/s, their ratio and the median ratio per layout. Run it on an otherwise idle machine.
# Build first: swift build -c release --product plexus.
#   bench/timeline_cost.sh [ROUNDS (default 7)] [STEPS (default 300)]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-7}
steps=${2:-300}
plexus=.build/release/plexus
config=bench/mlp-784-512-256-10.yaml
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
bench/machine
samples() { sed -nE 's/.*"samples_per_second":([0-9.e+]+).*/\1/p'; }
# Every timed step is recorded (the window covers them all), so the ratio is the full per-step cost.
timeline=(--set logging.timeline=true --set logging.timeline_steps=1-100000)
for layout in "1x1" "2x1"; do
    ratios=()
    for round in $(seq 1 "$rounds"); do
        if [ "$layout" = 1x1 ]; then
            off=$("$plexus" bench step "$config" --steps "$steps" --set training.threads=1 --json | samples)
            on=$("$plexus" bench step "$config" --steps "$steps" --set training.threads=1 "${timeline[@]}" --json | samples)
        else
            off=$(mpirun -np 2 "$plexus" bench step "$config" --steps "$steps" --json | samples)
            on=$(mpirun -np 2 "$plexus" bench step "$config" --steps "$steps" "${timeline[@]}" --json | samples)
        fi
        ratio=$(python3 -c "print(f'{$on / $off:.4f}')")
        ratios+=("$ratio")
        printf '%s round %d: off %8.0f  on %8.0f samples/s  on/off %s\n' "$layout" "$round" "$off" "$on" "$ratio"
    done
    python3 -c "import statistics, sys; r = sorted(map(float, sys.argv[1:])); print(f'$layout median on/off {statistics.median(r):.4f} (min {r[0]:.4f}, max {r[-1]:.4f})')" "${ratios[@]}"
done
