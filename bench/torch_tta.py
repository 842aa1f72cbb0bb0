#!/usr/bin/env python3
"""PyTorch's time to a test accuracy on the default Fashion-MNIST config: the peer of bench/time_to_accuracy.sh.

The net and recipe of Configs/fashion-mnist.yaml: MLP 784-256-128-10 (ReLU), AdamW lr 1e-3 weight decay 0.01,
cosine schedule after 200 linear warmup steps over 15 epochs, global batch 128 split over the ranks, a new
shuffle each epoch; test accuracy after every epoch. With WORLD_SIZE > 1 it runs DistributedDataParallel over
gloo with --mode plain (every step), powersgd (PowerSGD hook, rank 4) or postlocal (PostLocalSGDOptimizer,
model averaging every --period steps after --warmup-steps synchronous ones). Stops at the first epoch whose test
accuracy reaches --target. Prints one JSON line: {"mode", "world", "train_seconds", "epochs", "test_accuracy",
"samples_per_second", "reached"} (train_seconds from the first step, evaluations included).

Usage: torch_tta.py [--mode plain|powersgd|postlocal] [--target 0.885] [--epochs 15] [--period 8]
"""
import argparse, json, math, os, time
import torch
import torch.nn as nn
from torch_mlp import fashion_mnist, read_idx

def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=["plain", "powersgd", "postlocal"], default="plain")
    parser.add_argument("--target", type=float, default=0.885)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--period", type=int, default=8)
    parser.add_argument("--warmup-steps", type=int, default=0)
    parser.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    args = parser.parse_args()
    torch.set_num_threads(1)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = 0
    if world > 1:
        import torch.distributed as dist
        dist.init_process_group("gloo")
        rank = dist.get_rank()
    images, labels = fashion_mnist(args.data)
    test_images = torch.from_numpy(read_idx(os.path.join(args.data, "t10k-images-idx3-ubyte.gz")).reshape(-1, 784).copy()).float() / 255
    test_labels = torch.from_numpy(read_idx(os.path.join(args.data, "t10k-labels-idx1-ubyte.gz")).copy()).long()
    torch.manual_seed(1)
    net = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 10))
    model = net
    steps_per_epoch = math.ceil(len(labels) / args.batch)
    if world > 1:
        model = nn.parallel.DistributedDataParallel(net)
        from torch.distributed.algorithms.ddp_comm_hooks import powerSGD_hook, post_localSGD_hook
        if args.mode == "powersgd":
            state = powerSGD_hook.PowerSGDState(process_group=None, matrix_approximation_rank=4, start_powerSGD_iter=2)
            model.register_comm_hook(state, powerSGD_hook.powerSGD_hook)
        elif args.mode == "postlocal":
            # One host per rank: each rank's own group is its node (the default subgroups need CUDA).
            own = [dist.new_group([r]) for r in range(world)][rank]
            state = post_localSGD_hook.PostLocalSGDState(process_group=None, subgroup=own,
                                                         start_localSGD_iter=max(1, args.warmup_steps))
            model.register_comm_hook(state, post_localSGD_hook.post_localSGD_hook)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    if world > 1 and args.mode == "postlocal":
        from torch.distributed.optim import PostLocalSGDOptimizer
        from torch.distributed.algorithms.model_averaging.averagers import PeriodicModelAverager
        optimizer = PostLocalSGDOptimizer(optim=optimizer, averager=PeriodicModelAverager(
            period=args.period, warmup_steps=max(1, args.warmup_steps)))
    total = steps_per_epoch * args.epochs
    def rate(step):  # plexus's cosine: linear warmup over 200 steps, then cosine to 0 at the last step
        if step < 200: return (step + 1) / 200
        return 0.5 * (1 + math.cos(math.pi * (step - 200) / max(1, total - 200)))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer.optim if hasattr(optimizer, "optim") else optimizer, rate)
    loss_function = nn.CrossEntropyLoss()
    start, samples, step, accuracy, reached, epochs = time.perf_counter(), 0, 0, 0.0, False, 0
    for epoch in range(args.epochs):
        order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(epoch))
        model.train()
        for index in range(steps_per_epoch):
            batch = order[index * args.batch:(index + 1) * args.batch]
            mine = batch.tensor_split(world)[rank]
            optimizer.zero_grad()
            loss = loss_function(model(images[mine]), labels[mine])
            loss.backward()
            optimizer.step()
            scheduler.step()
            samples += len(batch)
            step += 1
        with torch.no_grad():
            accuracy = (net(test_images).argmax(1) == test_labels).float().mean().item()
        epochs = epoch + 1
        if accuracy >= args.target:
            reached = True
            break
    seconds = time.perf_counter() - start
    if rank == 0:
        print(json.dumps({"mode": args.mode if world > 1 else "one host", "world": world, "train_seconds": round(seconds, 3),
                          "epochs": epochs, "test_accuracy": round(accuracy, 4), "reached": reached,
                          "samples_per_second": round(samples / seconds, 1)}), flush=True)

if __name__ == "__main__":
    main()
