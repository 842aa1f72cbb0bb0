#!/usr/bin/env python3
"""PyTorch peer of `plexus bench step bench/mlp-784-512-256-10.yaml`.

MLP 784-512-256-10 (ReLU), Adam lr 1e-3, cross-entropy, global batch 128, Fashion-MNIST preloaded as a
float32 tensor scaled to [0, 1], a fresh permutation every epoch. Prints one JSON line:
{"framework", "cpu_capability", "kernels", "world_size", "threads", "samples_per_second", "steps"}; "kernels" is what
threadpoolctl reports for the process's BLAS and OpenMP libraries (run it with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE
unset, so that OpenBLAS picks its best kernel: bench/run_all.sh and bench/kernel_targets.sh do).

One process:  torch_mlp.py --threads 1     (torch.set_num_threads)
DDP (gloo):   torchrun --nproc_per_node=2 torch_mlp.py --threads 1   (each rank batch 128/world)
DDP across hosts: RANK/WORLD_SIZE/MASTER_ADDR/MASTER_PORT in the environment of each process (bench/cluster.sh).
bf16 mixed precision:  torch_mlp.py --threads 1 --autocast bf16   (forward and loss under torch.autocast("cpu",
bfloat16): the Linear layers' matmuls read bf16, master weights and Adam stay float32; the peer of
`--set training.precision=bf16`)
Gradient compression hooks (DDP only): --hook fp16 | bf16 | powersgd [--powersgd-rank R] (PowerSGD with error
feedback and warm start, compressing from iteration --start-powersgd-iter, within the untimed warm-up by default).
"""
import argparse, gzip, json, os, time
import numpy as np
import torch
import torch.nn as nn

def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)

def fashion_mnist(directory):
    """The training images (float32 in [0, 1], one row each) and labels."""
    images = torch.from_numpy(read_idx(os.path.join(directory, "train-images-idx3-ubyte.gz")).reshape(-1, 784).astype(np.float32) / 255)
    labels = torch.from_numpy(read_idx(os.path.join(directory, "train-labels-idx1-ubyte.gz")).astype(np.int64))
    return images, labels

def kernels():
    """What threadpoolctl reports for the BLAS and OpenMP libraries loaded in this process, e.g.
    'openblas 0.3.31 Haswell x1; mkl 2025.2 x1' (empty without threadpoolctl)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return ""
    return "; ".join(f"{i.get('internal_api')} {i.get('version')}" + (f" {i['architecture']}" if i.get("architecture") else "")
                     + f" x{i.get('num_threads')}" for i in threadpool_info())

def benchmark_net():
    """The benchmark net 784-512-256-10 with seed 1's initial weights."""
    torch.manual_seed(1)
    return nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(), nn.Linear(256, 10))

def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--batch", type=int, default=128, help="global batch")
    parser.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    parser.add_argument("--autocast", choices=["none", "bf16"], default="none")
    parser.add_argument("--hook", choices=["none", "fp16", "bf16", "powersgd"], default="none")
    parser.add_argument("--powersgd-rank", type=int, default=4)
    parser.add_argument("--start-powersgd-iter", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    distributed = "WORLD_SIZE" in os.environ and int(os.environ["WORLD_SIZE"]) > 1
    rank, world = 0, 1
    if distributed:
        import torch.distributed as dist
        dist.init_process_group("gloo")
        rank, world = dist.get_rank(), dist.get_world_size()
    images, labels = fashion_mnist(args.data)
    model = benchmark_net()
    if distributed:
        model = nn.parallel.DistributedDataParallel(model)
        from torch.distributed.algorithms.ddp_comm_hooks import default_hooks, powerSGD_hook
        if args.hook == "fp16":
            model.register_comm_hook(None, default_hooks.fp16_compress_hook)
        elif args.hook == "bf16":
            model.register_comm_hook(None, default_hooks.bf16_compress_hook)
        elif args.hook == "powersgd":
            state = powerSGD_hook.PowerSGDState(process_group=None, matrix_approximation_rank=args.powersgd_rank,
                                                start_powerSGD_iter=args.start_powersgd_iter,
                                                use_error_feedback=True, warm_start=True)
            model.register_comm_hook(state, powerSGD_hook.powerSGD_hook)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_function = nn.CrossEntropyLoss()
    local = args.batch // world
    steps_per_epoch = len(images) // args.batch
    generator = torch.Generator().manual_seed(1)
    order = torch.randperm(len(images), generator=generator)
    def step(index):
        nonlocal order
        position = index % steps_per_epoch
        if position == 0 and index > 0:
            order = torch.randperm(len(images), generator=generator)
        rows = order[position * args.batch + rank * local: position * args.batch + (rank + 1) * local]
        x, y = images[rows], labels[rows]
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.autocast == "bf16"):
            loss = loss_function(model(x), y)
        loss.backward()
        optimizer.step()
        return loss
    for i in range(args.warmup):
        step(i)
    if distributed:
        dist.barrier()
    start = time.perf_counter()
    for i in range(args.warmup, args.warmup + args.steps):
        step(i)
    if distributed:
        dist.barrier()
    seconds = time.perf_counter() - start
    if rank == 0:
        print(json.dumps({"framework": f"pytorch {torch.__version__}",
                          "cpu_capability": torch.backends.cpu.get_cpu_capability(), "kernels": kernels(),
                          "world_size": world, "threads": args.threads,
                          "hook": args.hook if distributed else "none", "autocast": args.autocast, "global_batch": args.batch,
                          "steps": args.steps, "samples_per_second": round(args.steps * args.batch / seconds, 1)}), flush=True)
    if distributed:
        dist.destroy_process_group()

if __name__ == "__main__":
    main()
