#!/usr/bin/env bash
# The steady-state training step allocates nothing on the heap: `plexus bench step` run for 20 and
# for 60 timed steps (same warm-up) must make the same number of allocations, counted by an
# LD_PRELOAD malloc counter, at 1 and 2 threads, in default and deterministic mode, with and without
# dropout, with bf16 products (where the CPU has AVX512_BF16), with the timeline on, and with 3 targets
# (l1, huber, multi-label binary cross-entropy), and with PowerSGD on 2 ranks. One allocation per step
# would add 40; a few are allowed for the report's text (its numbers' lengths vary).
set -euo pipefail
name=step_allocations
source "$(dirname "${BASH_SOURCE[0]}")/fixtures/harness.sh"
config="$root/bench/mlp-784-512-256-10.yaml"
[ -x "$binary" ] || fail "no plexus binary at $binary"
[ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] || fail "dataset-fashion-mnist is not installed"
compiler="$(command -v clang || command -v cc || true)"
[ -n "$compiler" ] || fail "no C compiler (clang ships with Swift)"

tmp="$(mktemp -d /tmp/plexus-allocations.XXXXXX)"
trap 'rm -rf "$tmp"' EXIT
"$compiler" -O2 -shared -fPIC "$here/fixtures/malloc_counter.c" -o "$tmp/counter.so" -ldl

allocations() {  # steps, then --set overrides
    local steps=$1; shift
    local settings=()
    for s in "$@"; do settings+=(--set "$s"); done
    LD_PRELOAD="$tmp/counter.so" "$binary" bench step "$config" --steps "$steps" --warmup 10 "${settings[@]}" \
        2>"$tmp/err" >/dev/null || fail "bench step $* failed: $(head -3 "$tmp/err")"
    sed -n 's/^allocations //p' "$tmp/err" | tail -1
}

# Several targets (a generated CSV): 3 standardized regression targets under huber and l1, and 3 labels under
# binary_cross_entropy.
awk 'BEGIN { srand(3); print "f0,f1,f2,f3,f4,f5,y0,y1,y2,b0,b1,b2"
             for (r = 0; r < 4000; r++) { line = ""; for (j = 0; j < 6; j++) line = line sprintf("%.4f,", rand())
                 printf "%s%.4f,%.4f,%.4f,%d,%d,%d\n", line, rand() * 9, rand() - 5, rand() * 100, rand() < 0.5, rand() < 0.3, rand() < 0.7 } }' \
    > "$tmp/targets.csv"
multi="$tmp/targets.yaml"
cat > "$multi" <<YAML
data: {train: $tmp/targets.csv, targets: [y0, y1, y2], normalize: standardize, normalize_targets: standardize}
model: {layers: [{units: 64, activation: relu}, {units: 3}]}
loss: {name: huber, delta: 0.5}
training: {batch_size: 64}
YAML
several_targets() {  # --set overrides on top of $multi
    local short long
    short=$(config="$multi" allocations 20 training.threads=1 "$@")
    long=$(config="$multi" allocations 60 training.threads=1 "$@")
    echo "3 targets, $*: $short allocations for 20 steps, $long for 60"
    [ -n "$short" ] && [ $((long - short)) -lt 8 ] && [ $((short - long)) -lt 8 ] \
        || fail "$((long - short)) allocations in 40 extra steps (3 targets, $*)"
}
several_targets "loss=l1"
several_targets "loss={name: huber, delta: 0.5}"
several_targets "loss=binary_cross_entropy" "data.targets=[b0, b1, b2]" "data.normalize_targets=none"

# Dropout (masks drawn in the forward pass, applied in backward) in both modes, at 1 and 2 threads.
dropout='model.layers=[{units: 512, activation: relu, dropout: 0.2}, {units: 256, activation: relu, dropout: 0.2}, {units: 10}]'
# bf16 products (training.precision) where the CPU has AVX512_BF16.
variants=("1 false" "1 true" "2 false" "2 true" "1 false dropout" "2 true dropout")
! grep -qw avx512_bf16 /proc/cpuinfo || variants+=("2 false - bf16" "2 true - bf16")
for variant in "${variants[@]}"; do
    read -r threads deterministic layers precision <<<"$variant"
    [ "$layers" != - ] || layers=""
    settings=(training.threads=$threads training.deterministic=$deterministic training.precision=${precision:-fp32})
    [ -z "$layers" ] || settings+=("$dropout")
    short=$(allocations 20 "${settings[@]}")
    long=$(allocations 60 "${settings[@]}")
    [ -n "$short" ] && [ "$short" -gt 0 ] || fail "the counter reported nothing (is LD_PRELOAD honoured?)"
    what="threads $threads, deterministic $deterministic${layers:+, dropout}${precision:+, $precision}"
    echo "$what: $short allocations for 20 steps, $long for 60"
    [ $((long - short)) -lt 8 ] && [ $((short - long)) -lt 8 ] || fail "$((long - short)) allocations in 40 extra steps ($what)"
done
# With the timeline recording every step (its spans go to memory reserved up front).
timeline=(training.threads=1 logging.timeline=true logging.timeline_steps=1-1000)
short=$(allocations 20 "${timeline[@]}")
long=$(allocations 60 "${timeline[@]}")
echo "timeline on: $short allocations for 20 steps, $long for 60"
[ $((long - short)) -lt 8 ] && [ $((short - long)) -lt 8 ] || fail "$((long - short)) allocations in 40 extra steps with the timeline on"
# PowerSGD between two nodes (2 ranks under mpirun, no shared memory) at 1 and 2 threads, each rank counted: its
# optimizer step rebuilds the matrices block by block on the step's threads. 80 extra steps; the counts of the
# ranks' report lines vary by about ten.
command -v mpirun >/dev/null || fail "mpirun missing (openmpi-bin)"
mpirun_root_flags
ranks_allocations() {  # steps threads: both ranks' counts, sorted
    mpirun -np 2 --oversubscribe --bind-to none -x LD_PRELOAD="$tmp/counter.so" "$binary" bench step "$config" \
        --steps "$1" --warmup 10 --set training.threads="$2" --set training.batch_size=256 \
        --set distributed.gradient_compression=powersgd --set distributed.shared_memory=false 2>&1 >/dev/null \
        | sed -n 's/^allocations //p' | sort -n | tr '\n' ' '
}
for threads in 1 2; do
    read -r short0 short1 <<<"$(ranks_allocations 20 $threads)"
    read -r long0 long1 <<<"$(ranks_allocations 100 $threads)"
    [ -n "$short1" ] && [ -n "$long1" ] || fail "no counts from the two PowerSGD ranks at $threads thread(s)"
    echo "PowerSGD, 2 ranks, threads $threads: $short0 and $short1 allocations for 20 steps, $long0 and $long1 for 100"
    for extra in $((long0 - short0)) $((long1 - short1)); do
        [ "$extra" -lt 30 ] && [ "$extra" -gt -30 ] || fail "$extra allocations in 80 extra steps (PowerSGD, threads $threads)"
    done
done
echo "PASS $name"
