#!/usr/bin/env bash
# The SIMD kernel variants give the same bits, and a portable AVX2 build runs on an AVX2-only CPU:
# - the release binary trains the small config with PLEXUS_KERNEL=avx2 and (where the CPU has AVX-512) avx512,
#   at 1 and 2 threads: every run's param_sha256 is the same;
# - the portable package's binary (a PLEXUS_TARGET_CPU=haswell build) holds no AVX-512 instruction and trains the
#   same config under `qemu-x86_64 -cpu Haswell` (an AVX2 CPU without AVX-512) to the same param_sha256, and
#   refuses training.precision bf16 there (no AVX512_BF16) with status 2 and one line;
# - ranks agree on the narrowest kernel: a 2-rank run whose rank 1 alone is forced to avx2 (an MPMD command line,
#   each rank with its own PLEXUS_KERNEL) runs avx2 on both (summary.json, the first line, the checkpoint's
#   metadata) and ends with the param_sha256 of a 2-rank run with avx2 everywhere; a bad PLEXUS_KERNEL on one
#   rank stops both with status 2 and one line naming it.
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

command -v mpirun >/dev/null || fail "mpirun missing (openmpi-bin)"
mpirun_root_flags
# mixed LABEL KERNEL0 KERNEL1: a 2-rank run, rank 0 with PLEXUS_KERNEL=KERNEL0 and rank 1 with KERNEL1.
mixed() {
    local label=$1 args=(train "$config" --run-dir "$tmp/$1" --progress plain --set training.threads=1
                         --set checkpoint.every_epochs=1)
    timeout -k 5 120 mpirun --oversubscribe --bind-to none -np 1 -x PLEXUS_KERNEL="$2" "$binary" "${args[@]}" \
        : -np 1 -x PLEXUS_KERNEL="$3" "$binary" "${args[@]}" >"$tmp/$label.log" 2>&1
}
mixed all-avx2 avx2 avx2 || fail "2 ranks on avx2 failed: $(tail -3 "$tmp/all-avx2.log")"
plain=$(python3 -c "import json, sys; print(json.load(open(sys.argv[1]))['param_sha256'])" "$tmp/all-avx2/summary.json")
mixed mixed auto avx2 || fail "2 ranks, rank 1 on avx2, failed: $(tail -3 "$tmp/mixed.log")"
python3 - "$tmp/mixed" "$plain" <<'PY' || fail "the mixed run did not agree on avx2"
import glob, json, struct, sys
summary = json.load(open(sys.argv[1] + "/summary.json"))
assert summary["kernel"] == "avx2", f"summary.json kernel {summary['kernel']}"
assert summary["param_sha256"] == sys.argv[2], f"param_sha256 {summary['param_sha256']}, all-avx2 run {sys.argv[2]}"
checkpoints = sorted(glob.glob(sys.argv[1] + "/checkpoints/*.safetensors"))
assert checkpoints, "no checkpoint"
with open(checkpoints[-1], "rb") as file:
    header = json.loads(file.read(struct.unpack("<Q", file.read(8))[0]))
assert header["__metadata__"]["plexus.kernel"] == "avx2", f"checkpoint kernel {header['__metadata__'].get('plexus.kernel')}"
PY
first=$(grep -m1 '^plexus: 2 ranks' "$tmp/mixed.log" || true)
[[ "$first" == *"(avx2 kernel)"* ]] || fail "the run's first line does not name the avx2 kernel: $first"
echo "2 ranks, rank 0 auto and rank 1 avx2: avx2 on both, $plain (= 2 ranks on avx2)"
st=0
mixed bad auto sse || st=$?
[ "$st" = 2 ] || fail "PLEXUS_KERNEL=sse on rank 1: exit status $st, expected 2"
[ "$(grep -c 'PLEXUS_KERNEL=sse' "$tmp/bad.log")" = 1 ] || fail "PLEXUS_KERNEL=sse on rank 1: $(head -3 "$tmp/bad.log")"

# The portable package's binary (launch/package: PLEXUS_TARGET_CPU=haswell, incremental in its own scratch path,
# which bare_system.sh and portable_package.sh build too).
"$root/launch/package" --output "$tmp/dist" >"$tmp/package.out" 2>"$tmp/package.err" \
    || fail "launch/package failed: $(tail -3 "$tmp/package.err" | tr '\n' ' ')"
tar -C "$tmp" -xzf "$(tail -1 "$tmp/package.out")" || fail "cannot unpack the package"
portable="$(echo "$tmp"/plexus-*/bin/plexus)"
[ -x "$portable" ] || fail "the package has no bin/plexus"
wide=$(objdump -d --no-show-raw-insn "$portable" | grep -cE '%zmm|%k[1-7]|%[xy]mm(1[6-9]|2[0-9]|3[01])' || true)
[ "$wide" = 0 ] || fail "the package's haswell build holds $wide instructions with AVX-512 registers"
train haswell-qemu 1 qemu-x86_64 -cpu Haswell "$portable"
echo "package (haswell) under qemu-x86_64 -cpu Haswell: $hash"
[ "$hash" = "$reference" ] || fail "the haswell build under qemu gave $hash, the native build $reference"
# bf16 products need AVX512_BF16: on that CPU they stop the run with status 2 and one line naming the rank, its CPU
# and the missing feature (qemu's own warnings aside).
st=0
qemu-x86_64 -cpu Haswell "$portable" train "$config" --run-dir "$tmp/bf16-qemu" --set training.precision=bf16 \
    >"$tmp/bf16-qemu.log" 2>&1 || st=$?
[ "$st" = 2 ] || fail "precision bf16 under qemu -cpu Haswell: exit status $st, expected 2"
refusal=$(grep -v '^qemu-x86_64: warning' "$tmp/bf16-qemu.log" || true)
[ "$(wc -l <<<"$refusal")" = 1 ] && [[ "$refusal" == *"rank 0"*"Haswell"*"lacks AVX512_BF16"* ]] \
    || fail "precision bf16 under qemu -cpu Haswell: $(head -3 <<<"$refusal")"
echo "precision bf16 under qemu-x86_64 -cpu Haswell: status 2, $refusal"
echo "PASS $name"
