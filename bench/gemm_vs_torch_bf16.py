#!/usr/bin/env python3
"""`plexus bench gemm --precision bf16` against PyTorch's bf16 matmul on the same shapes, layouts and threads.

Usage: bench/python bench/gemm_vs_torch_bf16.py [PLEXUS_BINARY] [--threads 1,2] [--batch ROWS] [--rounds R]
Both sides report the best of 3 timed runs of >= 0.2 s per shape (GFLOP/s = 2mnk / seconds per call); the two sides
are measured R times, alternating, and each keeps its best round. PyTorch multiplies bfloat16 tensors (fp32 sums,
bf16 result: what torch.autocast gives a Linear layer); plexus reads fp32 operands, rounds them to bf16 while packing
and writes fp32. Prints one line per shape and thread count, then the geometric mean and the worst ratio.
"""
import argparse, json, math, subprocess

from gemm_vs_numpy import seconds_per_call

def measure_torch(shapes, threads):
    import torch
    torch.set_num_threads(threads)
    generator = torch.Generator().manual_seed(0)
    out = []
    for s in shapes:
        m, n, k, layout = s["m"], s["n"], s["k"], s["layout"]
        a = (torch.rand((k, m) if layout[0] == "T" else (m, k), generator=generator) * 2 - 1).to(torch.bfloat16)
        b = (torch.rand((n, k) if layout[1] == "T" else (k, n), generator=generator) * 2 - 1).to(torch.bfloat16)
        opa = a.t() if layout[0] == "T" else a
        opb = b.t() if layout[1] == "T" else b
        best = seconds_per_call(lambda: torch.matmul(opa, opb))
        out.append(dict(s, gflops=2.0 * m * n * k / best / 1e9))
    return out, f"pytorch {torch.__version__} {torch.backends.cpu.get_cpu_capability()}"

def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("binary", nargs="?", default=".build/release/plexus")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    best_plexus, best_torch, peer = {}, {}, ""
    for _ in range(args.rounds):
        text = subprocess.run([args.binary, "bench", "gemm", "--precision", "bf16", "--json", "--threads", args.threads,
                               "--batch", str(args.batch)], check=True, capture_output=True, text=True).stdout
        rows = json.loads(text)
        for r in rows:
            key = (r["product"], r["layout"], r["m"], r["n"], r["k"], r["threads"])
            best_plexus[key] = max(best_plexus.get(key, 0), r["gflops"])
        for threads in sorted({r["threads"] for r in rows}):
            shapes = [r for r in rows if r["threads"] == threads]
            measured, peer = measure_torch(shapes, threads)
            for r in measured:
                key = (r["product"], r["layout"], r["m"], r["n"], r["k"], r["threads"])
                best_torch[key] = max(best_torch.get(key, 0), r["gflops"])
    print(f"peer: {peer}")
    print("product           layout      m      n      k  threads  plexus  torch  ratio")
    ratios = {}
    for key in best_plexus:
        product, layout, m, n, k, threads = key
        ratio = best_plexus[key] / best_torch[key]
        ratios.setdefault(threads, []).append(ratio)
        print(f"{product:16s}  {layout:>6s}{m:7d}{n:7d}{k:7d}{threads:9d}{best_plexus[key]:8.1f}{best_torch[key]:7.1f}{ratio:7.2f}")
    for threads, values in sorted(ratios.items()):
        geomean = math.exp(sum(math.log(v) for v in values) / len(values))
        print(f"{threads} thread(s): plexus/torch geomean {geomean:.2f}, worst {min(values):.2f}")

if __name__ == "__main__":
    main()
