#!/usr/bin/env bash
# One data set in every format gives the same model: fixtures/make_formats.py writes it as CSV, npz, an .npy pair,
# HDF5 and Parquet with their usual writers (numpy, h5py, pyarrow from PyPI, in a cached venv), plus Parquet (several
# row groups per file; numeric Parquet columns are read by rows from the files), HDF5 and npz split into two shards;
# training in deterministic mode must end with the same param_sha256 from each (and from the Parquet shards on 2
# ranks), `evaluate` must report the same loss on the test copy of every format, and `predict` the same lines for the
# CSV, .npy and Parquet inputs. With `training.shuffle: blocks` every format, on 1 and 2 ranks, ends with one
# param_sha256, with batches read ahead (data.prefetch_batches: 2) or not (0), and a run killed mid-epoch and resumed
# ends with it too. HDF5 needs libhdf5, installed here when root.
set -euo pipefail
name=data_formats
source "$(dirname "${BASH_SOURCE[0]}")/fixtures/harness.sh"
source "$here/fixtures/python_venv.sh"
[ -x "$binary" ] || fail "no plexus binary at $binary"
ensure_hdf5_runtime || { echo "SKIP $name: libhdf5 is not installed and cannot be here (Debian: apt-get install libhdf5-103-1)"; exit 0; }
python="$(test_venv numpy pyarrow h5py)" || fail "could not install numpy, pyarrow and h5py from PyPI into a venv"

tmp="$(mktemp -d /tmp/plexus-formats.XXXXXX)"
trap '[ -n "${PLEXUS_KEEP_TMP:-}" ] || rm -rf "$tmp"' EXIT
"$python" "$here/fixtures/make_formats.py" "$tmp" || fail "make_formats.py failed"
cat >"$tmp/config.yaml" <<EOF
seed: 5
data: {train: $tmp/train.csv, normalize: standardize}
model: {layers: [{units: 16, activation: relu}, {units: 3}]}
optimizer: {name: adam, lr: 0.01}
training: {epochs: 3, batch_size: 32, threads: 1, deterministic: true}
EOF

hash_of() {  # run directory
    sed -nE 's/.*"param_sha256" *: *"([0-9a-f]+)".*/\1/p' "$1/summary.json"
}
extra=()  # more --set arguments for train
train() {  # name, data.train, data.test (YAML values)
    "$binary" train "$tmp/config.yaml" --run-dir "$tmp/run-$1" --progress plain --set "data.train=$2" --set "data.test=$3" "${extra[@]}" \
        --set "data.prefetch_batches=${extra_prefetch:-2}" \
        >"$tmp/log-$1" 2>&1 || fail "training on $1 failed: $(tail -2 "$tmp/log-$1")"
    hash_of "$tmp/run-$1"
}

reference="$(train csv "$tmp/train.csv" "$tmp/test.csv")"
[ -n "$reference" ] || fail "no param_sha256 in the CSV run's summary.json"
declare -A sources=(
    [npz]="$tmp/train.npz|$tmp/test.npz"
    [npy]="{x: $tmp/train_x.npy, y: $tmp/train_y.npy}|{x: $tmp/test_x.npy, y: $tmp/test_y.npy}"
    [hdf5]="$tmp/train.h5|$tmp/test.h5"
    [parquet]="$tmp/train.parquet|$tmp/test.parquet"
    [parquet-shards]="[$tmp/train-1.parquet, $tmp/train-2.parquet]|$tmp/test-*.parquet"
    [hdf5-shards]="{file: [$tmp/train-1.h5, $tmp/train-2.h5], x: features, y: labels}|{file: $tmp/test-*.h5, x: features, y: labels}"
    [npz-shards]="$tmp/train-?.npz|[$tmp/test-1.npz, $tmp/test-2.npz]"
)
for format in npz npy hdf5 parquet parquet-shards hdf5-shards npz-shards; do
    IFS='|' read -r train_data test_data <<<"${sources[$format]}"
    got="$(train "$format" "$train_data" "$test_data")"
    [ "$got" = "$reference" ] || fail "$format: param_sha256 $got differs from the CSV copy's $reference"
    echo "$format: param_sha256 $got (same as CSV)"
done
if command -v mpirun >/dev/null; then
    mpirun_root_flags
    run_mpirun -np 2 --oversubscribe "$binary" train "$tmp/config.yaml" --run-dir "$tmp/run-2ranks" --progress plain \
        --set "data.train=[$tmp/train-1.parquet, $tmp/train-2.parquet]" --set "data.test=$tmp/test.parquet" \
        >"$tmp/log-2ranks" 2>&1 || fail "2-rank run on Parquet shards failed: $(tail -2 "$tmp/log-2ranks")"
    [ "$(hash_of "$tmp/run-2ranks")" = "$reference" ] || fail "2 ranks on Parquet shards: param_sha256 differs from 1 rank's"
    echo "parquet shards on 2 ranks: param_sha256 $reference"
fi

# shuffle: blocks (of 16 rows, windows of 2 blocks): one hash from every format, on 1 rank and on 2.
extra=(--set training.shuffle=blocks --set data.shuffle_block_rows=16 --set data.shuffle_window_blocks=2)
blocks="$(train blocks-csv "$tmp/train.csv" "$tmp/test.csv")"
[ "$blocks" != "$reference" ] || fail "shuffle: blocks trained the same model as shuffle: rows"
for format in npz npy hdf5 parquet parquet-shards; do
    IFS='|' read -r train_data test_data <<<"${sources[$format]}"
    got="$(train "blocks-$format" "$train_data" "$test_data")"
    [ "$got" = "$blocks" ] || fail "shuffle: blocks, $format: param_sha256 $got differs from the CSV copy's $blocks"
done
echo "shuffle: blocks: param_sha256 $blocks from CSV, npz, npy, HDF5, Parquet and Parquet shards"
if command -v mpirun >/dev/null; then
    for format in npy hdf5 parquet-shards; do
        IFS='|' read -r train_data test_data <<<"${sources[$format]}"
        run_mpirun -np 2 --oversubscribe "$binary" train "$tmp/config.yaml" --run-dir "$tmp/run-blocks2-$format" --progress plain \
            --set "data.train=$train_data" --set "data.test=$test_data" "${extra[@]}" >"$tmp/log-blocks2" 2>&1 \
            || fail "2 ranks, shuffle: blocks, $format failed: $(tail -2 "$tmp/log-blocks2")"
        [ "$(hash_of "$tmp/run-blocks2-$format")" = "$blocks" ] || fail "2 ranks, shuffle: blocks, $format: param_sha256 differs from 1 rank's"
    done
    echo "shuffle: blocks on 2 ranks (npy, HDF5, Parquet shards): param_sha256 $blocks"
fi
# data.prefetch_batches: 0 (each batch read in the step) trains what the default, 2 batches read ahead, trains.
for format in npy parquet-shards; do
    IFS='|' read -r train_data test_data <<<"${sources[$format]}"
    got="$(extra_prefetch=0 train "blocks-prefetch0-$format" "$train_data" "$test_data")"
    [ "$got" = "$blocks" ] || fail "data.prefetch_batches: 0, $format: param_sha256 $got differs from 2 batches ahead's $blocks"
done
if command -v mpirun >/dev/null; then
    IFS='|' read -r train_data test_data <<<"${sources[npy]}"
    run_mpirun -np 2 --oversubscribe "$binary" train "$tmp/config.yaml" --run-dir "$tmp/run-prefetch0-2" --progress plain \
        --set "data.train=$train_data" --set "data.test=$test_data" "${extra[@]}" --set data.prefetch_batches=0 \
        >"$tmp/log-prefetch0-2" 2>&1 || fail "2 ranks, data.prefetch_batches: 0 failed: $(tail -2 "$tmp/log-prefetch0-2")"
    [ "$(hash_of "$tmp/run-prefetch0-2")" = "$blocks" ] || fail "2 ranks, data.prefetch_batches: 0: param_sha256 differs from 2 batches ahead's"
fi
echo "data.prefetch_batches 0 and 2 (npy, Parquet shards; npy on 2 ranks): param_sha256 $blocks"
# Killed (SIGKILL) after its first mid-epoch checkpoint and resumed: the uninterrupted run's hash. Long enough (many
# small steps) for the kill to land before the end; the .npy rows are read from the file by the background reader.
extra+=(--set training.epochs=40 --set training.batch_size=8 --set checkpoint.every_steps=7)
npy_data="{x: $tmp/train_x.npy, y: $tmp/train_y.npy}" npy_test="{x: $tmp/test_x.npy, y: $tmp/test_y.npy}"
whole="$(train blocks-whole "$npy_data" "$npy_test")"
"$binary" train "$tmp/config.yaml" --run-dir "$tmp/run-killed" --progress plain --set "data.train=$npy_data" \
    --set "data.test=$npy_test" "${extra[@]}" >"$tmp/log-killed" 2>&1 &
pid=$!
for _ in $(seq 1 600); do
    ls "$tmp/run-killed/checkpoints/"*.safetensors >/dev/null 2>&1 && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.01
done
kill -0 "$pid" 2>/dev/null || fail "the run to kill ended before its first checkpoint; make it longer"
kill -9 "$pid"
wait "$pid" 2>/dev/null || true
[ ! -e "$tmp/run-killed/summary.json" ] || fail "the killed run finished before the kill"
"$binary" train "$tmp/config.yaml" --run-dir "$tmp/run-killed" --resume --progress plain --set "data.train=$npy_data" \
    --set "data.test=$npy_test" "${extra[@]}" >"$tmp/log-resumed" 2>&1 || fail "resume failed: $(tail -2 "$tmp/log-resumed")"
grep -q "resuming from" "$tmp/log-resumed" || fail "the resumed run did not resume: $(tail -2 "$tmp/log-resumed")"
[ "$(hash_of "$tmp/run-killed")" = "$whole" ] || fail "killed mid-epoch and resumed: param_sha256 differs from the uninterrupted run's"
echo "shuffle: blocks, killed after $(grep -o 'step [0-9]*' "$tmp/log-resumed" | head -1) and resumed: param_sha256 $whole"

# evaluate: the CSV model on the test copy of each format reports the same loss.
loss_on() {  # --data value
    "$binary" evaluate "$tmp/run-csv" --data "$1" 2>"$tmp/err" | sed -nE 's/.*"loss" *: *([-0-9.e+]+).*/\1/p' \
        || fail "evaluate --data $1 failed: $(head -2 "$tmp/err")"
}
expected="$(loss_on "$tmp/test.csv")"
[ -n "$expected" ] || fail "evaluate printed no loss: $(head -2 "$tmp/err")"
for data in "$tmp/test.npz" "{x: $tmp/test_x.npy, y: $tmp/test_y.npy}" "$tmp/test.h5" "$tmp/test.parquet" "[$tmp/test-1.parquet, $tmp/test-2.parquet]"; do
    got="$(loss_on "$data")"
    [ "$got" = "$expected" ] || fail "evaluate --data $data: loss $got, the CSV copy gives $expected"
done
echo "evaluate: loss $expected on every format"

# predict: the same lines from the CSV (its label column ignored), the .npy features and the Parquet features.
"$binary" predict "$tmp/run-csv" --input "$tmp/test.csv" --output "$tmp/p-csv.csv" 2>"$tmp/err" || fail "predict on CSV failed: $(head -2 "$tmp/err")"
for input in "$tmp/predict_x.npy" "{x: $tmp/predict_x.npy}" "$tmp/predict.parquet" "$tmp/test.h5"; do
    "$binary" predict "$tmp/run-csv" --input "$input" --output "$tmp/p.csv" 2>"$tmp/err" || fail "predict --input $input failed: $(head -2 "$tmp/err")"
    cmp -s "$tmp/p.csv" "$tmp/p-csv.csv" || fail "predict --input $input differs from the CSV input's predictions"
done
[ "$(wc -l <"$tmp/p.csv")" = 91 ] || fail "predict wrote $(wc -l <"$tmp/p.csv") lines for 90 rows"
echo "predict: the same $(($(wc -l <"$tmp/p.csv") - 1)) predictions from CSV, .npy, Parquet and HDF5 inputs"
echo "PASS $name"
