#!/usr/bin/env bash
# Tables as they come, end to end: a table with text columns and gaps that pandas writes (fixtures/make_table.py) is
# trained from the raw CSV; the Parquet copy (pyarrow: strings and nulls) gives the same param_sha256, and so do 2
# ranks (deterministic mode), with the same test metrics; `predict` on raw rows without the class column writes
# class names and p_NAME probabilities from which scikit-learn recomputes the AUC, F1, balanced accuracy and log loss
# `evaluate` reports; a sample weight of 2 trains as the row written twice; `plexus init` → `plexus train` runs
# untouched; bad values end with exit status 2 and one line naming the key or file:line.
set -euo pipefail
name=tables
source "$(dirname "${BASH_SOURCE[0]}")/fixtures/harness.sh"
source "$here/fixtures/python_venv.sh"
[ -x "$binary" ] || fail "no plexus binary at $binary"
python="$(test_venv numpy pandas pyarrow scikit-learn)" || fail "could not install numpy, pandas, pyarrow and scikit-learn"

tmp="$(mktemp -d /tmp/plexus-tables.XXXXXX)"
trap 'rm -rf "$tmp"' EXIT
"$python" "$here/fixtures/make_table.py" "$tmp" || fail "make_table.py failed"
cat >"$tmp/config.yaml" <<YAML
seed: 3
data:
  train: $tmp/train.csv
  test: $tmp/test.csv
  targets: [species]
  categorical: [island, sex]
  missing: median
  missing_indicator: true
  normalize: quantile
  quantiles: 50
model: {layers: [{units: 16, activation: relu}, {units: 3}]}
optimizer: {name: adam, lr: 0.01}
training: {epochs: 4, batch_size: 16, threads: 1, deterministic: true}
YAML
hash_of() { sed -nE 's/.*"param_sha256" *: *"([0-9a-f]+)".*/\1/p' "$1/summary.json"; }
metrics_of() { sed -nE 's/.*"(test_(auc|f1|balanced_accuracy|log_loss))" *: *([-0-9.e]+).*/\1 \3/p' "$1/summary.json" | sort; }
train() {  # run name, extra arguments
    local run="$1"; shift
    "$binary" train "$tmp/config.yaml" --run-dir "$tmp/$run" --progress plain "$@" >"$tmp/log-$run" 2>&1 ||
        fail "training $run failed: $(tail -2 "$tmp/log-$run")"
}

train csv
reference="$(hash_of "$tmp/csv")"
[ -n "$reference" ] || fail "no param_sha256 in summary.json"
train parquet --set "data.train=$tmp/train.parquet" --set "data.test=$tmp/test.parquet"
[ "$(hash_of "$tmp/parquet")" = "$reference" ] || fail "the Parquet copy trains other weights than the CSV"
echo "csv and parquet: param_sha256 $reference"
if command -v mpirun >/dev/null; then
    mpirun_root_flags
    run_mpirun -np 2 --oversubscribe "$binary" train "$tmp/config.yaml" --run-dir "$tmp/ranks2" --progress plain \
        >"$tmp/log-ranks2" 2>&1 || fail "2 ranks failed: $(tail -2 "$tmp/log-ranks2")"
    [ "$(hash_of "$tmp/ranks2")" = "$reference" ] || fail "2 ranks train other weights than 1"
    [ "$(metrics_of "$tmp/ranks2")" = "$(metrics_of "$tmp/csv")" ] || fail "2 ranks report other test metrics than 1"
    echo "2 ranks: same param_sha256 and test metrics ($(metrics_of "$tmp/csv" | tr '\n' ' '))"
fi

# predict on raw rows, and scikit-learn's metrics on its probabilities against evaluate's.
"$binary" predict "$tmp/csv" --input "$tmp/input.csv" --probabilities --output "$tmp/predictions.csv" 2>/dev/null ||
    fail "predict failed"
"$binary" evaluate "$tmp/csv" >"$tmp/evaluation.json" 2>/dev/null || fail "evaluate failed"
"$python" - "$tmp" <<'PY' || fail "predict's names or probabilities disagree with evaluate"
import json, sys
import numpy as np, pandas as pd
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score, log_loss, roc_auc_score
tmp = sys.argv[1]
predictions, truth = pd.read_csv(f"{tmp}/predictions.csv"), pd.read_csv(f"{tmp}/test.csv")["species"]
names = ["Adelie", "Chinstrap", "Gentoo"]
assert list(predictions.columns[-3:]) == [f"p_{n}" for n in names], predictions.columns
assert set(predictions["predicted_class"]) <= set(names), set(predictions["predicted_class"])
p = predictions[[f"p_{n}" for n in names]].to_numpy(float)
labels = truth.map({n: i for i, n in enumerate(names)}).to_numpy()
report = json.load(open(f"{tmp}/evaluation.json"))
ours = {"accuracy": accuracy_score(truth, predictions["predicted_class"]),
        "auc": roc_auc_score(labels, p, multi_class="ovr", average="macro"),
        "f1": f1_score(truth, predictions["predicted_class"], average="macro"),
        "balanced_accuracy": balanced_accuracy_score(truth, predictions["predicted_class"]),
        "log_loss": log_loss(labels, p / p.sum(axis=1, keepdims=True), labels=[0, 1, 2])}
for key, value in ours.items():
    assert abs(report[key] - value) < 2e-5, (key, report[key], value)
print("predict and evaluate agree with scikit-learn:", {k: round(v, 4) for k, v in ours.items()})
PY

# A weight of 2 is the row written twice: full-batch SGD steps, no shuffle, and fills and normalization that do not
# depend on how often a row is there.
for data in weighted duplicated; do
    train "$data" --set "data.train=$tmp/$data.csv" --set 'data.test=null' --set 'training.batch_size=1000' \
        --set data.normalize=none --set data.missing=zero \
        --set 'training.shuffle=false' --set 'optimizer={name: sgd, lr: 0.1}' \
        $([ "$data" = weighted ] && echo --set data.sample_weight=weight)
done
"$python" - "$tmp" <<'PY' || fail "a sample weight of 2 trains other weights than the duplicated row"
import json, struct, sys
import numpy as np
def tensors(path):
    data = open(path, "rb").read(); size = struct.unpack("<Q", data[:8])[0]; header = json.loads(data[8:8 + size])
    return {k: np.frombuffer(data[8 + size + v["data_offsets"][0]:8 + size + v["data_offsets"][1]], np.float32)
            for k, v in header.items() if k != "__metadata__"}
a, b = (tensors(f"{sys.argv[1]}/{run}/final.safetensors") for run in ["weighted", "duplicated"])
difference = max(float(np.abs(a[k] - b[k]).max()) for k in a)
assert difference < 1e-5, difference
print(f"sample weight 2 = the row twice: weights within {difference:.1e}")
PY

# plexus init, then train as written.
(cd "$tmp" && "$binary" init train.csv --target species --output init.yaml) || fail "plexus init failed"
(cd "$tmp" && "$binary" train init.yaml --run-dir init-run --progress plain --set training.epochs=3 >log-init 2>&1) ||
    fail "plexus train on plexus init's config failed: $(tail -2 "$tmp/log-init")"
echo "plexus init → train: ran"

# Bad values: exit 2, one line naming the key or file:line.
expect_error() {  # expected text, train arguments...
    local expected="$1" status=0; shift
    "$binary" train "$tmp/config.yaml" --run-dir "$tmp/bad" --progress plain "$@" >"$tmp/bad.out" 2>"$tmp/bad.err" || status=$?
    [ "$status" = 2 ] || fail "expected exit 2 for $*, got $status"
    [ "$(wc -l <"$tmp/bad.err")" = 1 ] || fail "expected one line for $*: $(cat "$tmp/bad.err")"
    grep -qF -- "$expected" "$tmp/bad.err" || fail "expected '$expected' for $*: $(cat "$tmp/bad.err")"
}
expect_error 'loss.class_weights: 2 weights for 3 classes' --set 'loss={name: cross_entropy, class_weights: [1, 2]}'
expect_error 'data.categorical: no column "zip"' --set 'data.categorical=[island, sex, zip]'
expect_error 'in column "sex" (list a text column under data.categorical)' --set 'data.categorical=[island]'
awk -F, 'NR == 3 { $6 = -1 } 1' OFS=, "$tmp/weighted.csv" >"$tmp/negative.csv"
expect_error 'negative.csv:3: sample weight -1.0 in column "weight" is below 0 (data.sample_weight)' --set "data.train=$tmp/negative.csv" --set data.sample_weight=weight
awk -F, 'NR == 5 { $5 = "" } 1' OFS=, "$tmp/train.csv" >"$tmp/no-target.csv"
expect_error 'no-target.csv:5: missing target in column "species"' --set "data.train=$tmp/no-target.csv"
echo "bad values: exit 2 with one line each"
echo "PASS $name"
