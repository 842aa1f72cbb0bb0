#!/usr/bin/env bash
# `plexus export --format onnx` round trip: one tiny model per task (softmax classification through relu, leaky_relu
# and gelu layers with standardize; a binary label through sigmoid and tanh; two 0/1 labels; two regression targets
# with normalize_targets; byte features from an npz with scale; a table with text columns, gaps and class names, for
# its three classes (island a learned embedding), two of them, and a regression with quantile normalization and an
# embedded species) is trained for an epoch, exported, checked by
# onnx.checker (full check) and run in ONNX Runtime, whose outputs must equal `plexus predict`'s on the same rows to
# 1e-5 (fixtures/onnx_round_trip.py; onnx, onnxruntime and numpy from PyPI in a cached venv; the table models on raw
# rows with NaN, empty and NA cells and unseen levels, against predict --probabilities). Then the mistakes: a file
# that is not a model, an unknown --format, an unwritable --output and a feature column named like an output each exit
# 2 with one line.
set -euo pipefail
name=onnx_export
source "$(dirname "${BASH_SOURCE[0]}")/fixtures/harness.sh"
source "$here/fixtures/python_venv.sh"
[ -x "$binary" ] || fail "no plexus binary at $binary"
python="$(test_venv onnx onnxruntime numpy)" || fail "could not install onnx, onnxruntime and numpy from PyPI into a venv"

tmp="$(mktemp -d /tmp/plexus-onnx.XXXXXX)"
trap '[ -n "${PLEXUS_KEEP_TMP:-}" ] || rm -rf "$tmp"' EXIT
"$python" "$here/fixtures/onnx_round_trip.py" make "$tmp" "$root/Tests/fixtures/tables/table.csv" || fail "making the data failed"

round_trip() {  # task, data file, data keys (YAML), layers (YAML), loss[, check as, predict's input, predict's option]
    local task=$1 data=$2
    cat >"$tmp/$task.yaml" <<YAML
seed: 3
data: {train: $data, $3}
model: {layers: $4}
loss: $5
optimizer: {name: adam, lr: 0.01}
training: {epochs: 1, batch_size: 32, threads: 1}
YAML
    "$binary" train "$tmp/$task.yaml" --run-dir "$tmp/run-$task" --progress plain >"$tmp/log" 2>&1 \
        || fail "$task: train failed: $(tail -2 "$tmp/log")"
    "$binary" export "$tmp/run-$task" --format onnx --output "$tmp/$task.onnx" >"$tmp/log" 2>&1 \
        || fail "$task: export failed: $(tail -2 "$tmp/log")"
    grep -q "^wrote $tmp/$task.onnx" "$tmp/log" || fail "$task: export said: $(cat "$tmp/log")"
    local input="${7:-$data}"
    "$binary" predict "$tmp/run-$task" --input "$input" --output "$tmp/$task-predictions.csv" ${8:-} 2>"$tmp/log" \
        || fail "$task: predict failed: $(tail -2 "$tmp/log")"
    checks+=("$tmp/$task.onnx" "$input" "$tmp/$task-predictions.csv" "${6:-$task}")
}
checks=()
round_trip classification "$tmp/classification.csv" "normalize: standardize" \
    "[{units: 8, activation: relu}, {units: 8, activation: leaky_relu}, {units: 8, activation: gelu}, {units: 3}]" cross_entropy
round_trip binary "$tmp/binary.csv" "normalize: none" \
    "[{units: 8, activation: sigmoid}, {units: 6, activation: tanh}, {units: 1}]" binary_cross_entropy
round_trip multilabel "$tmp/multilabel.csv" "targets: [a, b], normalize: standardize" \
    "[{units: 8, activation: tanh}, {units: 2}]" binary_cross_entropy
round_trip regression "$tmp/regression.csv" "targets: [price, speed], normalize: standardize, normalize_targets: standardize" \
    "[{units: 8, activation: gelu}, {units: 2}]" mse
round_trip pixels "$tmp/pixels.npz" "normalize: scale" "[{units: 8, activation: relu}, {units: 2}]" cross_entropy classification
# Table models on raw columns: text categories (an unseen island, gaps as their own level or "other"), numeric gaps
# filled with indicators, class names; then quantile normalization and a rare level folded, for a regression.
round_trip table "$root/Tests/fixtures/tables/table.csv" \
    "targets: [species], categorical: {island: {embedding: 3}, sex: one_hot}, missing: median, missing_indicator: true, normalize: standardize" \
    "[{units: 8, activation: relu}, {units: 3}]" cross_entropy table "$tmp/table-input.csv" --probabilities
round_trip table_binary "$tmp/table-binary.csv" "targets: [species], categorical: [island, sex], missing: zero" \
    "[{units: 4, activation: tanh}, {units: 1}]" binary_cross_entropy binary "$tmp/table-input.csv"
round_trip table_regression "$tmp/table-regression.csv" \
    "targets: [mass], categorical: {island: one_hot, sex: one_hot, species: {embedding: 2}}, rare_category_count: 10, missing: mean, normalize: quantile, quantiles: 12, normalize_targets: standardize" \
    "[{units: 8, activation: gelu}, {units: 1}]" mse table_regression "$tmp/table-input.csv"
"$python" "$here/fixtures/onnx_round_trip.py" check "${checks[@]}" || fail "an exported model does not match plexus predict (above)"

mistake() {  # what, arguments...
    local what=$1; shift
    local status=0
    "$binary" export "$@" >"$tmp/out" 2>"$tmp/err" || status=$?
    [ "$status" = 2 ] || fail "$what: exit status $status, expected 2 ($(head -2 "$tmp/err"))"
    [ "$(wc -l <"$tmp/err")" = 1 ] || fail "$what: expected one line on stderr, got: $(cat "$tmp/err")"
    echo "$what: $(cat "$tmp/err")"
}
mistake "not a model" "$tmp/classification.csv" --output "$tmp/x.onnx"
mistake "unknown format" "$tmp/run-binary" --format tflite --output "$tmp/x.onnx"
mistake "unwritable output" "$tmp/run-binary" --output "$tmp/no/such/directory/model.onnx"
sed '1s/,z,/,probabilities,/' "$tmp/classification.csv" >"$tmp/clash.csv"
"$binary" train "$tmp/classification.yaml" --run-dir "$tmp/run-clash" --progress plain --set "data.train=$tmp/clash.csv" \
    >"$tmp/log" 2>&1 || fail "training on clash.csv failed: $(tail -2 "$tmp/log")"
mistake "a column named like an output" "$tmp/run-clash" --output "$tmp/x.onnx"
"$binary" export --help >"$tmp/out" 2>&1 || fail "export --help failed"
grep -q -- "--format" "$tmp/out" || fail "export --help does not mention --format"
echo "PASS $name"
