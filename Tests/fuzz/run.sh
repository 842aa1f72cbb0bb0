#!/usr/bin/env bash
# Fuzzes the input readers with libFuzzer (swiftc -sanitize=fuzzer,address), one target after the other.
#
#   Tests/fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]     (default: 60 seconds; idx csv npz config safetensors)
#
# Targets are Tests/fuzz/targets/NAME.swift; each is compiled with swiftc directly (not SwiftPM, so the
# normal build is untouched) into one module together with the reader sources it needs. Yams/CYaml (for
# the config target) come from SwiftPM's checkout in .build/checkouts/Yams and are built instrumented;
# Kernels and NeuralNet (config types) are built plainly. Everything goes to .build/fuzz/.
#
# Seeds: small valid inputs generated here, plus Tests/fuzz/regressions/NAME/*. The corpus grows in
# .build/fuzz/corpus/NAME across runs. Every crash, hang (> FUZZ_TIMEOUT s per input, default 10),
# out-of-memory (> 2048 MB RSS) or single allocation > FUZZ_MALLOC_LIMIT_MB (default 512) is copied to
# Tests/fuzz/regressions/NAME/ (commit it with the fix; FuzzRegressionTests replays it) and makes the
# exit status 1. libFuzzer stops a target at its first finding. One line per target:
#   fuzz NAME: ok|FOUND KIND, N executions in S s, corpus C inputs[, saved PATH]
#
# Environment: SWIFTC, CLANG (default: next to swiftc), FUZZ_OPT (-O),
# FUZZ_TIMEOUT, FUZZ_MALLOC_LIMIT_MB. libFuzzer logs: .build/fuzz/logs/NAME.log.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
seconds="${1:-60}"
[ $# -gt 0 ] && shift
if [ $# -gt 0 ]; then targets=("$@"); else targets=(idx csv npz config safetensors); fi
case "$seconds" in ''|*[!0-9]*) echo "usage: $0 [SECONDS_PER_TARGET] [TARGET...]" >&2; exit 2 ;; esac

SWIFTC="${SWIFTC:-$(command -v swiftc || echo /opt/swift/usr/bin/swiftc)}"
toolchain_bin="$(dirname "$(readlink -f "$SWIFTC")")"
CLANG="${CLANG:-$toolchain_bin/clang}"
OPT="${FUZZ_OPT:--O}"
build="$root/.build/fuzz"
mkdir -p "$build/lib" "$build/bin" "$build/logs" "$build/corpus"
export ASAN_SYMBOLIZER_PATH="${ASAN_SYMBOLIZER_PATH:-$toolchain_bin/llvm-symbolizer}"
# Leaks are not what this looks for (the Swift runtime keeps caches alive); stack overflows are.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0:handle_abort=1:detect_stack_use_after_return=0}"

log() { echo "fuzz: $*" >&2; }

# Rebuilds OUTPUT when it is missing or older than any of the given inputs.
stale() {
    local output="$1"; shift
    [ -e "$output" ] || return 0
    local input
    for input in "$@"; do [ "$input" -nt "$output" ] && return 0; done
    return 1
}

# --- dependencies: Yams (instrumented), Kernels and NeuralNet (plain) ---------------------------
yams="$root/.build/checkouts/Yams"
if [ ! -d "$yams/Sources/Yams" ]; then
    log "resolving SwiftPM dependencies for Yams"
    (cd "$root" && swift package resolve >&2)
fi

build_cyaml() {
    local sources=("$yams"/Sources/CYaml/src/*.c)
    stale "$build/lib/libCYaml.a" "${sources[@]}" || return 0
    log "building CYaml"
    rm -rf "$build/obj/CYaml"; mkdir -p "$build/obj/CYaml"
    local source
    for source in "${sources[@]}"; do
        "$CLANG" -c -O1 -g -fsanitize=fuzzer-no-link,address -DYAML_DECLARE_STATIC \
            -I "$yams/Sources/CYaml/include" "$source" -o "$build/obj/CYaml/$(basename "$source" .c).o"
    done
    rm -f "$build/lib/libCYaml.a"
    "$toolchain_bin/llvm-ar" rcs "$build/lib/libCYaml.a" "$build/obj/CYaml"/*.o
}

# swift_library NAME "SWIFTC FLAGS" SOURCES...: a static library plus its .swiftmodule in $build/lib.
swift_library() {
    local name="$1" flags="$2"; shift 2
    stale "$build/lib/lib$name.a" "$@" || return 0
    log "building $name"
    rm -rf "$build/obj/$name"; mkdir -p "$build/obj/$name"
    # shellcheck disable=SC2086
    (cd "$build/obj/$name" && "$SWIFTC" -parse-as-library $OPT -g -module-name "$name" $flags \
        -I "$build/lib" -I "$yams/Sources/CYaml/include" \
        -emit-module -emit-module-path "$build/lib/$name.swiftmodule" \
        -emit-library -static -o "$build/lib/lib$name.a" "$@")
}

build_cyaml
swift_library Yams "-sanitize=fuzzer,address -D SWIFT_PACKAGE -Xcc -DYAML_DECLARE_STATIC" "$yams"/Sources/Yams/*.swift
swift_library Kernels "" "$root"/Sources/Kernels/*.swift
swift_library NeuralNet "" "$root"/Sources/NeuralNet/*.swift

# --- targets -----------------------------------------------------------------------------------
training="$root/Sources/Training"
target_sources() {
    local common=("$training/UserError.swift" "$training/Formats/FileIO.swift" "$here/support/FuzzSupport.swift")
    # Dataset and what it is made from (IDX arrays, CSV tables, npz archives).
    local data=("$training/Data/Dataset.swift" "$training/Data/ByteStorage.swift" "$training/Data/Targets.swift"
                "$training/Data/CSV.swift" "$training/Formats/IDX.swift")
    local npz=("$training/Data/Zip.swift" "$training/Data/NumPy.swift" "$training/Data/NPZDataset.swift")
    case "$1" in
        idx|csv)     echo "${common[@]}" "${data[@]}" ;;
        npz)         echo "${common[@]}" "${data[@]}" "${npz[@]}" ;;
        config)      echo "${common[@]}" "${data[@]}" "$training/Config/ConfigTree.swift" "$training/Config/ConfigKey.swift" "$training/Config/TrainingConfig.swift" "$training/Config/TaskConfig.swift" ;;
        safetensors) echo "${common[@]}" "$training/Formats/SHA256.swift" "$training/Formats/SafeTensors.swift" ;;
        *) return 1 ;;
    esac
}
max_len() {
    case "$1" in idx|npz) echo 16384 ;; *) echo 4096 ;; esac
}

build_target() {
    local name="$1" sources
    sources="$(target_sources "$name")" || { echo "unknown fuzz target $name (known: idx csv npz config safetensors)" >&2; exit 2; }
    # shellcheck disable=SC2206
    local files=($sources "$here/targets/$name.swift")
    local libraries=(-lKernels)                           # Dataset.gather's thread pool
    [ "$name" = config ] && libraries=(-lYams -lCYaml -lNeuralNet -lKernels)
    if stale "$build/bin/$name" "${files[@]}" "$0" "$build/lib/libYams.a" "$build/lib/libNeuralNet.a"; then
        log "building target $name"
        rm -rf "$build/obj/target-$name"; mkdir -p "$build/obj/target-$name"
        # shellcheck disable=SC2086
        (cd "$build/obj/target-$name" && "$SWIFTC" -sanitize=fuzzer,address -parse-as-library $OPT -g \
            -module-name "Fuzz_$name" -I "$root/Sources/CZlib" -I "$build/lib" -I "$yams/Sources/CYaml/include" \
            -use-ld=lld -L "$build/lib" "${libraries[@]}" -lz "${files[@]}" -o "$build/bin/$name")
    fi
}

# --- seeds -------------------------------------------------------------------------------------
work="$(mktemp -d /tmp/plexus-fuzz.XXXXXX)"
trap 'rm -rf "$work"' EXIT

write_seeds() {
    local name="$1" dir="$work/seeds/$1"
    mkdir -p "$dir"
    case "$name" in
        idx)
            # 3 images of 2×2 bytes; a 1-d labels file; the images gzipped; two gzip members.
            printf '\0\0\x08\x03\0\0\0\x03\0\0\0\x02\0\0\0\x02\x00\x10\x20\x30\x40\x50\x60\x70\x80\x90\xa0\xff' >"$dir/images"
            printf '\0\0\x08\x01\0\0\0\x03\x01\x02\x09' >"$dir/labels"
            gzip -n -c "$dir/images" >"$dir/images.gz"
            { head -c 12 "$dir/images" | gzip -n -c; tail -c +13 "$dir/images" | gzip -n -c; } >"$dir/members.gz"
            ;;
        csv)
            printf 'x1,x2,label\n0.5,1,0\n-2.25,3e2,1\n"7", 8 ,2\n' >"$dir/basic.csv"
            printf '\xef\xbb\xbflabel;a\r\n1,2\r\n\r\n3,4.125\r\n' | tr ';' ',' >"$dir/bom-crlf.csv"
            printf 'a,b\n1,2\n3,4\n' >"$dir/nolabel.csv"
            ;;
        npz)
            # Files numpy wrote: every dtype stored and deflated, zip64, and the broken ones.
            cp "$root"/Tests/fixtures/npz/*.npz "$dir/"
            ;;
        config)
            cp "$root/Configs/fashion-mnist.yaml" "$dir/fashion-mnist.yaml"
            for fixture in "$root"/Tests/scripts/fixtures/*.yaml; do [ -e "$fixture" ] && cp "$fixture" "$dir/"; done
            printf 'data: {train: d.csv, normalize: standardize, train_limit: 10}\nmodel:\n  layers: [{units: 1}]\nloss: mse\noptimizer: {name: sgd, lr: 0.1, momentum: 0.9, nesterov: true}\nschedule: {name: step, step_size: 5, gamma: 0.5}\ntraining: {epochs: 2, batch_size: 4, threads: 1, clip_grad_norm: 1.0, deterministic: true}\ncheckpoint: {every_steps: 3, keep: 2}\n' >"$dir/csv.yaml"
            ;;
        safetensors)
            # Two F32 tensors ([2] and [1,1]) plus metadata; and an empty file with only "{}".
            local header='{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1,1],"data_offsets":[8,12]}}'
            while [ $(( ${#header} % 8 )) != 0 ]; do header+=' '; done
            { printf "\\x$(printf %02x $(( ${#header} & 255 )))\\x$(printf %02x $(( ${#header} >> 8 )))\\0\\0\\0\\0\\0\\0"
              printf '%s' "$header"
              printf '\0\0\x80\x3f\0\0\0\xc0\0\0\x00\x40'; } >"$dir/two.safetensors"
            printf '\x08\0\0\0\0\0\0\0{}      ' >"$dir/empty.safetensors"
            ;;
    esac
    if [ -d "$here/regressions/$name" ]; then
        find "$here/regressions/$name" -type f ! -name '*.md' -exec cp {} "$dir/" \;
    fi
}

# --- run ---------------------------------------------------------------------------------------
status=0
for name in "${targets[@]}"; do
    build_target "$name"
done
for name in "${targets[@]}"; do
    write_seeds "$name"
    corpus="$build/corpus/$name"
    artifacts="$work/artifacts/$name"
    mkdir -p "$corpus" "$artifacts"
    logfile="$build/logs/$name.log"
    dictionary=()
    [ -f "$here/$name.dict" ] && dictionary=(-dict="$here/$name.dict")
    started=$(date +%s)
    st=0
    "$build/bin/$name" "$corpus" "$work/seeds/$name" \
        -max_total_time="$seconds" -rss_limit_mb=2048 -malloc_limit_mb="${FUZZ_MALLOC_LIMIT_MB:-512}" \
        -max_len="$(max_len "$name")" -timeout="${FUZZ_TIMEOUT:-10}" -detect_leaks=0 \
        -artifact_prefix="$artifacts/" -print_final_stats=1 "${dictionary[@]}" >"$logfile" 2>&1 || st=$?
    elapsed=$(( $(date +%s) - started ))
    executions="$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+).*/\1/p' "$logfile" | tail -1)"
    [ -n "$executions" ] || executions="$(grep -oE '^#[0-9]+' "$logfile" | tail -1 | tr -d '#')"
    inputs="$(find "$corpus" -type f | wc -l | tr -d ' ')"
    found=()
    for artifact in "$artifacts"/*; do
        [ -e "$artifact" ] || continue
        kind="$(basename "$artifact" | cut -d- -f1)"            # crash, timeout, oom, leak, slow-unit
        [ "$kind" = slow ] && continue
        mkdir -p "$here/regressions/$name"
        saved="$here/regressions/$name/$kind-$(sha1sum "$artifact" | cut -c1-16)"
        cp "$artifact" "$saved"
        found+=("$kind ${saved#"$root"/}")
    done
    if [ ${#found[@]} -gt 0 ] || [ "$st" != 0 ]; then
        status=1
        summary="${found[*]:-exit status $st without an artifact}"
        echo "fuzz $name: FOUND $summary, ${executions:-?} executions in ${elapsed} s, corpus $inputs inputs (log: ${logfile#"$root"/})"
        grep -m1 -E '^(SUMMARY|==[0-9]+==ERROR)|Fatal error|error:' "$logfile" | sed 's/^/    /' || true
    else
        echo "fuzz $name: ok, ${executions:-?} executions in ${elapsed} s, corpus $inputs inputs"
    fi
done
exit "$status"
