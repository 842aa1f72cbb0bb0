#!/usr/bin/env bash
# Scaling out over a simulated Ethernet cluster: 2 hosts (network namespaces, each pinned to its own core, its
# own hostname, TCP only) joined by a link shaped to 1 Gbit/s, 10 Gbit/s or left unshaped, against one host with
# one core. Plexus (`plexus bench step`) and PyTorch DDP over gloo (bench/torch_mlp.py, with its compression
# hooks) run the benchmark net (784-512-256-10, Adam) side by side, alternating, at 128 rows per rank (global
# batch 256) and at a fixed global batch of 128. Root only (namespaces, tc).
#
#   bench/cluster.sh [--links "none 10gbit 1gbit"] [--steps N] [--rounds N] [--plexus-only]
#                    [--variant NAME='--set k=v ...']...    (plexus settings to compare; default: one, "default")
#
# Prints a table (samples/s, efficiency = two hosts / one host, ratio to DDP's best hook), the links' measured
# latency α and time per byte β (a line fitted to `plexus bench allreduce` between the hosts), and a model of
# 4-64 nodes at 1/10/100 Gbit/s built from them (docs/benchmarks.md); writes bench/results/cluster.json. PyTorch comes
# from bench/python's environment (made on first use), not needed with --plexus-only.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
source "$root/launch/common.sh"
source "$root/Tests/scripts/fixtures/netns_hosts.sh"
[ "$(id -u)" = 0 ] || { echo "bench/cluster.sh: needs root (network namespaces, tc)" >&2; exit 2; }
links="none 10gbit 1gbit" steps=200 rounds=1 plexus_only=0
variants=() variant_names=()
while [ $# -gt 0 ]; do
    case "$1" in
        --links) links=$2; shift 2 ;;
        --steps) steps=$2; shift 2 ;;
        --rounds) rounds=$2; shift 2 ;;
        --plexus-only) plexus_only=1; shift ;;
        --variant) variant_names+=("${2%%=*}"); variants+=("${2#*=}"); shift 2 ;;
        *) echo "bench/cluster.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
[ ${#variants[@]} -gt 0 ] || { variant_names=(default); variants=(""); }
python=python3
[ "$plexus_only" = 1 ] || python=$("$root/bench/python" --path)
binary=${PLEXUS_BINARY:-$root/.build/release/plexus}
config=$root/bench/mlp-784-512-256-10.yaml
out=$root/bench/results
mkdir -p "$out"
mpirun_root_flags
tmp=$(mktemp -d)
chmod 755 "$tmp"
trap 'netns_hosts_down; rm -rf "$tmp"' EXIT
netns_hosts_up 2 "$tmp"
results="$tmp/results.jsonl"

record() {  # record LINK WHO VARIANT GLOBAL JSON-LINE
    python3 -c 'import json,sys; d=json.loads(sys.argv[5]); print(json.dumps({"link": sys.argv[1], "who": sys.argv[2], "variant": sys.argv[3], "global_batch": int(sys.argv[4]), "samples_per_second": d["samples_per_second"], "detail": d}))' \
        "$@" >> "$results"
}

plexus_step() {  # plexus_step GLOBAL SETTINGS: two hosts
    netns_mpirun "$binary bench step $config --steps $steps --warmup 20 --json --set training.threads=1 \
--set training.batch_size=$1 $2" | grep '^{'
}

ddp_step() {  # ddp_step GLOBAL HOOK: two hosts, one process each
    local i
    for i in 2 1; do
        netns_run "$i" "RANK=$((i - 1)) WORLD_SIZE=2 MASTER_ADDR=$netns_net.1 MASTER_PORT=29533 GLOO_SOCKET_IFNAME=eth0 \
OMP_NUM_THREADS=1 env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $python $root/bench/torch_mlp.py --threads 1 --steps $steps --batch $1 --hook $2" \
            > "$tmp/ddp$i.out" 2> "$tmp/ddp$i.err" &
    done
    wait
    grep '^{' "$tmp/ddp1.out" || { echo "DDP failed: $(tail -3 "$tmp/ddp1.err")" >&2; return 1; }
}

bench/machine
echo "$rounds round(s), $steps steps"
# Each host reports itself alone on its node (no shared memory between the simulated hosts).
alone=$(netns_mpirun "sh -c 'echo \$OMPI_COMM_WORLD_LOCAL_SIZE'" | sort -u)
[ "$alone" = 1 ] || { echo "bench/cluster.sh: ranks share a node (OMPI_COMM_WORLD_LOCAL_SIZE=$alone)" >&2; exit 1; }
for round in $(seq 1 "$rounds"); do
    # One host, one core: the reference for efficiency.
    record one-host plexus default 128 "$(taskset -c 0 "$binary" bench step "$config" --steps "$steps" --warmup 20 --json \
        --set training.threads=1 --set training.batch_size=128)"
    [ "$plexus_only" = 1 ] || record one-host pytorch none 128 "$(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OMP_NUM_THREADS=1 taskset -c 0 "$python" bench/torch_mlp.py \
        --threads 1 --steps "$steps" --batch 128)"
    for link in $links; do
        netns_link "$link"
        [ "$round" != 1 ] || netns_mpirun "$binary bench allreduce --json" | grep '^\[' > "$out/allreduce-$link.json"
        for global in 256 128; do
            for v in "${!variants[@]}"; do
                record "$link" plexus "${variant_names[$v]}" "$global" "$(plexus_step "$global" "${variants[$v]}")"
            done
            if [ "$plexus_only" = 0 ]; then
                for hook in none fp16 bf16 powersgd; do
                    record "$link" pytorch "$hook" "$global" "$(ddp_step "$global" "$hook")"
                done
            fi
        done
    done
done
netns_link none

python3 - "$results" "$out/cluster.json" "$out" $links <<'PY'
import glob, json, os, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
json.dump(rows, open(sys.argv[2], "w"), indent=1)
def best(**kw):
    values = [r["samples_per_second"] for r in rows if all(r[k] == v for k, v in kw.items())]
    return max(values) if values else None
one_plexus = best(link="one-host", who="plexus")
one_torch = best(link="one-host", who="pytorch")
print(f"one host, one core, batch 128: plexus {one_plexus:,.0f} samples/s" + (f", PyTorch {one_torch:,.0f}" if one_torch else ""))
print(f"{'link':8} {'global':>6} {'who':8} {'variant':12} {'samples/s':>10} {'vs one host':>11} {'plexus/DDP best':>15}")
for link in dict.fromkeys(r["link"] for r in rows if r["link"] != "one-host"):
    for global_batch in (256, 128):
        ddp_best = best(link=link, who="pytorch", global_batch=global_batch)
        for r in rows:
            if r["link"] != link or r["global_batch"] != global_batch: continue
            key = dict(link=link, who=r["who"], variant=r["variant"], global_batch=global_batch)
            value = best(**key)
            if value != r["samples_per_second"]: continue  # print each (who, variant) once: its best round
            one = one_plexus if r["who"] == "plexus" else one_torch
            ratio = f"{value / ddp_best:.2f}x" if (r["who"] == "plexus" and ddp_best) else ""
            print(f"{link:8} {global_batch:>6} {r['who']:8} {r['variant']:12} {value:>10,.0f} {value / one:>10.2f}x {ratio:>15}")
    print()

# Latency α and time per byte β of each link, from `plexus bench allreduce` (MPI_Allreduce) between the 2 hosts.
# At 2 ranks OpenMPI's allreduce moves every byte twice over the link (reduce to one rank, then broadcast: the
# time per byte is twice the rate, 58.7 MB/s at 1gbit), so β is half its slope over large messages; α is what is
# left of the smallest message's time after its bytes, halved (one message each way).
links = {}
for link in sys.argv[4:]:
    path = os.path.join(sys.argv[3], f"allreduce-{link}.json")
    if not os.path.exists(path): continue
    points = [(p["bytes"], p["microseconds"] * 1e-6) for p in json.load(open(path))]
    large = [(x, y) for x, y in points if x >= 256 << 10 and x <= 16 << 20]
    n = len(large); mx = sum(x for x, _ in large) / n; my = sum(y for _, y in large) / n
    slope = sum((x - mx) * (y - my) for x, y in large) / sum((x - mx) ** 2 for x, _ in large)
    beta = slope / 2
    alpha = max((points[0][1] - 2 * points[0][0] * beta) / 2, 0)
    links[link] = (alpha, beta)
    print(f"link {link:7}: alpha {alpha * 1e6:7.1f} us, beta {beta * 1e9:6.3f} ns/byte ({1 / beta / 1e6:7.1f} MB/s)")
if not links or not one_plexus: sys.exit(0)

# The model: every node computes 128 rows (a step of t_c, measured on one host), then the reduction's
# messages cross the network as a ring allreduce, T = m·2(N-1)·α + 2(N-1)/N·bytes·β, plus the variant's own
# overhead (compression arithmetic, what overlap does not hide), fitted from the measured 2-host points.
P = 784 * 512 + 512 + 512 * 256 + 256 + 256 * 10 + 10
r = 4
sizes = {"none": (1, 4 * P), "bf16": (1, 2 * P),
         "powersgd": (2, 4 * ((512 + 256) * r + 256 * 10 + 10 + 512 + 256 + (784 + 512) * r))}
t_c = 128 / one_plexus
def comm(nodes, variant, alpha, beta):
    messages, size = sizes[variant]
    return messages * 2 * (nodes - 1) * alpha + 2 * (nodes - 1) / nodes * size * beta
overhead = {}
kinds = {"default": "none", "float": "none", "bf16": "bf16", "powersgd": "powersgd"}
for r_ in rows:
    if r_["who"] != "plexus" or r_["global_batch"] != 256 or r_["link"] not in links: continue
    variant = kinds.get(r_["variant"])
    if variant is None: continue
    step = 256 / r_["samples_per_second"]
    overhead.setdefault(variant, []).append(step - t_c - comm(2, variant, *links[r_["link"]]))
print(f"\nmodel: t_c {t_c * 1e3:.2f} ms per 128-row step; overhead per step (fitted): "
      + ", ".join(f"{v} {sum(o) / len(o) * 1e3:.2f} ms" for v, o in overhead.items()))
alpha_model = max(a for a, _ in links.values())
print(f"{'link':>9} {'variant':9} " + " ".join(f"{n:>13}" for n in (2, 4, 8, 16, 32, 64)) + "   (samples/s, efficiency)")
for rate in (1, 10, 100):
    beta = 8 / (rate * 1e9)
    for variant, o in overhead.items():
        cells = []
        for nodes in (2, 4, 8, 16, 32, 64):
            step = t_c + max(0.0, sum(o) / len(o)) + comm(nodes, variant, alpha_model, beta)
            cells.append(f"{nodes * 128 / step / 1e3:6.0f}k {t_c / step:5.2f}")
        print(f"{rate:>4} Gb/s {variant:9} " + " ".join(f"{c:>13}" for c in cells))
PY
