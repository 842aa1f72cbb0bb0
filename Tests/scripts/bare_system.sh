#!/usr/bin/env bash
# The portable package on a bare system: a minimal Debian root (debootstrap --variant=minbase with
# only OpenMPI's runtime, openmpi-bin: no Swift, no compiler, no data set) in which an unprivileged
# user (chroot --userspec) unpacks the launch/package tarball and runs its launch/train with 2
# ranks on the small config. Its param_sha256 must equal the same run outside, both of the
# package's binary and of the checkout's release build. Inside, the default config (data set not installed, no root,
# no sudo) must stop with exit 2 and one "missing Fashion-MNIST" line instead of trying apt.
#
# Root only (debootstrap, chroot, mounts). The root is cached outside the repository in
# $PLEXUS_BARE_CACHE (default /var/cache/plexus-bare; delete it to rebuild); mounts live in a
# private mount namespace (unshare), so nothing stays mounted when this ends. By hand it also
# checks other systems (not in ./launch/test), e.g. Ubuntu 22.04 (glibc 2.35, OpenMPI 4.1.2) and
# Debian 13 (OpenMPI 5.0):
#   PLEXUS_BARE_SUITE=jammy PLEXUS_BARE_MIRROR=http://archive.ubuntu.com/ubuntu \
#     PLEXUS_BARE_COMPONENTS=main,universe PLEXUS_BARE_DEBOOTSTRAP_ARGS=--no-check-gpg bash Tests/scripts/bare_system.sh
#   PLEXUS_BARE_SUITE=trixie bash Tests/scripts/bare_system.sh
set -euo pipefail
name=bare_system
source "$(dirname "${BASH_SOURCE[0]}")/fixtures/harness.sh"

if [ "$(id -u)" != 0 ]; then echo "SKIP $name: needs root for debootstrap, chroot and mounts"; exit 0; fi
for tool in unshare chroot flock; do
    command -v "$tool" >/dev/null || { echo "SKIP $name: no $tool (util-linux, coreutils)"; exit 0; }
done
if ! command -v debootstrap >/dev/null; then
    ensure_packages debootstrap >/dev/null 2>&1 || { echo "SKIP $name: debootstrap is not installed and apt-get cannot install it"; exit 0; }
fi
command -v python3 >/dev/null || fail "python3 missing (reads summary.json)"

suite="${PLEXUS_BARE_SUITE:-bookworm}"
components="${PLEXUS_BARE_COMPONENTS:-main}"
cache="${PLEXUS_BARE_CACHE:-/var/cache/plexus-bare}"
bare="$cache/$suite-${components//,/-}-minbase-openmpi-bin-v1"  # bump v1 when the set-up below changes
uid=4242                                     # the unprivileged user inside, "plexus"
tmp="$(mktemp -d /tmp/plexus-bare.XXXXXX)"
chmod 755 "$tmp"
trap 'if [ "${PLEXUS_TEST_KEEP:-0}" = 1 ]; then echo "kept $tmp" >&2; else rm -rf "$tmp"; fi' EXIT
timings=()
timed() {  # LABEL CMD...: run CMD, remember how long it took
    local label=$1 start=$SECONDS st=0; shift
    "$@" || st=$?
    timings+=("$label $((SECONDS - start))s")
    return "$st"
}
summary_hash() {
    python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["param_sha256"])' "$1/summary.json" 2>/dev/null
}

# --- 1. the package ----------------------------------------------------------------------------
timed package "$root/launch/package" --output "$tmp/dist" >"$tmp/package.out" 2>"$tmp/package.err" \
    || fail "launch/package failed: $(tail -3 "$tmp/package.err" | tr '\n' ' ')"
tarball="$(tail -1 "$tmp/package.out")"
[ -f "$tarball" ] || fail "launch/package printed no tarball path"

# --- 2. the bare root (cached) -----------------------------------------------------------------
make_bare() {
    local new="$bare.partial-$$"
    rm -rf --one-file-system "$new"
    # debootstrap mounts /proc and /sys inside the target; in a private namespace they cannot outlive it.
    local extra=()
    read -r -a extra <<<"${PLEXUS_BARE_DEBOOTSTRAP_ARGS:-}"
    if ! unshare --mount --propagation private debootstrap --variant=minbase --include=openmpi-bin \
            --components="$components" "${extra[@]}" "$suite" "$new" "${PLEXUS_BARE_MIRROR:-http://deb.debian.org/debian}" \
            >"$tmp/debootstrap.log" 2>&1; then
        rm -rf --one-file-system "$new"
        fail "debootstrap failed: $(grep -E '^(E|W):' "$tmp/debootstrap.log" | tail -2 | tr '\n' ' ')"
    fi
    if ! { chroot "$new" groupadd --gid "$uid" plexus && chroot "$new" useradd --uid "$uid" --gid "$uid" \
            --home-dir /home/plexus --shell /bin/bash plexus && mkdir -p "$new/home/plexus"; }; then
        rm -rf --one-file-system "$new"
        fail "cannot add the user plexus to the bare root"
    fi
    rm -f "$new"/var/cache/apt/archives/*.deb
    mv "$new" "$bare"
}
mkdir -p "$cache"
exec 7>"$cache/.lock"
flock 7
fresh=cached
if [ ! -d "$bare" ]; then fresh=fresh; timed "debootstrap" make_bare; fi
flock -u 7

# The root really is bare: no Swift, no compiler, no data set; OpenMPI's runtime is there.
for tool in swift swiftc cc gcc clang ld; do
    if chroot "$bare" /bin/sh -c "command -v $tool" >/dev/null 2>&1; then fail "the bare root has $tool"; fi
done
[ ! -e "$bare$PLEXUS_FASHION_MNIST" ] || fail "the bare root has the data set"
chroot "$bare" /bin/sh -c 'command -v mpirun' >/dev/null || fail "the bare root has no mpirun"

# --- 3. inside: the package's launch/train as user plexus --------------------------------------
home="$tmp/home"
mkdir -p "$home/data"
tar -C "$home" -xzf "$tarball"
cp "$PLEXUS_FASHION_MNIST"/*-ubyte.gz "$home/data/"
sed "s|$PLEXUS_FASHION_MNIST|/home/plexus/data|g" "$config" > "$home/small.yaml"
chown -R "$uid:$uid" "$home"
cat > "$home/inside.sh" <<'INSIDE'
set -u
cd ~/plexus-*/ || exit 9
echo "user $(id -un) uid $(id -u); $(mpirun --version | head -1); $(ldd --version | head -1)"
PLEXUS_RANKS=2 ./launch/train ~/small.yaml --run-dir ~/run >~/train.out 2>~/train.err
echo "train exit $?"
./launch/train --run-dir ~/run-default >~/default.out 2>~/default.err
echo "default exit $?"
INSIDE
inside() {
    # A private mount namespace: proc, sys, dev, a fresh /tmp and the home exist only for this run.
    timeout -k 10 300 unshare --mount --propagation private /bin/bash -c '
        set -e
        r=$1 home=$2 uid=$3
        mount -t proc proc "$r/proc"
        mount --rbind /sys "$r/sys"
        mount --rbind /dev "$r/dev"
        mount -t tmpfs -o mode=1777 tmpfs "$r/tmp"
        mount --bind "$home" "$r/home/plexus"
        exec chroot --userspec="$uid:$uid" "$r" /usr/bin/env -i HOME=/home/plexus USER=plexus \
            PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8 /bin/bash /home/plexus/inside.sh
    ' inside "$bare" "$home" "$uid"
}
st=0
timed "bare-system run" inside >"$tmp/inside.out" 2>"$tmp/inside.err" || st=$?
[ "$st" = 0 ] || fail "the chroot run exited $st: $(tail -3 "$tmp/inside.err" | tr '\n' ' ')"
cat "$tmp/inside.out"
grep -qx "train exit 0" "$tmp/inside.out" || fail "launch/train in the bare root failed: $(tail -3 "$home/train.err" | tr '\n' ' ')"
inside_hash="$(summary_hash "$home/run")" || fail "no param_sha256 in the bare root's summary.json"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(d["world_size"] != 2)' "$home/run/summary.json" \
    || fail "the bare-root run did not have 2 ranks"
grep -qx "default exit 2" "$tmp/inside.out" || fail "the default config without its data set should exit 2: $(tr '\n' ' ' < "$tmp/inside.out")"
grep -q "^plexus: missing Fashion-MNIST in $PLEXUS_FASHION_MNIST: " "$home/default.err" \
    || fail "no 'missing Fashion-MNIST' line: $(head -3 "$home/default.err" | tr '\n' ' ')"
if grep -qi "installing\|sudo" "$home/default.err"; then fail "the unprivileged run tried to install: $(head -3 "$home/default.err")"; fi
[ "$(grep -c . "$home/default.err")" = 1 ] || fail "expected one stderr line, got: $(tr '\n' '|' < "$home/default.err")"

# --- 4. outside: the same run of the package's binary and of the release build
mpirun_root_flags
st=0
PLEXUS_RANKS=2 timed "host run (package)" "$home"/plexus-*/launch/train "$config" --run-dir "$tmp/host-package" \
    >"$tmp/host-package.out" 2>&1 || st=$?
[ "$st" = 0 ] || fail "the package's launch/train on this host exited $st: $(tail -3 "$tmp/host-package.out" | tr '\n' ' ')"
# The release build of this checkout (built for this CPU): kernel_variants.sh shows that it and the package's
# haswell build train to the same bits, so the same hash here says static linking changed nothing.
st=0
timed "host run (release build)" run_mpirun -np 2 "$binary" train "$config" \
    --run-dir "$tmp/host-build" --progress plain >"$tmp/host-build.out" 2>&1 || st=$?
[ "$st" = 0 ] || fail "the release build's run exited $st: $(tail -3 "$tmp/host-build.out" | tr '\n' ' ')"
package_hash="$(summary_hash "$tmp/host-package")" || fail "no param_sha256 from the host run of the package"
build_hash="$(summary_hash "$tmp/host-build")" || fail "no param_sha256 from the host run of the release build"

echo "param_sha256 bare root, package: $inside_hash"
echo "param_sha256 this host, package: $package_hash"
echo "param_sha256 this host, release build: $build_hash"
echo "timings ($fresh root): ${timings[*]}"
[ "$inside_hash" = "$package_hash" ] || fail "the bare root and this host disagree: $inside_hash vs $package_hash"
[ "$inside_hash" = "$build_hash" ] || fail "the package and the release build disagree: $inside_hash vs $build_hash"
echo "PASS $name"
