#!/usr/bin/env bash
# The SIMD kernel variants give the same bits, and a portable AVX2 build runs on an AVX2-only CPU:
# - the release binary trains the small config with PLEXUS_KERNEL=avx2 and (where the CPU has AVX-512) avx512,
#   at 1 and 2 threads: every run's param_sha256 is the same;
# - a PLEXUS_TARGET_CPU=haswell build (in .build-haswell, incremental) holds no AVX-512 instruction and trains the
#   same config under `qemu-x86_64 -cpu Haswell` (an AVX2 CPU without AVX-512) to the same param_sha256.
set -euo pipefail
name=kernel_variants
source "$(dirname "${BASH_SOURCE[0]}")/fixtures/harness.sh"
[ -x "$binary" ] || fail "no plexus binary at $binary"
ensure_packages qemu-user >/dev/null 2>&1 || fail "cannot install qemu-user"
command -v objdump >/dev/null || fail "objdump (binutils) is missing"

tmp="$(mktemp -d /tmp/plexus-kernels.XXXXXX)"
trap 'rm -rf "$tmp"' EXIT

# train LABEL THREADS [launcher...] BINARY: trains the small config; sets `hash` to its param_sha256.
train() {
    local label=$1 threads=$2; shift 2
    "$@" train "$config" --run-dir "$tmp/$label" --progress plain --set training.threads="$threads" \
        >"$tmp/$label.log" 2>&1 || fail "$label: training failed: $(tail -3 "$tmp/$label.log")"
    hash=$(python3 -c "import json, sys; print(json.load(open(sys.argv[1]))['param_sha256'])" "$tmp/$label/summary.json")
    [ -n "$hash" ] || fail "$label: no param_sha256"
}

variants=(avx2)
grep -qw avx512f /proc/cpuinfo && variants+=(avx512)
reference=""
for variant in "${variants[@]}"; do
    for threads in 1 2; do
        PLEXUS_KERNEL=$variant train "$variant-$threads" "$threads" "$binary"
        echo "$variant, $threads thread(s): $hash"
        reference=${reference:-$hash}
        [ "$hash" = "$reference" ] || fail "$variant at $threads thread(s) gave $hash, $reference before"
    done
done

portable="$root/.build-haswell/release/plexus"
(cd "$root" && PLEXUS_TARGET_CPU=haswell swift build -c release --product plexus --scratch-path .build-haswell \
    >"$tmp/build.log" 2>&1) || fail "PLEXUS_TARGET_CPU=haswell build failed: $(tail -3 "$tmp/build.log")"
wide=$(objdump -d --no-show-raw-insn "$portable" | grep -cE '%zmm|%k[1-7]|%[xy]mm(1[6-9]|2[0-9]|3[01])' || true)
[ "$wide" = 0 ] || fail "the haswell build holds $wide instructions with AVX-512 registers"
train haswell-qemu 1 qemu-x86_64 -cpu Haswell "$portable"
echo "haswell build under qemu-x86_64 -cpu Haswell: $hash"
[ "$hash" = "$reference" ] || fail "the haswell build under qemu gave $hash, the native build $reference"
echo "PASS $name"
