#!/usr/bin/env python3
"""A plain PyTorch training loop, as a user would write it: the second peer of `plexus bench step`.

Same model and data as bench/torch_mlp.py (MLP 784-512-256-10, ReLU, Adam lr 1e-3, cross-entropy, batch 128,
Fashion-MNIST preloaded as float32 in [0, 1]), but through a DataLoader over a TensorDataset with shuffle=True,
one full epoch after another. Prints one JSON line with the best epoch's samples/s:
{"framework", "cpu_capability", "kernels", "threads", "epochs", "samples_per_second", "epoch_samples_per_second"}
("kernels": what threadpoolctl reports, see torch_mlp.py).

Usage: torch_epoch.py --threads 1 [--epochs 3]
"""
import argparse, json, time
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset
from torch_mlp import benchmark_net, fashion_mnist, kernels

def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    images, labels = fashion_mnist(args.data)
    model = benchmark_net()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_function = nn.CrossEntropyLoss()
    loader = DataLoader(TensorDataset(images, labels), batch_size=args.batch, shuffle=True, drop_last=True)
    rates = []
    for _ in range(args.epochs):
        start, samples = time.perf_counter(), 0
        for x, y in loader:
            optimizer.zero_grad()
            loss = loss_function(model(x), y)
            loss.backward()
            optimizer.step()
            samples += len(y)
        rates.append(samples / (time.perf_counter() - start))
    print(json.dumps({"framework": f"pytorch {torch.__version__} (DataLoader loop)",
                      "cpu_capability": torch.backends.cpu.get_cpu_capability(), "kernels": kernels(), "threads": args.threads,
                      "epochs": args.epochs, "samples_per_second": round(max(rates), 1),
                      "epoch_samples_per_second": [round(r, 1) for r in rates]}), flush=True)

if __name__ == "__main__":
    main()
