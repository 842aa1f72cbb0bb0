#!/usr/bin/env python3
"""numpy/OpenBLAS sgemm against `plexus bench gemm` on the same shapes, layouts and thread counts.

Usage: bench/gemm_vs_numpy.py [PLEXUS_BINARY] [--threads 1,2] [--batch ROWS] [--plexus-json FILE] [--rounds R]
       [--keep-openblas-overrides]
Each side reports the best of 3 timed runs of >= 0.2 s (GFLOP/s = 2mnk / seconds per call); with --rounds R
both sides are measured R times, alternating, and the best of all rounds is kept (on a shared machine other
processes only ever slow a run down). numpy runs in one subprocess per thread count with OPENBLAS_NUM_THREADS
set before numpy is imported, and without OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE (an environment may set them to force
an older kernel): OpenBLAS picks its best kernel for this CPU, and the kernel threadpoolctl names is printed.
"""
import argparse, json, os, subprocess, sys, time

# Environment variables that force OpenBLAS onto another kernel or cache size; unset for the peer only.
OPENBLAS_OVERRIDES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")

def peer_environment(threads, keep_overrides=False):
    env = {k: v for k, v in os.environ.items() if keep_overrides or k not in OPENBLAS_OVERRIDES}
    env.update(OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    return env

def blas_kernels():
    """What threadpoolctl reports for numpy's BLAS: e.g. 'openblas 0.3.31 SkylakeX, 1 thread(s)'."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "unknown (pip install threadpoolctl)"
    return "; ".join(f"{i.get('internal_api')} {i.get('version')} {i.get('architecture')}, {i.get('num_threads')} thread(s)"
                     for i in threadpool_info() if i.get("user_api") == "blas")

def measure_numpy(shapes):
    import numpy as np
    rng = np.random.default_rng(0)
    out = []
    for s in shapes:
        m, n, k, layout = s["m"], s["n"], s["k"], s["layout"]
        a = rng.uniform(-1, 1, (k, m) if layout[0] == "T" else (m, k)).astype(np.float32)
        b = rng.uniform(-1, 1, (n, k) if layout[1] == "T" else (k, n)).astype(np.float32)
        opa = a.T if layout[0] == "T" else a
        opb = b.T if layout[1] == "T" else b
        c = np.empty((m, n), dtype=np.float32)
        best = seconds_per_call(lambda: np.matmul(opa, opb, out=c))
        out.append(dict(s, gflops=2.0 * m * n * k / best / 1e9))
    return out

def seconds_per_call(call):
    """Best of 3 timed runs of >= 0.2 s (the call count sized by a warm-up), in seconds per call."""
    calls = 1
    while True:
        dt = timed(call, calls)
        if dt >= 0.05:
            calls = max(1, int(calls * 0.2 / dt) + 1); break
        calls *= 4
    return min(timed(call, calls) for _ in range(3)) / calls

def timed(call, calls):
    t = time.perf_counter()
    for _ in range(calls): call()
    return time.perf_counter() - t

def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        shapes = json.loads(sys.stdin.read())
        rows = measure_numpy(shapes)
        print(json.dumps({"blas": blas_kernels(), "rows": rows}))
        return
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser()
    parser.add_argument("plexus", nargs="?", default=os.path.join(here, "..", ".build", "release", "plexus"))
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--plexus-json", help="reuse a saved `plexus bench gemm --json` output")
    parser.add_argument("--json-out", help="write the combined rows here")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--batch", default="128", help="rows per rank (plexus bench gemm --batch)")
    parser.add_argument("--keep-openblas-overrides", action="store_true",
                        help="leave OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE as set (e.g. OpenBLAS's Haswell kernel against "
                             "PLEXUS_KERNEL=avx2)")
    args = parser.parse_args()
    print(f"machine: {cpu_model()}; {os.cpu_count()} CPUs")
    best = lambda old, new: [a if a["gflops"] >= b["gflops"] else b for a, b in zip(old, new)] if old else new
    plexus, numpy_rows = None, {}
    for round in range(args.rounds):
        if args.plexus_json and round == 0:
            plexus = json.load(open(args.plexus_json))
        else:
            plexus = best(plexus, json.loads(subprocess.check_output([args.plexus, "bench", "gemm", "--json", "--threads", args.threads, "--batch", args.batch])))
        for threads in [int(t) for t in args.threads.split(",")]:
            shapes = [dict(m=r["m"], n=r["n"], k=r["k"], layout=r["layout"], product=r["product"]) for r in plexus if r["threads"] == threads]
            child = json.loads(subprocess.run([sys.executable, __file__, "--child"], input=json.dumps(shapes),
                                              env=peer_environment(threads, args.keep_openblas_overrides), capture_output=True, text=True, check=True).stdout)
            if round == 0:
                kernels = sorted({r.get("kernel", "?") for r in plexus if r["threads"] == threads})
                print(f"{threads} thread(s): plexus kernel {', '.join(kernels)}; numpy BLAS {child['blas']}")
            numpy_rows[threads] = best(numpy_rows.get(threads), child["rows"])
    rows = []
    for threads in [int(t) for t in args.threads.split(",")]:
        for p, q in zip([r for r in plexus if r["threads"] == threads], numpy_rows[threads]):
            rows.append(dict(p, numpy_gflops=q["gflops"], ratio=p["gflops"] / q["gflops"]))
    print(f"{'product':16} {'op':>3} {'m':>5} {'n':>5} {'k':>5} {'thr':>3} {'plexus':>8} {'numpy':>8} {'ratio':>6}")
    for r in rows:
        print(f"{r['product']:16} {r['layout']:>3} {r['m']:5} {r['n']:5} {r['k']:5} {r['threads']:3} "
              f"{r['gflops']:8.1f} {r['numpy_gflops']:8.1f} {r['ratio']:6.2f}")
    for threads in sorted({r["threads"] for r in rows}):
        ratios = [r["ratio"] for r in rows if r["threads"] == threads]
        print(f"threads {threads}: min ratio {min(ratios):.2f}, geometric mean {prod(ratios) ** (1 / len(ratios)):.2f}")
    if args.json_out:
        json.dump(rows, open(args.json_out, "w"), indent=1)

def cpu_model():
    """The CPU as lscpu names it: model name, family, model, and whether it has AVX-512 (avx512f)."""
    fields = {}
    try:
        for line in open("/proc/cpuinfo"):
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
    except OSError:
        return "unknown"
    avx512 = "yes" if "avx512f" in fields.get("flags", "").split() else "no"
    return (f"{fields.get('model name', 'unknown')}, family {fields.get('cpu family', '?')}, model {fields.get('model', '?')}, "
            f"avx512f {avx512}")

def prod(values):
    result = 1.0
    for v in values: result *= v
    return result

if __name__ == "__main__":
    main()
