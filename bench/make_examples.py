#!/usr/bin/env python3
"""Writes the data the example configs read, under runs/examples/ (needs numpy and scikit-learn):

  regression-{train,test}.csv   sklearn.datasets.make_regression(n_targets=3): features x0..x19, targets y0, y1, y2
  multilabel-{train,test}.csv   sklearn.datasets.make_multilabel_classification(n_classes=5): x0..x19, labels l0..l4
  fashion-mnist-{train,test}.npz   the Fashion-MNIST IDX files as numpy.savez (uncompressed): x uint8 [N, 784], y uint8 [N]

Each CSV pair is one train_test_split(test_size=0.2, random_state=0) of 10,000 rows; bench/sklearn_compare.py trains
scikit-learn on exactly these files.

  bench/python bench/make_examples.py [--out runs/examples] [--idx /usr/share/datasets/fashion-mnist] [--no-fashion-mnist]
"""
import argparse
import gzip
import os

import numpy as np


def write_csv(path, features, targets, target_prefix):
    header = [f"x{j}" for j in range(features.shape[1])] + [f"{target_prefix}{j}" for j in range(targets.shape[1])]
    table = np.hstack([features, targets])
    integer = np.issubdtype(targets.dtype, np.integer)
    formats = ["%.9g"] * features.shape[1] + (["%d"] if integer else ["%.9g"]) * targets.shape[1]
    np.savetxt(path, table, delimiter=",", header=",".join(header), comments="", fmt=formats)


def read_idx(path):
    with (gzip.open if path.endswith(".gz") else open)(path, "rb") as handle:
        data = handle.read()
    dimensions = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dimensions)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dimensions).reshape(shape)


def idx_file(directory, name):
    for candidate in (name, name + ".gz"):
        if os.path.exists(os.path.join(directory, candidate)):
            return os.path.join(directory, candidate)
    raise SystemExit(f"{directory}/{name}[.gz]: no such file (apt-get install dataset-fashion-mnist)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="runs/examples")
    parser.add_argument("--idx", default="/usr/share/datasets/fashion-mnist")
    parser.add_argument("--no-fashion-mnist", action="store_true", help="skip the npz copy of Fashion-MNIST")
    arguments = parser.parse_args()
    os.makedirs(arguments.out, exist_ok=True)

    from sklearn.datasets import make_multilabel_classification, make_regression
    from sklearn.model_selection import train_test_split

    x, y = make_regression(n_samples=10000, n_features=20, n_informative=10, n_targets=3, noise=10.0, random_state=0)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.2, random_state=0)
    write_csv(os.path.join(arguments.out, "regression-train.csv"), x_train, y_train, "y")
    write_csv(os.path.join(arguments.out, "regression-test.csv"), x_test, y_test, "y")

    x, y = make_multilabel_classification(n_samples=10000, n_features=20, n_classes=5, n_labels=2, random_state=0)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.2, random_state=0)
    write_csv(os.path.join(arguments.out, "multilabel-train.csv"), x_train, y_train, "l")
    write_csv(os.path.join(arguments.out, "multilabel-test.csv"), x_test, y_test, "l")

    if not arguments.no_fashion_mnist:
        for split, prefix in [("train", "train"), ("test", "t10k")]:
            images = read_idx(idx_file(arguments.idx, f"{prefix}-images-idx3-ubyte"))
            labels = read_idx(idx_file(arguments.idx, f"{prefix}-labels-idx1-ubyte"))
            np.savez(os.path.join(arguments.out, f"fashion-mnist-{split}.npz"),
                     x=images.reshape(len(images), -1), y=labels)
    print("wrote", ", ".join(sorted(os.listdir(arguments.out))), "in", arguments.out)


if __name__ == "__main__":
    main()
