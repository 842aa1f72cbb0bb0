# Shared helpers for the Plexus launch scripts and shell tests. Source it, don't run it:
#
#   source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
#
# Functions:
#   plexus_root            absolute path of the repository (parent of launch/)
#   ensure_packages [PKG]  apt-get install whatever of PLEXUS_PACKAGES (+ PKG...) is missing
#   ensure_build           swift build -c release --product plexus (incremental)
#   mpirun_root_flags      export OpenMPI's run-as-root permission, only when running as root
#   cpu_count              number of usable cores (nproc)
#   mpirun_defaults NP [T] print, one per line, the mpirun flags launch/train uses for NP local ranks
#   mpirun_stderr_filter   drop OpenMPI's redundant "a rank exited non-zero" banners from a stream
#   run_mpirun ARGS...     mpirun ARGS with the root permission and the stderr filter; returns status
#   explain_mpirun_status  one-line stderr note for an mpirun exit status like 124 or 128+signal

# Packages every Plexus run needs: MPI (headers + runtime), zlib headers (CZlib), pkg-config
# (SwiftPM resolves ompi-c and zlib through it) and the default data set.
PLEXUS_PACKAGES=(libopenmpi-dev openmpi-bin dataset-fashion-mnist zlib1g-dev pkg-config)

plexus_root() {
    (cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
}

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

# package_installed PKG: true when dpkg reports PKG fully installed.
package_installed() {
    [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}

# ensure_packages [EXTRA...]: install the missing ones of PLEXUS_PACKAGES and EXTRA. Fast (no
# apt-get at all) when everything is present; runs apt-get update at most once per shell.
ensure_packages() {
    local pkg missing=()
    for pkg in "${PLEXUS_PACKAGES[@]}" "$@"; do
        package_installed "$pkg" || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "plexus: missing packages (${missing[*]}) and no apt-get to install them" >&2
        return 1
    fi
    echo "plexus: installing ${missing[*]}" >&2
    if [ "$_plexus_apt_updated" = 0 ]; then
        _as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 || return 1
        _plexus_apt_updated=1
    fi
    _as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
        "${missing[@]}" </dev/null >&2
}

# ensure_build: build the release binary; incremental, so cheap when nothing changed.
# Build output goes to stderr so callers can keep stdout clean.
ensure_build() {
    (cd "$(plexus_root)" && swift build -c release --product plexus >&2)
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
# Nothing is added when $PLEXUS_MPIRUN_ARGS already chooses hosts, mapping or binding.
mpirun_defaults() {
    local np=$1 threads=${2:-} cores
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
# rank per core on one node (README, "Ranks × threads"). Hosts come from a --hostfile/--machinefile in
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
