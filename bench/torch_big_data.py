#!/usr/bin/env python3
"""The PyTorch peer of bench/big_data.sh: one epoch of the benchmark net (bench/torch_mlp.py's) over a memory-mapped
.npy pair through a DataLoader with a DistributedSampler (shuffle=True), DDP over gloo, the global batch split
across the ranks. Prints one JSON line from rank 0:
{"framework", "world_size", "threads", "rows", "samples", "samples_per_second", "seconds", "finished"}

Usage: mpirun -np 2 python torch_big_data.py X.npy Y.npy [--batch 256] [--threads 1] [--workers 0] [--max-seconds S]
       torchrun --nproc_per_node=2 torch_big_data.py X.npy Y.npy ...

Under mpirun each rank reads its rank and the world size from OpenMPI's environment and rank 0 hosts the
rendezvous store, so no launcher process holds a copy of PyTorch (under a memory limit for the whole job, that copy
costs as much as a rank). With --max-seconds the epoch stops at the first batch after S seconds, and the figures
are those of the batches trained ("finished": false).
"""
import argparse, json, os, time
import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn
from torch.utils.data import DataLoader, Dataset
from torch.utils.data.distributed import DistributedSampler
from torch_mlp import benchmark_net

class MappedRows(Dataset):
    """Rows of a memory-mapped .npy pair, read one at a time as the sampler asks."""
    def __init__(self, x_path, y_path):
        self.x = np.load(x_path, mmap_mode="r")
        self.y = np.load(y_path, mmap_mode="r")
    def __len__(self):
        return len(self.y)
    def __getitem__(self, index):
        return torch.from_numpy(np.array(self.x[index], dtype=np.float32)), int(self.y[index])

def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("x"); parser.add_argument("y")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--max-seconds", type=float, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if "OMPI_COMM_WORLD_RANK" in os.environ and "RANK" not in os.environ:
        os.environ.update(RANK=os.environ["OMPI_COMM_WORLD_RANK"], WORLD_SIZE=os.environ["OMPI_COMM_WORLD_SIZE"],
                          MASTER_ADDR=os.environ.get("MASTER_ADDR", "127.0.0.1"),
                          MASTER_PORT=os.environ.get("MASTER_PORT", "29517"))
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    torch.manual_seed(1)
    data = MappedRows(args.x, args.y)
    sampler = DistributedSampler(data, shuffle=True, seed=1)
    loader = DataLoader(data, batch_size=args.batch // world, sampler=sampler, num_workers=args.workers, drop_last=True)
    model = nn.parallel.DistributedDataParallel(benchmark_net())
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_function = nn.CrossEntropyLoss()
    sampler.set_epoch(0)
    dist.barrier()
    start, samples, finished = time.perf_counter(), 0, True
    late = torch.zeros(1)
    for x, y in loader:
        optimizer.zero_grad()
        loss_function(model(x), y).backward()
        optimizer.step()
        samples += len(y) * world
        if args.max_seconds is not None:
            # Every rank stops at the same batch: rank 0's clock decides.
            late[0] = 1.0 if rank == 0 and time.perf_counter() - start > args.max_seconds else 0.0
            dist.broadcast(late, 0)
            if late[0] > 0:
                finished = False
                break
    seconds = time.perf_counter() - start
    if rank == 0:
        print(json.dumps({"framework": f"torch {torch.__version__}", "world_size": world, "threads": args.threads,
                          "rows": len(data), "samples": samples, "samples_per_second": samples / seconds,
                          "seconds": seconds, "finished": finished}), flush=True)
    dist.destroy_process_group()

if __name__ == "__main__":
    main()
