#!/usr/bin/env python3
"""Writes one large training set in every format a chunk at a time (never the whole set in memory): ROWS rows of
784 float32 features (class centers plus noise, learnable) and int64 labels 0-9, as

  DIR/big_x.npy, DIR/big_y.npy   numpy.lib.format.open_memmap
  DIR/big.npz                    numpy's .npy members in an uncompressed zip64 archive (what numpy.savez writes)
  DIR/big.h5                     h5py, datasets x and y, contiguous
  DIR/big.parquet                pyarrow, one float32 column per feature, row groups of 16384 rows

Usage: make_big_data.py DIR [--rows 500000] [--formats npy,npz,hdf5,parquet]
"""
import argparse, os, zipfile
import numpy as np

WIDTH, CHUNK = 784, 16384

def chunks(rows):
    generator = np.random.default_rng(7)
    centers = generator.normal(size=(10, WIDTH)).astype(np.float32)
    for start in range(0, rows, CHUNK):
        count = min(CHUNK, rows - start)
        labels = (np.arange(start, start + count) * 7919 % 10).astype(np.int64)
        features = centers[labels] + generator.normal(scale=2.0, size=(count, WIDTH)).astype(np.float32)
        yield start, features, labels

def write_npy(directory, rows):
    x = np.lib.format.open_memmap(os.path.join(directory, "big_x.npy"), mode="w+", dtype=np.float32, shape=(rows, WIDTH))
    y = np.lib.format.open_memmap(os.path.join(directory, "big_y.npy"), mode="w+", dtype=np.int64, shape=(rows,))
    for start, features, labels in chunks(rows):
        x[start:start + len(labels)] = features
        y[start:start + len(labels)] = labels
    x.flush(); y.flush()

def write_npz(directory, rows):
    with zipfile.ZipFile(os.path.join(directory, "big.npz"), "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name, dtype, shape, column in [("x", np.float32, (rows, WIDTH), 1), ("y", np.int64, (rows,), 2)]:
            with archive.open(name + ".npy", "w", force_zip64=True) as member:
                np.lib.format.write_array_header_1_0(member, {"descr": np.dtype(dtype).str, "fortran_order": False, "shape": shape})
                for chunk in chunks(rows):
                    member.write(np.ascontiguousarray(chunk[column]).tobytes())

def write_hdf5(directory, rows):
    import h5py
    with h5py.File(os.path.join(directory, "big.h5"), "w") as handle:
        x = handle.create_dataset("x", shape=(rows, WIDTH), dtype=np.float32)
        y = handle.create_dataset("y", shape=(rows,), dtype=np.int64)
        for start, features, labels in chunks(rows):
            x[start:start + len(labels)] = features
            y[start:start + len(labels)] = labels

def write_parquet(directory, rows):
    import pyarrow as pa, pyarrow.parquet as pq
    names = [f"f{i}" for i in range(WIDTH)] + ["label"]
    schema = pa.schema([(name, pa.float32()) for name in names[:-1]] + [("label", pa.int64())])
    with pq.ParquetWriter(os.path.join(directory, "big.parquet"), schema, compression="none") as writer:
        for _, features, labels in chunks(rows):
            writer.write_table(pa.table([pa.array(features[:, i]) for i in range(WIDTH)] + [pa.array(labels)], schema=schema))

def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("directory")
    parser.add_argument("--rows", type=int, default=500000)
    parser.add_argument("--formats", default="npy,npz,hdf5,parquet")
    args = parser.parse_args()
    os.makedirs(args.directory, exist_ok=True)
    writers = {"npy": write_npy, "npz": write_npz, "hdf5": write_hdf5, "parquet": write_parquet}
    for name in args.formats.split(","):
        writers[name](args.directory, args.rows)
        print(f"make_big_data.py: wrote {name} ({args.rows} rows × {WIDTH} float32) in {args.directory}", flush=True)

if __name__ == "__main__":
    main()
