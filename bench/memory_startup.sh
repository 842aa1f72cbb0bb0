#!/usr/bin/env bash
# Peak resident memory per rank and time from launch to the first training step, default config.
# Usage: bench/memory_startup.sh [PLEXUS_BINARY]   (prints one JSON object per layout)
set -euo pipefail
cd "$(dirname "$0")/.."
plexus=${1:-.build/release/plexus}
config=Configs/fashion-mnist.yaml
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
source launch/common.sh
[ -x /usr/bin/time ] || ensure_packages time || { echo "bench/memory_startup.sh: needs /usr/bin/time (Debian: time)" >&2; exit 2; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
bench/machine

# The process's own view: VmHWM at the end, seconds from process start to trainer ready and to the first step done.
echo "# plexus bench step --steps 50 (1 process; VmHWM, setup_seconds, first_step_seconds)"
"$plexus" bench step "$config" --steps 50 --warmup 0 --set training.threads=1 --json
echo "# mpirun -np 2 (peak_rss_mib is the larger rank's)"
mpirun -np 2 "$plexus" bench step "$config" --steps 50 --warmup 0 --json

# The outside view: /usr/bin/time's maximum RSS and wall time of a one-epoch training run (incl. evaluation, files).
echo "# /usr/bin/time -v plexus train (1 epoch, 1 process × 1 thread)"
/usr/bin/time -v "$plexus" train "$config" --set training.epochs=1 --set training.threads=1 --run-dir "$tmp/run" \
    --progress plain > "$tmp/out" 2> "$tmp/time" || { cat "$tmp/out" "$tmp/time"; exit 1; }
grep -E "Maximum resident|Elapsed \(wall" "$tmp/time"
echo "# bare start-up: plexus --help (its exit status does not matter here)"
/usr/bin/time -f "%e s wall, %M KiB max RSS" "$plexus" --help > /dev/null || true
echo "# the dataset is held as bytes: 60000×784 = 47.0 MB (train), 10000×784 = 7.8 MB (test)"
