#!/usr/bin/env bash
# Fashion-MNIST from NumPy files against the IDX files: peak resident memory, start-up, and the same weights.
# Usage: bench/npz_memory.sh [PLEXUS_BINARY] [ROUNDS]
# (writes runs/examples/fashion-mnist-*.npz first with bench/make_examples.py when they are missing)
#
# Both configs train the same network on the same bytes (Configs/fashion-mnist.yaml reads the gzipped IDX files,
# Configs/fashion-mnist-npz.yaml an uncompressed numpy.savez of them), alternating, ROUNDS times (default 2):
# /usr/bin/time's maximum RSS and wall time of a one-epoch run at 1 thread, `bench step`'s VmHWM and seconds to
# the first step, and the run's param_sha256 (equal: the npz run is the same training).
set -euo pipefail
cd "$(dirname "$0")/.."
plexus=${1:-.build/release/plexus}
rounds=${2:-2}
if [ ! -f runs/examples/fashion-mnist-train.npz ] || [ ! -f runs/examples/fashion-mnist-test.npz ]; then
    bench/python bench/make_examples.py >&2
fi
source launch/common.sh
[ -x /usr/bin/time ] || ensure_packages time || { echo "bench/npz_memory.sh: needs /usr/bin/time (Debian: time)" >&2; exit 2; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
bench/machine
for round in $(seq 1 "$rounds"); do
    for config in Configs/fashion-mnist.yaml Configs/fashion-mnist-npz.yaml; do
        name=$(basename "$config" .yaml)
        /usr/bin/time -f "%M %e" -o "$tmp/time" "$plexus" train "$config" --set training.epochs=1 --set training.threads=1 \
            --run-dir "$tmp/$name-$round" --progress plain > "$tmp/out" || { cat "$tmp/out"; exit 1; }
        read -r rss wall < "$tmp/time"
        sha=$(sed -n 's/.*"param_sha256" : "\(.*\)".*/\1/p' "$tmp/$name-$round/summary.json")
        step=$("$plexus" bench step "$config" --steps 20 --warmup 0 --set training.threads=1 --json)
        peak=$(sed -n 's/.*"peak_rss_mib":\([0-9.]*\).*/\1/p' <<<"$step")
        first=$(sed -n 's/.*"first_step_seconds":\([0-9.]*\).*/\1/p' <<<"$step")
        printf 'round %d %-18s train 1 epoch: max RSS %6.1f MiB, %5.2f s wall; bench step: VmHWM %6.1f MiB, first step %.3f s; param_sha256 %s\n' \
            "$round" "$name" "$(awk -v kib="$rss" 'BEGIN { print kib / 1024 }')" "$wall" "$peak" "$first" "${sha:0:16}"
    done
done
echo "# the training images are 60000×784 = 47.0 MB of bytes (test 7.8 MB): IDX reads them into the process,"
echo "# the npz maps them from the file (uncompressed uint8 x)"
