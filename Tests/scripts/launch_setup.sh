#!/usr/bin/env bash
# Set-up by capability: launch/train run with a PATH made of basic tools plus fakes (mpirun,
# apt-get, sudo, mpicc, ldd that record their calls) in an unpacked-package layout and in a source
# tree. Checks that what is missing gets one "plexus: missing ..." line each and exit 2; that
# apt-get is used only where it exists (through sudo when not root) and only in a source checkout;
# that nothing is built or installed in a package; that --set data.* skips the default data set; and how mpi_build_flags
# reads OpenMPI's and MPICH's mpicc. Any user; no real MPI, apt or build is touched.
set -euo pipefail
name=launch_setup
source "$(dirname "${BASH_SOURCE[0]}")/fixtures/harness.sh"

tmp="$(mktemp -d /tmp/plexus-setup.XXXXXX)"
trap 'rm -rf "$tmp"' EXIT
calls="$tmp/calls"

# --- a PATH without MPI, apt, sudo, pkg-config or compilers ------------------------------------
mkdir -p "$tmp/bin"
for tool in bash sh env dirname basename cat grep awk sed sort uniq tr head tail id nproc uname mktemp \
            rm ls ln cut paste mkdir chmod; do
    ln -s "$(command -v "$tool")" "$tmp/bin/$tool"
done
fake() {  # DIR NAME BODY: an executable DIR/NAME that logs "NAME ARGS" to $calls, then runs BODY
    mkdir -p "$tmp/$1"
    printf '#!/bin/bash\necho "%s $*" >> "%s"\n%s\n' "$2" "$calls" "$3" > "$tmp/$1/$2"
    chmod +x "$tmp/$1/$2"
}
fake apt apt-get 'exit 0'
fake apt dpkg-query 'exit 1'
fake sudo sudo 'exec "$@"'
fake swift swift 'exit 0'
fake mpi mpirun '[ "$1" != --version ] || echo "mpirun (Open MPI) 4.1.4"'
fake hydra mpirun '[ "$1" != --version ] || printf "HYDRA build details:\n    Version: 4.0.2\n"'
fake badldd ldd 'printf "\tlinux-vdso.so.1 (0x0)\n\tlibmpi.so.40 => not found\n"'
fake ompi mpicc 'case "$1" in --showme:compile) echo "-I/opt/ompi/include -pthread" ;;
    --showme:link) echo "-pthread -L/opt/ompi/lib -Wl,-rpath -Wl,/opt/ompi/lib -lmpi" ;; *) exit 1 ;; esac'
fake mpich mpicc 'case "$1" in -show) echo "gcc -I/opt/mpich/include -L/opt/mpich/lib -Wl,-rpath -Wl,/opt/mpich/lib -lmpi" ;;
    *) echo "gcc: error: unrecognized option $1" >&2; exit 1 ;; esac'
fake debmpich mpicc "case \"\$1\" in -show) echo \"gcc -I/usr/include/x86_64-linux-gnu/mpich -L$tmp/mpichlib -lmpich\" ;;
    *) exit 1 ;; esac"
mkdir -p "$tmp/mpichlib" && : > "$tmp/mpichlib/libmpich.so"

# --- an unpacked package (bin/plexus, no Package.swift) and configs ----------------------------
pkg="$tmp/pkg"
mkdir -p "$pkg/bin" "$pkg/launch" "$tmp/data" "$tmp/src/launch"
printf '#!/bin/sh\nexit 0\n' > "$pkg/bin/plexus" && chmod +x "$pkg/bin/plexus"
cp "$root/launch/train" "$root/launch/common.sh" "$pkg/launch/"
cp "$root/launch/train" "$root/launch/common.sh" "$tmp/src/launch/" && touch "$tmp/src/Package.swift"
for f in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
    : > "$tmp/data/$f.gz"
done
printf 'data: {format: idx, train: %s/train, test: %s/t10k}\n' "$tmp/nodata" "$tmp/nodata" > "$tmp/nodata.yaml"
printf 'data: {format: idx, train: %s/train, test: %s/t10k}\n' "$tmp/data" "$tmp/data" > "$tmp/data.yaml"

run() {  # DATA_DIR TREE PATH_EXTRAS ARGS...: launch/train of TREE in the clean environment
    local data=$1 tree=$2 extra=$3; shift 3
    : > "$calls"
    local st=0
    env -i HOME="$tmp" PATH="$extra$tmp/bin" PLEXUS_FASHION_MNIST="$data" PLEXUS_RANKS="${PLEXUS_RANKS:-2}" \
        bash "$tree/launch/train" "$@" >"$tmp/out" 2>"$tmp/err" || st=$?
    echo "$st"
}
lines() { grep -v '^plexus: installing ' "$tmp/err" | grep -c . || true; }  # (apt's own line aside)
expect_missing() {  # CASE WHAT...: exit 2, exactly one "plexus: missing WHAT" line per WHAT, nothing else
    local case=$1 what; shift
    for what in "$@"; do
        grep -q "^plexus: missing $what" "$tmp/err" || fail "$case: no 'missing $what' line: $(tr '\n' '|' < "$tmp/err")"
    done
    [ "$(lines)" = "$#" ] || fail "$case: expected $# stderr lines, got: $(tr '\n' '|' < "$tmp/err")"
}

# 1. Nothing there, no apt: one line per missing thing, exit 2, nothing run.
st=$(run "$tmp/nodata" "$pkg" "" "$tmp/nodata.yaml")
[ "$st" = 2 ] || fail "no mpirun, no data, no apt: exit $st, expected 2"
expect_missing "no apt" "mpirun (not on PATH): load your MPI" "Fashion-MNIST in $tmp/nodata: "
[ ! -s "$calls" ] || fail "no apt: something was called: $(cat "$calls")"

# 2. sudo but no apt-get: still never asks sudo for anything.
st=$(run "$tmp/nodata" "$pkg" "$tmp/sudo:" "$tmp/nodata.yaml")
[ "$st" = 2 ] || fail "sudo without apt: exit $st"
[ ! -s "$calls" ] || fail "sudo without apt: called $(cat "$calls")"

# 3a. A package never installs, even where apt-get and sudo are there.
st=$(run "$tmp/nodata" "$pkg" "$tmp/apt:$tmp/sudo:" "$tmp/nodata.yaml")
[ "$st" = 2 ] || fail "package with apt: exit $st, expected 2"
[ ! -s "$calls" ] || fail "a package called apt or sudo: $(tr '\n' '|' < "$calls")"
expect_missing "package with apt" "mpirun" "Fashion-MNIST"

# 3b. A source checkout with apt-get (through sudo when not root): one update, one install of
#     everything missing; what is still missing afterwards (the fake installs nothing) is reported
#     the same way, and nothing is built.
st=$(run "$tmp/nodata" "$tmp/src" "$tmp/apt:$tmp/sudo:$tmp/swift:" "$tmp/nodata.yaml")
[ "$st" = 2 ] || fail "source tree with apt that installs nothing: exit $st"
install="dataset-fashion-mnist libopenmpi-dev openmpi-bin pkg-config( zlib1g-dev)?"  # (zlib.h may be there)
grep -qE "^apt-get .*install .*$install$" "$calls" || fail "apt-get install not called as expected: $(tr '\n' '|' < "$calls")"
[ "$(grep -c '^apt-get .*install' "$calls")" = 1 ] || fail "apt-get install called more than once: $(tr '\n' '|' < "$calls")"
if [ "$(id -u)" = 0 ]; then
    if grep -q '^sudo' "$calls"; then fail "root used sudo"; fi
else
    grep -q '^sudo .*apt-get .*install' "$calls" || fail "non-root did not go through sudo: $(tr '\n' '|' < "$calls")"
fi
if grep -q '^swift' "$calls"; then fail "swift ran although requirements are missing"; fi
grep -qE "^plexus: installing $install$" "$tmp/err" || fail "no 'installing' line: $(tr '\n' '|' < "$tmp/err")"
for what in "MPI headers" mpirun Fashion-MNIST; do
    grep -q "^plexus: missing $what" "$tmp/err" || fail "source tree with apt: no 'missing $what': $(tr '\n' '|' < "$tmp/err")"
done

# 4. Everything there: mpirun runs the package's bin/plexus; nothing is built or installed.
st=$(run "$tmp/data" "$pkg" "$tmp/mpi:$tmp/apt:" "$tmp/data.yaml" --run-dir "$tmp/run")
[ "$st" = 0 ] || fail "package with mpirun and data: exit $st: $(tr '\n' '|' < "$tmp/err")"
grep -q "^mpirun -np 2 .*$pkg/bin/plexus train $tmp/data.yaml --progress plain --run-dir $tmp/run$" "$calls" \
    || fail "mpirun not called on bin/plexus: $(tr '\n' '|' < "$calls")"
[ "$(grep -vc '^mpirun --version$' "$calls")" = 1 ] || fail "more than mpirun was called: $(tr '\n' '|' < "$calls")"

# 4b. An mpirun that is not OpenMPI's (MPICH's Hydra) gets none of OpenMPI's --map-by/--oversubscribe.
st=$(PLEXUS_RANKS=1 run "$tmp/data" "$pkg" "$tmp/hydra:" "$tmp/data.yaml")
[ "$st" = 0 ] || fail "package with Hydra's mpirun: exit $st: $(tr '\n' '|' < "$tmp/err")"
grep -q "^mpirun -np 1 $pkg/bin/plexus train " "$calls" || fail "Hydra's mpirun got OpenMPI options: $(tr '\n' '|' < "$calls")"

# 5. --set data.train/test elsewhere: the default data set is not required.
st=$(run "$tmp/nodata" "$pkg" "$tmp/mpi:" "$tmp/nodata.yaml" --set data.train=/x/train --set data.test=/x/t10k)
[ "$st" = 0 ] || fail "data overridden with --set: exit $st: $(tr '\n' '|' < "$tmp/err")"

# 6. bin/plexus cannot find libmpi.so.40 (ldd says so): one line naming it.
st=$(run "$tmp/data" "$pkg" "$tmp/badldd:$tmp/mpi:" "$tmp/data.yaml")
[ "$st" = 2 ] || fail "libmpi not found: exit $st"
expect_missing "libmpi not found" "libmpi.so.40 (OpenMPI 3.0 to 5.x) for bin/plexus: load OpenMPI"

# 7. A source tree without MPI headers: the build requirement is reported, nothing is built.
st=$(run "$tmp/data" "$tmp/src" "$tmp/mpi:" "$tmp/data.yaml")
[ "$st" = 2 ] || fail "source tree without MPI headers: exit $st"
grep -q "^plexus: missing MPI headers (no pkg-config ompi-c or mpich, no mpicc): load your MPI" "$tmp/err" \
    || fail "no 'missing MPI headers' line: $(tr '\n' '|' < "$tmp/err")"
[ ! -s "$calls" ] || fail "source tree without MPI: called $(cat "$calls")"

# 8. mpi_build_flags from OpenMPI's and from MPICH's mpicc (no pkg-config on this PATH).
flags() {  # PATH_EXTRA: mpi_build_flags' output on one line, or "status N" (common.sh of $tmp/src)
    env -i PATH="$1$tmp/bin" bash -c 'source "$1"; f="$(mpi_build_flags)" || exit; echo $f' \
        flags "$tmp/src/launch/common.sh" || echo "status $?"
}
[ "$(flags "$tmp/ompi:")" = "-Xcc -I/opt/ompi/include -Xlinker -L/opt/ompi/lib" ] || fail "OpenMPI mpicc flags: '$(flags "$tmp/ompi:")'"
[ "$(flags "$tmp/mpich:")" = "-Xcc -I/opt/mpich/include -Xlinker -L/opt/mpich/lib" ] || fail "MPICH mpicc flags: '$(flags "$tmp/mpich:")'"
# Debian's MPICH has libmpich.so and no libmpi.so: a libmpi.so symlink in .build-mpi-link.
[ "$(flags "$tmp/debmpich:")" = "-Xcc -I/usr/include/x86_64-linux-gnu/mpich -Xlinker -L$tmp/mpichlib -Xlinker -L$tmp/src/.build-mpi-link" ] \
    || fail "Debian MPICH mpicc flags: '$(flags "$tmp/debmpich:")'"
[ "$(readlink "$tmp/src/.build-mpi-link/libmpi.so")" = "$tmp/mpichlib/libmpich.so" ] || fail "no libmpi.so link to libmpich.so"
[ "$(flags "")" = "status 1" ] || fail "no MPI at all should give status 1, got '$(flags "")'"

echo "PASS $name"
