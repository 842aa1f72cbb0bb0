#!/usr/bin/env bash
# What launch/package produces, checked without root:
#   * one top folder plexus-VERSION-linux-ARCH with bin/plexus, launch/{train,slurm.sbatch,
#     common.sh,hostfile.example}, Configs/, README.md, BUILD-INFO, the man page and completion
#     scripts under share/, and no sources;
#   * bin/plexus --version names the tarball's version and commit;
#   * bin/plexus's NEEDED (readelf -d) lists only glibc's libraries, libmpi.so.40, libz and
#     libgcc_s (the Swift runtime, Foundation, Dispatch and libstdc++ are linked in): no
#     GLIBCXX/CXXABI versions, nothing from the Swift toolchain in ldd, and no glibc symbol version
#     newer than PLEXUS_PORTABLE_GLIBC (common.sh);
#   * the glibc wraps of launch/portable-compat.c are in it, and compute what libm's hypot does;
#   * it trains under `qemu-x86_64 -cpu <portable level>`, i.e. uses no instruction that CPU lacks.
set -euo pipefail
name=portable_package
source "$(dirname "${BASH_SOURCE[0]}")/fixtures/harness.sh"
for tool in readelf objdump; do command -v "$tool" >/dev/null || fail "$tool missing (binutils)"; done

tmp="$(mktemp -d /tmp/plexus-package.XXXXXX)"
trap 'rm -rf "$tmp"' EXIT

"$root/launch/package" --output "$tmp/dist" >"$tmp/package.out" 2>"$tmp/package.err" \
    || fail "launch/package failed: $(tail -3 "$tmp/package.err" | tr '\n' ' ')"
tarball="$(tail -1 "$tmp/package.out")"
arch="$(uname -m)"
version="$(tr -d ' \n' < "$root/VERSION")"
[[ "$(basename "$tarball")" =~ ^plexus-${version//./\\.}(-g[0-9a-f]{7})?(-dirty)?-linux-$arch\.tar\.gz$ ]] \
    || fail "unexpected tarball name $(basename "$tarball")"
top="$(basename "$tarball" .tar.gz)"

# --- contents ----------------------------------------------------------------------------------
tar -tzf "$tarball" > "$tmp/list"
for f in bin/plexus launch/train launch/slurm.sbatch launch/common.sh launch/hostfile.example \
         Configs/fashion-mnist.yaml README.md docs/getting-started.md docs/configuration.md BUILD-INFO share/man/man1/plexus.1 \
         share/bash-completion/completions/plexus share/zsh/site-functions/_plexus \
         share/fish/vendor_completions.d/plexus.fish; do
    grep -qx "$top/$f" "$tmp/list" || fail "the tarball lacks $top/$f"
done
if grep -v "^$top/" "$tmp/list" | grep -q .; then fail "entries outside $top/: $(grep -v "^$top/" "$tmp/list" | head -3 | tr '\n' ' ')"; fi
if grep -qE "^$top/(Sources|Tests|\.build|Package\.swift)" "$tmp/list"; then fail "the tarball holds sources or build files"; fi
tar -C "$tmp" -xzf "$tarball"
binary_p="$tmp/$top/bin/plexus"
[ -x "$binary_p" ] || fail "bin/plexus is not executable"
cpu="$(sed -n 's/^target_cpu: //p' "$tmp/$top/BUILD-INFO")"
[[ "$(sed -n 1p "$tmp/$top/share/man/man1/plexus.1")" == ".TH PLEXUS 1 "* ]] || fail "share/man/man1/plexus.1 is no man page"
grep -q '^\.SS "plexus train"$' "$tmp/$top/share/man/man1/plexus.1" || fail "the man page lacks plexus train"
grep -q 'train' "$tmp/$top/share/bash-completion/completions/plexus" || fail "the bash completions lack train"
version_line="$("$binary_p" --version)" || fail "bin/plexus --version failed"
version_line="${version_line%%$'\n'*}"
[[ "$version_line" == "plexus $version ("* ]] || fail "bin/plexus --version says '$version_line', expected plexus $version (...)"
if [[ "$top" =~ -g([0-9a-f]{7}) ]] && [[ "$version_line" != *"${BASH_REMATCH[1]}"* ]]; then
    fail "bin/plexus --version says '$version_line', the tarball is of commit ${BASH_REMATCH[1]}"
fi
[ "$cpu" = "$(portable_target_cpu)" ] || fail "BUILD-INFO says target_cpu '$cpu', expected $(portable_target_cpu)"

# --- what it needs from the node ---------------------------------------------------------------
objdump -T "$binary_p" > "$tmp/dynsym"  # (a file: grep -q on a pipe would SIGPIPE objdump under pipefail)
needed="$(readelf -d "$binary_p" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')"
echo "NEEDED: $(echo "$needed" | paste -sd ' ')"
while read -r lib; do
    case "$lib" in
        libc.so.6|libm.so.6|libdl.so.2|libpthread.so.0|librt.so.1|ld-linux*.so.*|libmpi.so.40|libz.so.1|libgcc_s.so.1) ;;
        *) fail "bin/plexus needs $lib (allowed: glibc's libraries, libmpi.so.40, libz.so.1, libgcc_s.so.1)" ;;
    esac
done <<<"$needed"
grep -qx libmpi.so.40 <<<"$needed" || fail "bin/plexus does not link libmpi.so.40"
if grep -qE '\((GLIBCXX|CXXABI)_' "$tmp/dynsym"; then fail "bin/plexus needs libstdc++ symbol versions (it should be linked in)"; fi
newest="$(grep -oE '\(GLIBC_[0-9.]+\)' "$tmp/dynsym" | tr -d '()' | sed 's/GLIBC_//' | sort -V | tail -1)"
[ -n "$newest" ] || fail "no GLIBC symbol versions found in bin/plexus"
echo "newest glibc symbol version: $newest (allowed: $PLEXUS_PORTABLE_GLIBC)"
if [ "$(printf '%s\n' "$newest" "$PLEXUS_PORTABLE_GLIBC" | sort -V | tail -1)" != "$PLEXUS_PORTABLE_GLIBC" ]; then
    fail "bin/plexus needs glibc $newest: $(grep -F "(GLIBC_$newest)" "$tmp/dynsym" | awk '{print $NF}' | paste -sd ' ')"
fi
ldd "$binary_p" > "$tmp/ldd" 2>&1 || fail "ldd failed: $(head -2 "$tmp/ldd")"
if grep -qiE 'swift|Foundation|dispatch|BlocksRuntime|libstdc\+\+' "$tmp/ldd"; then fail "ldd shows toolchain libraries: $(grep -iE 'swift|Foundation|dispatch|stdc' "$tmp/ldd" | head -3 | tr '\n' ' ')"; fi
if grep -q 'not found' "$tmp/ldd"; then fail "ldd: $(grep 'not found' "$tmp/ldd" | tr '\n' ' ')"; fi

# --- the glibc compatibility wraps -------------------------------------------------------------
for symbol in __wrap_hypot __wrap_hypotf __wrap_arc4random; do
    grep -qw "$symbol" "$tmp/dynsym" || fail "bin/plexus lacks $symbol (the link did not wrap)"
done
cc="$(dirname "$(command -v swift)")/clang"
[ -x "$cc" ] || cc="$(command -v cc || true)"
if [ -n "$cc" ]; then
    cat > "$tmp/wraps.c" <<'C'
#include <math.h>
#include <stdint.h>
#include <stdio.h>
uint32_t arc4random(void);
int main(int argc, char **argv) {
    double x = argc + 2.0, y = argc + 3.0;  /* 3 and 4 at run time, so nothing is folded */
    uint32_t a = arc4random(), b = arc4random(), c = arc4random();
    printf("%.17g %.9g %d\n", hypot(x, y), hypotf((float)x + 2, (float)y + 8), a != b || b != c);
    return 0;
}
C
    "$cc" -O2 "$tmp/wraps.c" "$root/launch/portable-compat.c" -o "$tmp/wraps" -lm \
        -Wl,--wrap=hypot,--wrap=hypotf,--wrap=arc4random 2>"$tmp/cc.err" || fail "cannot build the wrap check: $(head -2 "$tmp/cc.err")"
    [ "$("$tmp/wraps")" = "5 13 1" ] || fail "the wraps compute '$("$tmp/wraps")', expected '5 13 1'"
fi

# --- no instruction beyond the portable CPU level ----------------------------------------------
if [ "$arch" = x86_64 ] && ! command -v qemu-x86_64 >/dev/null; then
    ensure_packages qemu-user >/dev/null 2>&1 || true
fi
if [ "$arch" != x86_64 ]; then
    qemu_note="not x86_64: no qemu check"
elif ! command -v qemu-x86_64 >/dev/null; then
    qemu_note="qemu-x86_64 missing and not installable here (qemu-user): CPU level not checked"
else
    qemu-x86_64 -cpu help > "$tmp/qemu-cpus" 2>&1 || true
    qemu_cpu="$(awk -v c="$cpu" 'tolower($2) == tolower(c) {print $2; exit}' "$tmp/qemu-cpus")"
    [ -n "$qemu_cpu" ] || fail "qemu-x86_64 knows no CPU model '$cpu'"
    st=0
    timeout 300 qemu-x86_64 -cpu "$qemu_cpu" "$binary_p" train "$config" --run-dir "$tmp/qemu-run" --progress plain \
        --set data.train_limit=500 --set training.epochs=1 >"$tmp/qemu.out" 2>&1 || st=$?
    [ "$st" = 0 ] || fail "bin/plexus under qemu-x86_64 -cpu $qemu_cpu exited $st: $(tail -2 "$tmp/qemu.out" | tr '\n' ' ')"
    [ -f "$tmp/qemu-run/summary.json" ] || fail "the qemu run wrote no summary.json"
    qemu_note="trains under qemu-x86_64 -cpu $qemu_cpu"
fi
echo "PASS $name ($(du -h "$tarball" | cut -f1) tarball; $qemu_note)"
