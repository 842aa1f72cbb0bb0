#!/usr/bin/env bash
# Compressed Parquet against uncompressed, as a user trains on it: one epoch of a small net (16-32-2, Adam, batch
# 256, one thread) on ROWS rows × 16 float32 columns and a label that pyarrow writes uncompressed, with Snappy
# (pyarrow's default) and with Zstandard; then one epoch of 784-32-2 on WIDE_ROWS rows × 784 columns, uncompressed
# and with Snappy. The runs alternate, ROUNDS times. Prints per file its size and the medians of wall seconds and
# samples/s (summary.json), each codec's ratio to the uncompressed file, and the peak RSS.
#
#   bench/parquet_codecs.sh [PLEXUS_BINARY] [DIR]      environment: ROWS (1000000), WIDE_ROWS (20000), ROUNDS (3)
#
# DIR (default runs/parquet-codecs) gets the files on first use (about 330 MB at the default sizes).
set -euo pipefail
cd "$(dirname "$0")/.."
plexus=$(realpath "${1:-.build/release/plexus}")
directory=$(realpath -m "${2:-runs/parquet-codecs}")
rows=${ROWS:-1000000} wide_rows=${WIDE_ROWS:-20000} rounds=${ROUNDS:-3}
mkdir -p "$directory"
bench/machine
if [ ! -f "$directory/.rows-$rows-$wide_rows" ]; then
    PLEXUS_BENCH_REQUIREMENTS=bench/requirements-parquet.txt bench/python - "$directory" "$rows" "$wide_rows" <<'PY'
import sys
import numpy as np, pyarrow as pa, pyarrow.parquet as pq
directory, rows, wide_rows = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def table(n, k, seed):
    x = np.random.default_rng(seed).standard_normal((n, k)).astype(np.float32)
    columns = {f"x{i}": x[:, i] for i in range(k)}
    columns["label"] = (x[:, 0] + x[:, 1] * x[:, 2] > 0).astype(np.int64)
    return pa.table(columns)
narrow, wide = table(rows, 16, 0), table(wide_rows, 784, 1)
for codec in ["none", "snappy", "zstd"]:
    pq.write_table(narrow, f"{directory}/narrow-{codec}.parquet", compression=codec)
for codec in ["none", "snappy"]:
    pq.write_table(wide, f"{directory}/wide-{codec}.parquet", compression=codec)
pq.write_table(table(20000, 16, 2), f"{directory}/narrow-test.parquet")
pq.write_table(table(2000, 784, 3), f"{directory}/wide-test.parquet")
PY
    touch "$directory/.rows-$rows-$wide_rows"
fi
files="narrow-none narrow-snappy narrow-zstd wide-none wide-snappy"
results="$directory/results.jsonl"
: > "$results"
for round in $(seq 1 "$rounds"); do
    for name in $files; do
        shape=${name%%-*}
        run="$directory/run-$name"
        rm -rf "$run"
        cat > "$run.yaml" <<YAML
seed: 0
data: {train: $directory/$name.parquet, test: $directory/$shape-test.parquet, targets: [label]}
model: {layers: [{units: 32, activation: relu}, {units: 2, activation: identity}]}
loss: cross_entropy
optimizer: {name: adam, lr: 0.001}
training: {epochs: 1, batch_size: 256, threads: 1}
YAML
        "$plexus" train "$run.yaml" --run-dir "$run" --progress plain > "$run.log" 2>&1 || { cat "$run.log" >&2; exit 1; }
        python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print(json.dumps({"file": sys.argv[2], "wall": s["wall_seconds"], "samples_per_second": s["samples_per_second"], "peak_rss": max(s["peak_rss_bytes"])}))' \
            "$run/summary.json" "$name" >> "$results"
    done
done
python3 - "$results" "$directory" <<'PY'
import json, os, statistics, sys
runs = [json.loads(line) for line in open(sys.argv[1])]
names = list(dict.fromkeys(r["file"] for r in runs))
median = {n: {k: statistics.median(r[k] for r in runs if r["file"] == n) for k in ("wall", "samples_per_second", "peak_rss")} for n in names}
print(f"{'file':<15} {'MB':>7} {'wall s':>7} {'samples/s':>11} {'vs none':>8} {'peak RSS MB':>12}   (medians of {len(runs) // len(names)} runs)")
for n in names:
    shape = n.split("-")[0]
    m = median[n]
    size = os.path.getsize(f"{sys.argv[2]}/{n}.parquet") / 1e6
    ratio = m["samples_per_second"] / median[f"{shape}-none"]["samples_per_second"]
    print(f"{n:<15} {size:7.1f} {m['wall']:7.2f} {m['samples_per_second']:11,.0f} {ratio:7.2f}x {m['peak_rss'] / 2**20:12.0f}")
PY
