#!/usr/bin/env bash
# A data set larger than the job's memory: 2 ranks train one epoch of the benchmark net (784-512-256-10, global
# batch 256, 1 thread each, shuffle: blocks) on 500k rows × 784 float32 (1.6 GB) in a memory cgroup of LIMIT MiB
# for the whole job (default 768; page cache dropped first), from the .npy pair, the uncompressed .npz, HDF5 and
# Parquet copies bench/make_big_data.py writes. Prints per format: exit status (137: killed), samples/s and each
# rank's peak_private_bytes and peak_rss_bytes (summary.json). Then, alternated, the .npz with no limit and the file
# in page cache, again under the limit, and the PyTorch peer (DataLoader over the memory-mapped .npy with a
# DistributedSampler, 2 ranks under mpirun, DDP over gloo; PyTorch's CPU-only build, bench/requirements-torch-cpu.txt)
# under the limit; last, the .npz with shuffle: rows.
# Usage (as root, with the cgroup v1 memory controller): bench/big_data.sh [PLEXUS_BINARY] [DIR] [LIMIT_MIB] [FORMATS]
# Environment: ROUNDS=N how many times the alternated runs repeat (default 2; 0: only the runs per format);
# ROWS=N rows of the files bench/make_big_data.py writes (default 500000, 1.6 GB; 2550000 is 8 GB);
# PEER_SECONDS=S the PyTorch peer's epoch stops after S seconds (default 600) and reports the batches it trained.
# DIR (default runs/big-data) gets the files first when they are missing (about 6.5 GB of disk at 500k rows); a
# DIR written with other ROWS is not rewritten, so give each size its own DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
plexus=$(realpath "${1:-.build/release/plexus}")
directory=${2:-runs/big-data}
limit_mib=${3:-768}
formats=${4:-npy npz hdf5 parquet}
[ "$(id -u)" = 0 ] && [ -d /sys/fs/cgroup/memory ] || { echo "bench/big_data.sh: needs root and the cgroup v1 memory controller" >&2; exit 2; }
mkdir -p "$directory"
declare -A file_of=([npy]=big_x.npy [npz]=big.npz [hdf5]=big.h5 [parquet]=big.parquet)
compared=$([ "${ROUNDS:-2}" = 0 ] || echo npz npy)
missing=$(for format in $formats $compared; do [ -f "$directory/${file_of[$format]}" ] || echo "$format"; done | sort -u | paste -sd,)
[ -z "$missing" ] || bench/python bench/make_big_data.py "$directory" --rows "${ROWS:-500000}" --formats "$missing" >&2
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
group=/sys/fs/cgroup/memory/plexus-big-data-$$
tmp=$(mktemp -d); trap 'rmdir "$group" 2>/dev/null || true; rm -rf "$tmp"' EXIT
mkdir "$group"
bench/machine

location() {  # format
    case $1 in
        npy) echo "{x: $directory/big_x.npy, y: $directory/big_y.npy}" ;;
        npz) echo "$directory/big.npz" ;;
        hdf5) echo "$directory/big.h5" ;;
        parquet) echo "$directory/big.parquet" ;;
    esac
}
summary_field() {  # run directory, field
    tr -d ' \n' <"$1/summary.json" | sed -nE "s/.*\"$2\":(\[[0-9,]*\]|[0-9.e+]+).*/\1/p"
}
in_group() {  # limit in MiB or "none", command...
    local limit=$1; shift
    sync; echo 3 >/proc/sys/vm/drop_caches
    if [ "$limit" = none ]; then "$@"; return; fi
    echo $((limit * 1024 * 1024)) >"$group/memory.limit_in_bytes"
    bash -c 'echo $$ >"$1/cgroup.procs" && shift && exec "$@"' _ "$group" "$@"
}
train() {  # label, format, limit ("none": no limit, file pre-read into page cache), shuffle
    local run="$tmp/run-$1" status=0
    [ "$3" != none ] || cat "$directory"/big* >/dev/null
    in_group "$3" mpirun -np 2 --oversubscribe "$plexus" train bench/mlp-784-512-256-10.yaml --run-dir "$run" \
        --progress plain --set "data.train=$(location "$2")" --set "data.format=$2" --set data.test=null \
        --set data.normalize=none --set training.batch_size=256 --set training.threads=1 --set "training.shuffle=$4" >"$tmp/log-$1" 2>&1 || status=$?
    if [ "$status" = 0 ]; then
        printf '%-22s status 0, %7.0f samples/s, peak_private_bytes %s, peak_rss_bytes %s\n' "$1" \
            "$(summary_field "$run" samples_per_second)" "$(summary_field "$run" peak_private_bytes)" "$(summary_field "$run" peak_rss_bytes)"
    else
        printf '%-22s status %s: %s\n' "$1" "$status" "$(grep -m1 -E 'plexus:|Killed|killed' "$tmp/log-$1" || tail -1 "$tmp/log-$1")"
    fi
}
[ "${ROUNDS:-2}" = 0 ] || torch_python=$(PLEXUS_BENCH_REQUIREMENTS=bench/requirements-torch-cpu.txt bench/python --path)
for format in $formats; do train "$format-$limit_mib" "$format" "$limit_mib" blocks; done
for round in $(seq 1 "${ROUNDS:-2}"); do
    train "npz-cached-$round" npz none blocks
    train "npz-$limit_mib-$round" npz "$limit_mib" blocks
    status=0
    in_group "$limit_mib" mpirun -np 2 --oversubscribe "$torch_python" bench/torch_big_data.py \
        "$directory/big_x.npy" "$directory/big_y.npy" --batch 256 --threads 1 --max-seconds "${PEER_SECONDS:-600}" \
        >"$tmp/torch" 2>"$tmp/torch-err" || status=$?
    printf '%-22s status %s, %s\n' "torch-$limit_mib-$round" "$status" "$(tail -1 "$tmp/torch")"
done
[ "${ROUNDS:-2}" = 0 ] || train "npz-$limit_mib-rows" npz "$limit_mib" rows
