#!/usr/bin/env bash
# Fuzzes the input readers with libFuzzer, one target after the other.
#
#   Tests/fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]     (default: 60 seconds; every target)
#
# A target is a directory Tests/fuzz/targets/NAME (its main.swift hands libFuzzer one input at a time). With
# PLEXUS_FUZZ_RUNTIME naming libFuzzer's archive without a main, Package.swift makes each such directory an executable
# fuzz-NAME and compiles every module it uses with coverage and AddressSanitizer; this script sets that variable,
# builds the executables with SwiftPM in a scratch path of their own (.build/fuzz, so the normal build is untouched)
# and runs them. The targets are the package's fuzz-* products: this script lists no source files.
#
# Seeds: small valid inputs generated here, the test fixtures of each format, plus Tests/fuzz/regressions/NAME/*.
# The corpus grows in .build/fuzz/corpus/NAME across runs. Every crash, hang (> FUZZ_TIMEOUT s per input, default
# 10), out-of-memory (> 2048 MB RSS) or single allocation > FUZZ_MALLOC_LIMIT_MB (default 512) is copied to
# Tests/fuzz/regressions/NAME/ (commit it with the fix; FuzzRegressionTests replays it) and makes the exit status 1.
# libFuzzer stops a target at its first finding. One line per target:
#   fuzz NAME: ok|FOUND KIND, N executions in S s, corpus C inputs[, saved PATH]
#
# Environment: SWIFTC (default: swiftc on PATH), FUZZ_TIMEOUT, FUZZ_MALLOC_LIMIT_MB. libFuzzer logs:
# .build/fuzz/logs/NAME.log.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
# shellcheck source=../../launch/common.sh
source "$root/launch/common.sh"
seconds="${1:-60}"
[ $# -gt 0 ] && shift
case "$seconds" in ''|*[!0-9]*) echo "usage: $0 [SECONDS_PER_TARGET] [TARGET...]" >&2; exit 2 ;; esac

SWIFTC="${SWIFTC:-$(command -v swiftc || echo /opt/swift/usr/bin/swiftc)}"
toolchain_bin="$(dirname "$(readlink -f "$SWIFTC")")"
runtime="$(find "$toolchain_bin/../lib/clang" -name 'libclang_rt.fuzzer_no_main-x86_64.a' 2>/dev/null | head -1)"
[ -n "$runtime" ] || { echo "fuzz: no libclang_rt.fuzzer_no_main in the Swift toolchain of $SWIFTC" >&2; exit 2; }
export PLEXUS_FUZZ_RUNTIME="$runtime"
scratch="$root/.build/fuzz"
mkdir -p "$scratch/logs" "$scratch/corpus"
export ASAN_SYMBOLIZER_PATH="${ASAN_SYMBOLIZER_PATH:-$toolchain_bin/llvm-symbolizer}"
# Leaks are not what this looks for (the Swift runtime keeps caches alive); stack overflows are.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0:handle_abort=1:detect_stack_use_after_return=0}"
log() { echo "fuzz: $*" >&2; }

cd "$root"
mapfile -t build_flags < <(mpi_build_flags)
# C modules (Yams' libyaml) get the same instrumentation as the Swift ones.
build_flags+=(--scratch-path "$scratch" -Xcc -fsanitize=fuzzer-no-link -Xcc -fsanitize=address)
known="$(swift package "${build_flags[@]}" describe --type json 2>/dev/null \
    | sed -nE 's/^ *"name" *: *"fuzz-([A-Za-z0-9_-]+)".*/\1/p' | sort -u | tr '\n' ' ')"
[ -n "$known" ] || { echo "fuzz: the package has no fuzz-* targets (is PLEXUS_FUZZ_RUNTIME read by Package.swift?)" >&2; exit 2; }
# shellcheck disable=SC2206  # target names, one word each
if [ $# -gt 0 ]; then targets=("$@"); else targets=($known); fi
for name in "${targets[@]}"; do
    case " $known " in *" $name "*) ;; *) echo "unknown fuzz target $name (known: $known)" >&2; exit 2 ;; esac
done
bin="$(swift build "${build_flags[@]}" --show-bin-path)"
for name in "${targets[@]}"; do
    log "building fuzz-$name"
    swift build "${build_flags[@]}" --product "fuzz-$name" >"$scratch/logs/build-$name.log" 2>&1 ||
        { tail -20 "$scratch/logs/build-$name.log" >&2; echo "fuzz: building fuzz-$name failed (log: ${scratch#"$root"/}/logs/build-$name.log)" >&2; exit 2; }
done

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
        config)
            cp "$root/Configs/fashion-mnist.yaml" "$dir/fashion-mnist.yaml"
            for fixture in "$root"/Tests/scripts/fixtures/*.yaml; do [ -e "$fixture" ] && cp "$fixture" "$dir/"; done
            printf 'data: {train: d.csv, normalize: standardize, train_limit: 10}\nmodel:\n  layers: [{units: 1}]\nloss: mse\noptimizer: {name: sgd, lr: 0.1, momentum: 0.9, nesterov: true}\nschedule: {name: step, step_size: 5, gamma: 0.5}\ntraining: {epochs: 2, batch_size: 4, threads: 1, clip_grad_norm: 1.0, deterministic: true}\ncheckpoint: {every_steps: 3, keep: 2}\n' >"$dir/csv.yaml"
            printf 'data: {train: {x: a.npy, y: b.npy}, test: [t1.parquet, t2.parquet], validation: {file: v.h5, x: f, y: l}}\nmodel: {layers: [{units: 1}]}\n' >"$dir/locations.yaml"
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
    # Files real writers made: numpy's .npz and .npy files, pyarrow's Parquet files.
    if [ -d "$root/Tests/fixtures/$name" ]; then
        find "$root/Tests/fixtures/$name" -type f -name "*.$name" -exec cp {} "$dir/" \;
    fi
    if [ -d "$here/regressions/$name" ]; then
        find "$here/regressions/$name" -type f ! -name '*.md' -exec cp {} "$dir/" \;
    fi
}
max_len() {
    case "$1" in idx|npz|parquet) echo 16384 ;; *) echo 4096 ;; esac
}

# --- run ---------------------------------------------------------------------------------------
status=0
for name in "${targets[@]}"; do
    write_seeds "$name"
    corpus="$scratch/corpus/$name"
    artifacts="$work/artifacts/$name"
    mkdir -p "$corpus" "$artifacts"
    logfile="$scratch/logs/$name.log"
    dictionary=()
    [ -f "$here/$name.dict" ] && dictionary=(-dict="$here/$name.dict")
    started=$(date +%s)
    st=0
    "$bin/fuzz-$name" "$corpus" "$work/seeds/$name" \
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
