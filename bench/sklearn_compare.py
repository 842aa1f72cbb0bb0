#!/usr/bin/env python3
"""Plexus against scikit-learn on the same split, the same preprocessing and the same network:

  regression   Configs/regression-multitarget.yaml vs MLPRegressor: R² (mean over the 3 targets), RMSE, MAE
  multi-label  Configs/multilabel.yaml vs MLPClassifier: subset accuracy and label accuracy (1 − Hamming loss)

Both sides: 20 standardized features → 64 ReLU → 64 ReLU → k outputs, Glorot-uniform weights (scikit-learn's
initialization; plexus xavier_uniform), Adam lr 1e-3, batch 64, 50 epochs, no weight decay (alpha=0), a shuffle
every epoch; regression targets standardized for training (plexus normalize_targets,
scikit-learn TransformedTargetRegressor) and scored in original units. Plexus's numbers are recomputed here with
scikit-learn's metrics from `plexus predict` output, beside what `plexus evaluate` reports. --seeds N repeats both
sides with N seeds (plexus `seed`, scikit-learn `random_state`) and prints each run and the mean.

  bench/python bench/sklearn_compare.py [--plexus .build/release/plexus] [--seeds 3]

The data are runs/examples/*.csv from bench/make_examples.py, written first when they are missing.
"""
import argparse
import csv
import json
import os
import subprocess
import sys
import time

import numpy as np

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load(path, prefix):
    with open(path) as handle:
        header = next(csv.reader(handle))
    table = np.loadtxt(path, delimiter=",", skiprows=1)
    targets = [i for i, name in enumerate(header) if name.startswith(prefix)]
    features = [i for i in range(len(header)) if i not in targets]
    y = table[:, targets]
    return table[:, features], (y.astype(int) if np.all(y == np.round(y)) else y), [header[i] for i in targets]


def plexus_run(binary, config, run_dir, seed, test_csv):
    started = time.time()
    subprocess.run([binary, "train", config, "--run-dir", run_dir, "--progress", "plain", "--set", f"seed={seed}"],
                   check=True, stdout=subprocess.DEVNULL, cwd=root)
    seconds = time.time() - started
    evaluation = json.loads(subprocess.run([binary, "evaluate", run_dir], check=True, capture_output=True, text=True,
                                           cwd=root).stdout)
    predictions = os.path.join(run_dir, "predictions.csv")
    subprocess.run([binary, "predict", run_dir, "--input", test_csv, "--output", predictions], check=True, cwd=root)
    return np.loadtxt(predictions, delimiter=",", skiprows=1, ndmin=2), evaluation, seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--plexus", default=os.path.join(root, ".build/release/plexus"))
    parser.add_argument("--data", default=os.path.join(root, "runs/examples"))
    parser.add_argument("--runs", default=os.path.join(root, "runs/sklearn-compare"))
    parser.add_argument("--seeds", type=int, default=1)
    arguments = parser.parse_args()

    csvs = [os.path.join(arguments.data, f"{task}-{split}.csv") for task in ("regression", "multilabel")
            for split in ("train", "test")]
    if not all(os.path.exists(path) for path in csvs):
        subprocess.run([sys.executable, os.path.join(root, "bench", "make_examples.py"), "--out", arguments.data,
                        "--no-fashion-mnist"], check=True, stdout=sys.stderr)
    import sklearn
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.metrics import accuracy_score, hamming_loss, mean_absolute_error, r2_score, root_mean_squared_error
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_info

    print(f"scikit-learn {sklearn.__version__}, numpy {np.__version__}; BLAS: "
          + ", ".join(f"{i.get('internal_api')} {i.get('architecture')} ×{i.get('num_threads')}" for i in threadpool_info()))
    settings = dict(hidden_layer_sizes=(64, 64), activation="relu", solver="adam", learning_rate_init=1e-3, batch_size=64,
                    max_iter=50, alpha=0.0, shuffle=True, tol=0.0, n_iter_no_change=50)
    def compare(task, config, prefix, make_model, score):
        """Both sides on runs/examples/TASK-{train,test}.csv for each seed; score(y_test, plexus output,
        scikit-learn's model, x_test, evaluation) gives the row."""
        x_train, y_train, _ = load(os.path.join(arguments.data, f"{task}-train.csv"), prefix)
        x_test, y_test, _ = load(os.path.join(arguments.data, f"{task}-test.csv"), prefix)
        entries = []
        for seed in range(arguments.seeds):
            output, evaluation, seconds = plexus_run(arguments.plexus, config, os.path.join(arguments.runs, f"{task}-{seed}"),
                                                     seed, os.path.join(arguments.data, f"{task}-test.csv"))
            started = time.time()
            model = make_model(seed).fit(x_train, y_train)
            entry = dict(seed=seed, **score(y_test, output, model.predict(x_test), evaluation))
            entries.append(dict(entry, plexus_seconds=seconds, sklearn_seconds=time.time() - started))
        return entries

    def regression_scores(y_test, predicted, theirs, evaluation):
        return dict(
            plexus_r2=r2_score(y_test, predicted), plexus_evaluate_r2=evaluation["r2"],
            plexus_rmse=root_mean_squared_error(y_test, predicted, multioutput="raw_values").mean(),
            plexus_mae=mean_absolute_error(y_test, predicted), sklearn_r2=r2_score(y_test, theirs),
            sklearn_rmse=root_mean_squared_error(y_test, theirs, multioutput="raw_values").mean(),
            sklearn_mae=mean_absolute_error(y_test, theirs),
            plexus_r2_per_target=list(r2_score(y_test, predicted, multioutput="raw_values")),
            sklearn_r2_per_target=list(r2_score(y_test, theirs, multioutput="raw_values")))

    def multilabel_scores(y_test, probabilities, theirs, evaluation):
        predicted = (probabilities > 0.5).astype(int)
        return dict(
            plexus_subset_accuracy=accuracy_score(y_test, predicted), plexus_evaluate_accuracy=evaluation["accuracy"],
            plexus_label_accuracy=1 - hamming_loss(y_test, predicted),
            plexus_evaluate_label_accuracy=evaluation["label_accuracy"],
            sklearn_subset_accuracy=accuracy_score(y_test, theirs), sklearn_label_accuracy=1 - hamming_loss(y_test, theirs))

    rows = {
        "regression": compare("regression", "Configs/regression-multitarget.yaml", "y", lambda seed: make_pipeline(
            StandardScaler(), TransformedTargetRegressor(MLPRegressor(random_state=seed, **settings),
                                                         transformer=StandardScaler())), regression_scores),
        "multilabel": compare("multilabel", "Configs/multilabel.yaml", "l", lambda seed: make_pipeline(
            StandardScaler(), MLPClassifier(random_state=seed, **settings)), multilabel_scores),
    }

    for task, entries in rows.items():
        print(f"\n{task}:")
        for entry in entries:
            print("  " + json.dumps({k: (round(v, 4) if isinstance(v, float) else
                                         [round(x, 4) for x in v] if isinstance(v, list) else v) for k, v in entry.items()}))
        keys = [k for k in entries[0] if k != "seed" and not isinstance(entries[0][k], list)]
        print("  mean " + json.dumps({k: round(float(np.mean([e[k] for e in entries])), 4) for k in keys}))
    regression = np.mean([e["plexus_r2"] - e["sklearn_r2"] for e in rows["regression"]])
    print(f"\nR² plexus − scikit-learn (mean over seeds): {regression:+.4f} (this script exits 1 below −0.03)")
    return 0 if regression >= -0.03 else 1


if __name__ == "__main__":
    sys.exit(main())
