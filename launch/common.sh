# shellcheck shell=bash
# Shared helpers for the Plexus launch scripts and shell tests. Source it, don't run it:
#
#   source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
#
# Functions:
#   plexus_root            absolute path of the repository or unpacked package (parent of launch/)
#   plexus_installed       true in an unpacked package (bin/plexus, no Package.swift): nothing to build
#   plexus_default_binary  $PLEXUS_BINARY, else bin/plexus (package) or .build/release/plexus (source)
#   ensure_requirements W.. check what W (build, run, data [CONFIG [ARGS...]]) needs; install what is
#                          missing with apt where that is possible, else one stderr line per missing
#                          thing and status 2
#   ensure_packages PKG... apt-get install those of PKG that dpkg does not list (test tooling)
#   ensure_hdf5_runtime    libhdf5 for the HDF5 tests: installed with apt where it is missing (test tooling)
#   mpi_build_flags        swift build flags that find MPI's headers and library (empty with ompi-c)
#   ensure_build           swift build -c release --product plexus (incremental)
#   portable_target_cpu    the CPU level of portable packages (one place: launch/package, tests)
#   mpirun_root_flags      export OpenMPI's run-as-root permission, only when running as root
#   cpu_count              number of usable cores (nproc)
#   mpirun_defaults NP [T] print, one per line, the mpirun flags launch/train uses for NP local ranks
#   mpirun_stderr_filter   drop OpenMPI's redundant "a rank exited non-zero" banners from a stream
#   run_dir_argument ARGS  the --run-dir value among plexus train's arguments
#   run_files BINARY ARGS  fill the array run_file (NAME -> path) from `plexus files ARGS`: the run directory's
#                          file names come from the binary, never from these scripts
#   run_mpirun ARGS...     mpirun ARGS with the root permission and the stderr filter; returns status
#   explain_mpirun_status  one-line stderr note for an mpirun exit status like 124 or 128+signal

# Where Debian's dataset-fashion-mnist puts the default config's data (a variable for the tests).
PLEXUS_FASHION_MNIST="${PLEXUS_FASHION_MNIST:-/usr/share/datasets/fashion-mnist}"

plexus_root() {
    (cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
}

plexus_installed() {
    local root
    root="$(plexus_root)"
    [ -x "$root/bin/plexus" ] && [ ! -f "$root/Package.swift" ]
}

plexus_default_binary() {
    if [ -n "${PLEXUS_BINARY:-}" ]; then
        echo "$PLEXUS_BINARY"
    elif plexus_installed; then
        echo "$(plexus_root)/bin/plexus"
    else
        echo "$(plexus_root)/.build/release/plexus"
    fi
}

# The x86-64 level portable packages are built for (PLEXUS_TARGET_CPU of launch/package): AVX2 +
# FMA, every x86-64 server CPU since 2013-2015 (Intel Haswell, AMD Zen). The one place to change it.
portable_target_cpu() {
    case "$(uname -m)" in
        x86_64) echo "${PLEXUS_PORTABLE_CPU:-haswell}" ;;
        *) if [ -n "${PLEXUS_PORTABLE_CPU:-}" ]; then echo "$PLEXUS_PORTABLE_CPU"; else
               echo "plexus: no portable CPU level known for $(uname -m); set PLEXUS_PORTABLE_CPU (a clang -mcpu name)" >&2
               return 2
           fi ;;
    esac
}

# The newest glibc symbol version a package's bin/plexus may need: 2.34 (RHEL 9 and its rebuilds,
# Ubuntu 22.04 has 2.35, Debian 12 2.36). launch/package warns above it; a test checks it.
# shellcheck disable=SC2034  # read by launch/package and Tests/scripts/portable_package.sh
PLEXUS_PORTABLE_GLIBC=2.34

# Swift is installed under /opt/swift on the reference machine; make it findable in
# non-login shells (CI) without clobbering a swift already on PATH.
if ! command -v swift >/dev/null 2>&1 && [ -x /opt/swift/usr/bin/swift ]; then
    export PATH="/opt/swift/usr/bin:$PATH"
fi

_plexus_apt_updated=0

# _as_root CMD...: run CMD as root (directly, or through sudo when available).
_as_root() {
    if [ "$(id -u)" = 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo -n "$@" 2>/dev/null || sudo "$@"
    else
        echo "plexus: need root (or sudo) to run: $*" >&2
        return 1
    fi
}

# _can_apt: apt-get exists and we can run it as root (root, or sudo is installed).
_can_apt() {
    command -v apt-get >/dev/null 2>&1 && command -v dpkg-query >/dev/null 2>&1 &&
        { [ "$(id -u)" = 0 ] || command -v sudo >/dev/null 2>&1; }
}

# _apt_install PKG...: one apt-get install (after one apt-get update per shell).
_apt_install() {
    echo "plexus: installing $*" >&2
    if [ "$_plexus_apt_updated" = 0 ]; then
        _as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 || return 1
        _plexus_apt_updated=1
    fi
    _as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
        "$@" </dev/null >&2
}

# ensure_packages PKG...: install those of PKG that dpkg does not list as installed. For test
# tooling on Debian (slurm-wlm, debootstrap); Plexus's own needs go through ensure_requirements.
ensure_packages() {
    local pkg missing=()
    for pkg in "$@"; do
        [ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null)" = "install ok installed" ] || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if ! _can_apt; then
        echo "plexus: cannot install ${missing[*]}: no apt-get, or not root and no sudo" >&2
        return 1
    fi
    _apt_install "${missing[@]}"
}

# ensure_hdf5_runtime: make libhdf5 (HDF5 1.10 or later, which plexus loads at run time to read HDF5 files)
# loadable, installing Debian's or Ubuntu's package when it is missing, this is root and apt can. Status 1 when it is still
# missing (the HDF5 tests then skip, saying so).
ensure_hdf5_runtime() {
    local found='libhdf5(_serial)?\.so\.(103|200|310|320)'
    ldconfig -p 2>/dev/null | grep -qE "$found" && return 0
    [ "$(id -u)" = 0 ] && _can_apt || return 1
    local pkg
    for pkg in libhdf5-103-1 libhdf5-103-1t64 libhdf5-310; do
        if apt-cache show "$pkg" >/dev/null 2>&1; then ensure_packages "$pkg" >&2 || true; break; fi
    done
    ldconfig -p 2>/dev/null | grep -qE "$found"
}

# mpi_build_flags: print, one per line, the extra `swift build` flags that make MPI's headers and
# library findable. Nothing when pkg-config knows ompi-c (SwiftPM reads it for the CMPI target).
# Otherwise from pkg-config's mpich, OpenMPI's `mpicc --showme:*`, or an MPICH-family
# `mpicc -show` (MPICH, Intel MPI, MVAPICH). Status 1 when none of them is there.
# The CMPI module links -lmpi; where the MPI library has another name (Debian's MPICH: libmpich.so)
# a directory of our own, .build-mpi-link, holds a libmpi.so symlink to it (the binary still
# records the library's real soname, e.g. libmpich.so.12).
mpi_build_flags() {
    local cflags="" ldflags="" tok dirs=() libs=()
    if command -v pkg-config >/dev/null 2>&1 && pkg-config --exists ompi-c 2>/dev/null; then
        return 0
    elif command -v pkg-config >/dev/null 2>&1 && pkg-config --exists mpich 2>/dev/null; then
        cflags="$(pkg-config --cflags-only-I mpich)" ldflags="$(pkg-config --libs mpich)"
    elif command -v mpicc >/dev/null 2>&1 && cflags="$(mpicc --showme:compile 2>/dev/null)"; then
        ldflags="$(mpicc --showme:link 2>/dev/null)"
    elif command -v mpicc >/dev/null 2>&1 && cflags="$(mpicc -show 2>/dev/null)"; then
        ldflags="$cflags"
    else
        return 1
    fi
    # shellcheck disable=SC2086  # compiler flags are word lists
    for tok in $cflags; do case "$tok" in -I?*) printf '%s\n' -Xcc "$tok" ;; esac; done
    # shellcheck disable=SC2086
    for tok in $ldflags; do
        case "$tok" in
            -L?*) printf '%s\n' -Xlinker "$tok"; dirs+=("${tok#-L}") ;;
            -l?*) libs+=("${tok#-l}") ;;
        esac
    done
    case " ${libs[*]} " in
        *" mpi "*|"  ") return 0 ;;
    esac
    local lib dir link
    link="$(plexus_root)/.build-mpi-link"
    for lib in "${libs[@]}"; do
        case "$lib" in mpi*) ;; *) continue ;; esac
        for dir in "${dirs[@]}" /usr/lib64 /usr/lib/x86_64-linux-gnu /usr/lib/aarch64-linux-gnu /usr/lib; do
            if [ -e "$dir/lib$lib.so" ]; then
                mkdir -p "$link" && ln -sfn "$dir/lib$lib.so" "$link/libmpi.so" || return 1
                printf '%s\n' -Xlinker "-L$link"
                return 0
            fi
        done
    done
    return 0
}

# mpirun_is_openmpi: true when the mpirun on PATH is OpenMPI's (its --oversubscribe and --map-by
# options are what mpirun_defaults adds; MPICH's Hydra has neither).
mpirun_is_openmpi() {
    [ -n "${_plexus_mpirun_openmpi:-}" ] || {
        if mpirun --version 2>/dev/null | grep -q 'Open MPI'; then _plexus_mpirun_openmpi=1; else _plexus_mpirun_openmpi=0; fi
    }
    [ "$_plexus_mpirun_openmpi" = 1 ]
}

# uses_default_data CONFIG [ARGS...]: true when CONFIG reads the data set from
# $PLEXUS_FASHION_MNIST and ARGS do not point data.train or data.test elsewhere.
uses_default_data() {
    local config=$1 arg; shift
    [ -f "$config" ] && grep -q "$PLEXUS_FASHION_MNIST" "$config" || return 1
    for arg in "$@"; do
        case "$arg" in data.train=*|data.test=*|--set=data.train=*|--set=data.test=*) return 1 ;; esac
    done
    return 0
}

# _check WHAT...: fill _missing_apt (apt packages that would provide the missing things; "-" when
# none) and _missing_why (one line each: what is missing and what to provide) for
#   build                    swift, MPI's headers (ompi-c, mpich or an mpicc), zlib's header
#   run                      mpirun on PATH; for a package also the libraries bin/plexus needs
#   data [CONFIG [ARGS...]]  the Fashion-MNIST IDX files, when CONFIG (default: the default config)
#                            reads them from $PLEXUS_FASHION_MNIST (last, it takes the rest)
_missing_apt=()
_missing_why=()
_need() {  # "APT_PACKAGE..."|- LINE
    _missing_apt+=("$1")
    _missing_why+=("$2")
}
_check() {
    _missing_apt=() _missing_why=()
    local root what lib f
    root="$(plexus_root)"
    while [ $# -gt 0 ]; do
        what=$1; shift
        case "$what" in
        build)
            command -v swift >/dev/null 2>&1 ||
                _need - "swift (not on PATH): install a Swift 6 toolchain (swift.org/install), or use a prebuilt package (launch/package; docs/clusters.md)"
            # (pkg-config with it: on Debian SwiftPM reads ompi-c.pc only through the pkg-config program)
            mpi_build_flags >/dev/null ||
                _need "libopenmpi-dev pkg-config" "MPI headers (no pkg-config ompi-c or mpich, no mpicc): load your MPI (e.g. module load openmpi) or install OpenMPI's development files (libopenmpi-dev, openmpi-devel)"
            if [ ! -f /usr/include/zlib.h ] && ! { command -v pkg-config >/dev/null 2>&1 && pkg-config --exists zlib 2>/dev/null; }; then
                _need zlib1g-dev "zlib.h: install zlib's development files (zlib1g-dev, zlib-devel) or load a zlib module"
            fi
            ;;
        run)
            command -v mpirun >/dev/null 2>&1 ||
                _need openmpi-bin "mpirun (not on PATH): load your MPI (e.g. module load openmpi) or install OpenMPI (openmpi-bin, openmpi)"
            if plexus_installed && command -v ldd >/dev/null 2>&1; then
                for lib in $(ldd "$root/bin/plexus" 2>/dev/null | awk '/=> not found/ {print $1}'); do
                    case "$lib" in
                    libmpi.so.40) _need openmpi-bin "libmpi.so.40 (OpenMPI 3.0 to 5.x) for bin/plexus: load OpenMPI (e.g. module load openmpi) or add its lib directory to LD_LIBRARY_PATH; for MPICH, Intel MPI or Cray build from source (docs/clusters.md)" ;;
                    *) _need - "$lib for bin/plexus: install it or add its directory to LD_LIBRARY_PATH" ;;
                    esac
                done
            fi
            ;;
        data)
            local config="${1:-$root/Configs/fashion-mnist.yaml}"
            [ $# -gt 0 ] && shift
            if uses_default_data "$config" "$@"; then
                for f in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
                    if [ ! -f "$PLEXUS_FASHION_MNIST/$f.gz" ] && [ ! -f "$PLEXUS_FASHION_MNIST/$f" ]; then
                        _need dataset-fashion-mnist "Fashion-MNIST in $PLEXUS_FASHION_MNIST: install dataset-fashion-mnist (Debian, Ubuntu), or put the four IDX files (github.com/zalandoresearch/fashion-mnist) in DIR and add --set data.train=DIR/train --set data.test=DIR/t10k"
                        break
                    fi
                done
            fi
            set --
            ;;
        *) echo "plexus: _check: unknown requirement '$what'" >&2; return 1 ;;
        esac
    done
}

# ensure_requirements WHAT...: check (see _check); when something is missing, this is a source
# checkout and apt-get can provide all of it, install it and check again. A package (cluster
# nodes: modules, no root, often a sudo that asks for a password) never installs. Whatever is
# still missing is printed, one "plexus: missing ..." line each on stderr, and the status is 2.
ensure_requirements() {
    _check "$@" || return 1
    [ ${#_missing_why[@]} -eq 0 ] && return 0
    local pkg packages=() installable=1
    for pkg in "${_missing_apt[@]}"; do
        # shellcheck disable=SC2206  # a space-separated package list
        if [ "$pkg" = - ]; then installable=0; else packages+=($pkg); fi
    done
    if [ "$installable" = 1 ] && ! plexus_installed && _can_apt; then
        # shellcheck disable=SC2046  # unique package names
        _apt_install $(printf '%s\n' "${packages[@]}" | sort -u) || true
        _check "$@" || return 1
        [ ${#_missing_why[@]} -eq 0 ] && return 0
    fi
    local line
    for line in "${_missing_why[@]}"; do echo "plexus: missing $line" >&2; done
    return 2
}

# ensure_build: build the release binary; incremental, so cheap when nothing changed. Adds
# mpi_build_flags (nothing where pkg-config knows ompi-c). Build output goes to stderr so callers
# can keep stdout clean.
ensure_build() {
    local flags=()
    mapfile -t flags < <(mpi_build_flags)
    (cd "$(plexus_root)" && swift build -c release --product plexus "${flags[@]}" >&2)
}

# mpirun_root_flags: OpenMPI refuses to run as root unless both variables are set. Exported (not
# passed as flags) so that they also reach nested mpiruns, e.g. XCTest suites that launch the
# binary themselves. A no-op for ordinary users.
mpirun_root_flags() {
    if [ "$(id -u)" = 0 ]; then
        export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
    fi
}

cpu_count() {
    nproc
}

# mpirun_defaults NP [THREADS]: the flags launch/train passes before $PLEXUS_MPIRUN_ARGS, one per
# line, for NP ranks on this machine (THREADS = compute threads per rank, if known).
#   --oversubscribe        only when NP exceeds the cores here; without it mpirun refuses to start.
#   --map-by slot:PE=K     when NP < cores: give each rank K = cores/NP cores of its own. mpirun's
#                          default (NP <= 2) binds every rank to ONE core, which would squeeze a
#                          multi-threaded rank onto a single core.
# Nothing is added when $PLEXUS_MPIRUN_ARGS already chooses hosts, mapping or binding, or when
# mpirun is not OpenMPI's (MPICH's Hydra neither binds ranks by default nor limits them to cores).
mpirun_defaults() {
    local np=$1 threads=${2:-} cores
    mpirun_is_openmpi || return 0
    cores=$(cpu_count)
    case " ${PLEXUS_MPIRUN_ARGS:-} " in
        *" --hostfile "*|*" -hostfile "*|*" --machinefile "*|*" -machinefile "*|*" -H "*|*" --host "*|*" -host "*|*" --map-by "*|*" -map-by "*|*" --bind-to "*|*" -bind-to "*|*" --rankfile "*)
            return 0 ;;
    esac
    if [ "$np" -gt "$cores" ]; then
        echo "--oversubscribe"
    elif [ "$np" -lt "$cores" ]; then
        local pe=$((cores / np))
        if [ -n "$threads" ] && [ "$threads" -lt "$pe" ]; then pe=$threads; fi
        if [ "$pe" -gt 1 ]; then
            echo "--map-by"
            echo "slot:PE=$pe"
        fi
    fi
}

# mpirun_stderr_filter: copies stdin to stdout line by line, dropping OpenMPI 4.1's multi-line
# banners that only repeat that a rank failed, after the rank already said why in one line:
#   "Primary job  terminated normally, but 1 process returned a non-zero exit code..."
#   "mpirun detected that one or more processes exited with non-zero status..."
#   "MPI_ABORT was invoked on rank R in communicator MPI_COMM_WORLD with errorcode 2."
# and the lines "[host:pid] ORTE_ERROR_LOG: <Data unpack would read past end of buffer | Out of
# resource | ...> in file ../../../orte/util/show_help.c at line 507" that OpenMPI 4.1 prints
# after about 3 in 10 MPI_Aborts here (a race in its help-message forwarding; harmless).
# Every other banner (rank killed by a signal, executable not found, not enough slots, MPI_Abort
# with other codes) passes through. `mpirun -q` would drop the two banners too, but it also hides
# those real diagnostics (measured: `mpirun -q -np 3` on 2 cores exits 1 silently).
mpirun_stderr_filter() {
    awk '
        function flush_block(   i, drop) {
            drop = (blk ~ /Primary job +terminated normally, but/ ||
                    blk ~ /mpirun detected that one or more processes exited with non-zero status/ ||
                    blk ~ /MPI_ABORT was invoked on rank [0-9]+ in communicator [A-Z_]+[^0-9]*errorcode 2\./)
            if (!drop) for (i = 1; i <= n; i++) print lines[i]
            fflush(); n = 0; blk = ""; inblk = 0
        }
        /^-+$/ && length($0) >= 60 {
            if (inblk) { lines[++n] = $0; flush_block() }
            else { inblk = 1; n = 1; lines[1] = $0; blk = "" }
            next
        }
        /ORTE_ERROR_LOG: .* in file .*orte\/util\/show_help\.c at line/ { next }
        { if (inblk) { lines[++n] = $0; blk = blk " " $0 } else { print; fflush() } }
        END { if (inblk) for (i = 1; i <= n; i++) print lines[i] }
    '
}

# explain_mpirun_status STATUS: one stderr line for statuses whose banner the filter removed or
# that need a hint. 0 (success) and 2 (user error, already reported by the rank) need no comment.
explain_mpirun_status() {
    local st=$1
    if [ "$st" -gt 128 ] && [ "$st" -lt 160 ]; then
        local sig
        sig=$(kill -l $((st - 128)) 2>/dev/null || echo $((st - 128)))
        echo "plexus: a rank was killed by signal SIG$sig (exit status $st)" >&2
    elif [ "$st" = 124 ]; then
        echo "plexus: timed out (exit status 124)" >&2
    fi
}

# run_dir_argument ARGS...: the value of --run-dir DIR / --run-dir=DIR among plexus train's ARGS, if any.
run_dir_argument() {
    while [ $# -gt 0 ]; do
        case "$1" in
            --run-dir) echo "${2:-}"; return 0 ;;
            --run-dir=*) echo "${1#--run-dir=}"; return 0 ;;
        esac
        shift
    done
}

# run_files BINARY ARGS...: `BINARY files ARGS` (a run directory, or --default-run-dir CONFIG / --run-name NAME for
# the default one) read into the associative array run_file: run_file[run_dir], run_file[lock],
# run_file[checkpoint_pattern], ... (`plexus files RUN_DIR` lists them). Returns the binary's status on failure.
# shellcheck disable=SC2034  # read by the scripts that source this file
declare -gA run_file=()
run_files() {
    local binary=$1 output line st=0
    shift
    output=$("$binary" files "$@") || st=$?
    [ "$st" = 0 ] || return "$st"
    run_file=()
    while IFS= read -r line; do
        # shellcheck disable=SC2034
        [ -n "$line" ] && run_file[${line%%=*}]=${line#*=}
    done <<<"$output"
}

# run_mpirun ARGS...: mpirun ARGS with its stderr passed through mpirun_stderr_filter (unless
# PLEXUS_MPIRUN_RAW=1); stdout untouched. Returns mpirun's exit status.
run_mpirun() {
    mpirun_root_flags
    if [ "${PLEXUS_MPIRUN_RAW:-0}" = 1 ]; then
        mpirun "$@"
        return
    fi
    local st=0
    # (`|| true` keeps errexit callers alive; the status is taken from PIPESTATUS first.)
    { mpirun "$@" 2>&1 1>&3 3>&- | mpirun_stderr_filter >&2; st=${PIPESTATUS[0]}; } 3>&1 || true
    return "$st"
}

# default_layout: the mpirun flags, one per line, for launch/train's layout when PLEXUS_RANKS is not set:
# one rank per NUMA domain of every node (on most machines one rank per node), bound to that domain's cores,
# whose compute threads (training.threads auto = the affinity mask) use all of them. Measured faster than a
# rank per core on one node (docs/clusters.md, "Ranks × threads"). Hosts come from a --hostfile/--machinefile in
# PLEXUS_MPIRUN_ARGS (each assumed to have this machine's NUMA domains); mapping flags there win.
default_layout() {
    local domains hosts=1 previous="" word file=""
    domains=$(find /sys/devices/system/node -maxdepth 1 -name 'node[0-9]*' 2>/dev/null | wc -l)
    [ "$domains" -ge 1 ] || domains=1
    for word in ${PLEXUS_MPIRUN_ARGS:-}; do
        case "$previous" in --hostfile|-hostfile|--machinefile|-machinefile) file=$word ;; esac
        previous=$word
    done
    if [ -n "$file" ] && [ -r "$file" ]; then
        hosts=$(grep -cvE '^[[:space:]]*(#|$)' "$file")
    fi
    printf '%s\n' -np $((hosts * domains))
    case " ${PLEXUS_MPIRUN_ARGS:-} " in
        *" --map-by "*|*" -map-by "*|*" --bind-to "*|*" -bind-to "*|*" --rankfile "*) return 0 ;;
    esac
    printf '%s\n' --map-by ppr:1:numa --bind-to numa
}
