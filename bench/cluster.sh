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
# Prints a table (samples/s, efficiency = two hosts / one host, ratio to DDP's best hook) and writes
# bench/results/cluster.json. Needs PyTorch in $BENCH_VENV (default /tmp/benchvenv) unless --plexus-only.
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
venv=${BENCH_VENV:-/tmp/benchvenv}
python=$venv/bin/python
binary=${PLEXUS_BINARY:-$root/.build/release/plexus}
config=$root/bench/mlp-784-512-256-10.yaml
out=$root/bench/results
mkdir -p "$out"
mpirun_root_flags
tmp=$(mktemp -d /tmp/plexus-cluster.XXXXXX)
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
OMP_NUM_THREADS=1 $python $root/bench/torch_mlp.py --threads 1 --steps $steps --batch $1 --hook $2" \
            > "$tmp/ddp$i.out" 2> "$tmp/ddp$i.err" &
    done
    wait
    grep '^{' "$tmp/ddp1.out" || { echo "DDP failed: $(tail -3 "$tmp/ddp1.err")" >&2; return 1; }
}

echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) CPUs; $rounds round(s), $steps steps"
# Each host reports itself alone on its node (no shared memory between the simulated hosts).
alone=$(netns_mpirun "sh -c 'echo \$OMPI_COMM_WORLD_LOCAL_SIZE'" | sort -u)
[ "$alone" = 1 ] || { echo "bench/cluster.sh: ranks share a node (OMPI_COMM_WORLD_LOCAL_SIZE=$alone)" >&2; exit 1; }
for round in $(seq 1 "$rounds"); do
    # One host, one core: the reference for efficiency.
    record one-host plexus default 128 "$(taskset -c 0 "$binary" bench step "$config" --steps "$steps" --warmup 20 --json \
        --set training.threads=1 --set training.batch_size=128)"
    [ "$plexus_only" = 1 ] || record one-host pytorch none 128 "$(OMP_NUM_THREADS=1 taskset -c 0 "$python" bench/torch_mlp.py \
        --threads 1 --steps "$steps" --batch 128)"
    for link in $links; do
        netns_link "$link"
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

python3 - "$results" "$out/cluster.json" <<'PY'
import json, sys
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
PY
