#!/usr/bin/env bash
# A data set several times a memory limit trains under it: a 260 MB .npy pair (80k rows × 784 float32, numpy's
# open_memmap) and one epoch with `shuffle: blocks` in a memory cgroup of 64 MiB (the v1 controller's
# memory.limit_in_bytes, or cgroup v2's memory.max) must end with status 0, not a kill, and summary.json's
# peak_private_bytes must stay under the limit: the rows are read from the file as batches need them, never held.
# Then the same rows as a Parquet file (pyarrow), whose row groups are decoded a slab of rows at a time, as well.
# Needs root and a memory controller; skipped with the reason otherwise.
set -euo pipefail
name=memory_limit
source "$(dirname "${BASH_SOURCE[0]}")/fixtures/harness.sh"
source "$here/fixtures/python_venv.sh"
[ -x "$binary" ] || fail "no plexus binary at $binary"
[ "$(id -u)" = 0 ] || { echo "SKIP $name: needs root to make a memory cgroup"; exit 0; }
limit=$((64 * 1024 * 1024)) group="plexus-memory-limit-$$"
if [ -d /sys/fs/cgroup/memory ]; then
    cgroup=/sys/fs/cgroup/memory/$group limit_file=memory.limit_in_bytes
elif grep -qw memory /sys/fs/cgroup/cgroup.controllers 2>/dev/null; then
    cgroup=/sys/fs/cgroup/$group limit_file=memory.max
else
    echo "SKIP $name: no cgroup memory controller (v1 /sys/fs/cgroup/memory or v2 memory in cgroup.controllers)"; exit 0
fi
python="$(test_venv numpy pyarrow)" || fail "could not install numpy and pyarrow from PyPI into a venv"
tmp="$(mktemp -d /tmp/plexus-memory-limit.XXXXXX)"
cleanup() { rmdir "$cgroup" 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
"$python" - "$tmp" <<'PY' || fail "numpy could not write the data set"
import sys, numpy as np
rows, width = 81920, 784
x = np.lib.format.open_memmap(sys.argv[1] + "/x.npy", mode="w+", dtype=np.float32, shape=(rows, width))
y = np.lib.format.open_memmap(sys.argv[1] + "/y.npy", mode="w+", dtype=np.int64, shape=(rows,))
for start in range(0, rows, 8192):
    labels = np.arange(start, start + 8192) % 10
    y[start:start + 8192] = labels
    x[start:start + 8192] = labels[:, None] + np.arange(width, dtype=np.float32) / width
x.flush(); y.flush()
PY
size=$(($(stat -c %s "$tmp/x.npy") + $(stat -c %s "$tmp/y.npy")))
[ "$size" -gt $((3 * limit)) ] || fail "the data set ($size bytes) is not several times the limit ($limit)"
cat >"$tmp/config.yaml" <<EOF
seed: 3
data: {train: {x: $tmp/x.npy, y: $tmp/y.npy}, normalize: standardize}
model: {layers: [{units: 32, activation: relu}, {units: 10}]}
training: {epochs: 1, batch_size: 512, threads: 1, shuffle: blocks}
EOF
mkdir "$cgroup" || fail "cannot make the cgroup $cgroup"
echo "$limit" >"$cgroup/$limit_file"
train_under_limit() {  # label, file size, --set arguments...
    local label=$1 bytes=$2 status=0 private
    shift 2
    bash -c 'echo $$ >"$1/cgroup.procs" && shift && exec "$@"' _ "$cgroup" "$binary" train "$tmp/config.yaml" \
        --run-dir "$tmp/run-$label" --progress plain "$@" >"$tmp/log-$label" 2>&1 || status=$?
    [ "$status" = 0 ] || fail "$label: training under a $((limit / 1048576)) MiB limit ended with status $status: $(tail -2 "$tmp/log-$label")"
    private=$(tr -d ' \n' <"$tmp/run-$label/summary.json" | sed -nE 's/.*"peak_private_bytes":\[([0-9]+)\].*/\1/p')
    [ -n "$private" ] || fail "$label: no peak_private_bytes in summary.json"
    [ "$private" -lt "$limit" ] || fail "$label: peak_private_bytes $private is not under the limit $limit"
    echo "$((bytes / 1048576)) MiB of $label trained under a $((limit / 1048576)) MiB limit: peak_private_bytes $((private / 1048576)) MiB"
}
train_under_limit .npy "$size"
# The same rows as Parquet (pyarrow, PLAIN and uncompressed, so as large; row groups of 16384 rows), decoded a slab
# at a time; windows of 4 blocks of 1024 rows keep the decoded rows a window needs small.
"$python" - "$tmp" <<'PY' || fail "pyarrow could not write the Parquet copy"
import sys, numpy as np, pyarrow as pa, pyarrow.parquet as pq
x, y = np.load(sys.argv[1] + "/x.npy", mmap_mode="r"), np.load(sys.argv[1] + "/y.npy")
names = [f"f{i}" for i in range(x.shape[1])]
schema = pa.schema([(n, pa.float32()) for n in names] + [("label", pa.int64())])
with pq.ParquetWriter(sys.argv[1] + "/train.parquet", schema, compression="none", use_dictionary=False) as writer:
    for start in range(0, len(y), 16384):
        rows = slice(start, start + 16384)
        writer.write_table(pa.table([pa.array(np.ascontiguousarray(x[rows, i])) for i in range(x.shape[1])] + [pa.array(y[rows])],
                                    names=names + ["label"]))
PY
rm "$tmp/x.npy"
[ "$(stat -c %s "$tmp/train.parquet")" -gt $((3 * limit)) ] || fail "the Parquet copy is not several times the limit"
train_under_limit Parquet "$(stat -c %s "$tmp/train.parquet")" --set "data.train=$tmp/train.parquet" \
    --set data.shuffle_block_rows=1024 --set data.shuffle_window_blocks=4
echo "PASS $name"
