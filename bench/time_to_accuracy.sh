#!/usr/bin/env bash
# Time to a test accuracy, as users feel scaling out: the default Fashion-MNIST config (Configs/fashion-mnist.yaml)
# trained until its first epoch-end test accuracy ≥ the target, on one host (one core) and on 2 simulated hosts
# (network namespaces, one core each, TCP, tbf-shaped links, as bench/cluster.sh) at 1 Gbit/s and 10 Gbit/s, with
# each setting below; then PyTorch DDP over gloo on the same links with plain allreduce, the PowerSGD hook and
# PostLocalSGDOptimizer. Root only (namespaces, tc).
#
#   bench/time_to_accuracy.sh [--links "1gbit 10gbit"] [--target 0.885] [--plexus-only] [--ddp-modes "plain powersgd postlocal"]
#                             [--setting NAME='--set k=v ...']... [--only "NAME ..."]
#
# A run stops once the target is reached (its train_seconds, epochs needed and samples/s are read from
# metrics.jsonl). Prints one line per run and a table: train_seconds to the target, epochs, samples/s, the ratio of
# one host's time to it, and Plexus's best against DDP's best per link; writes bench/results/time_to_accuracy.json.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
source "$root/launch/common.sh"
source "$root/Tests/scripts/fixtures/netns_hosts.sh"
[ "$(id -u)" = 0 ] || { echo "bench/time_to_accuracy.sh: needs root (network namespaces, tc)" >&2; exit 2; }
links="1gbit 10gbit" target=0.885 plexus_only=0 ddp_modes="plain powersgd postlocal" only=""
names=() settings=()
while [ $# -gt 0 ]; do
    case "$1" in
        --links) links=$2; shift 2 ;;
        --target) target=$2; shift 2 ;;
        --plexus-only) plexus_only=1; shift ;;
        --ddp-modes) ddp_modes=$2; shift 2 ;;
        --only) only=$2; shift 2 ;;
        --setting) names+=("${2%%=*}"); settings+=("${2#*=}"); shift 2 ;;
        *) echo "bench/time_to_accuracy.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
if [ ${#names[@]} = 0 ]; then
    large="--set training.batch_size=256 --set schedule.warmup_steps=200"
    names=(every-step powersgd sync8 sync32-outer b256 b256-sync8 b256-lamb)
    settings=("" "--set distributed.gradient_compression=powersgd"
        "--set distributed.sync_every=8"
        "--set distributed.sync_every=32 --set distributed.outer_optimizer.name=nesterov \
--set distributed.outer_optimizer.lr=0.7 --set distributed.outer_optimizer.momentum=0.9"
        "$large --set optimizer.lr=0.002" "$large --set optimizer.lr=0.002 --set distributed.sync_every=8"
        "$large --set optimizer.name=lamb --set optimizer.lr=0.004")
fi
python=python3
[ "$plexus_only" = 1 ] || python=$("$root/bench/python" --path)
binary=${PLEXUS_BINARY:-$root/.build/release/plexus}
config=$root/Configs/fashion-mnist.yaml
out=$root/bench/results
mkdir -p "$out"
mpirun_root_flags
tmp=$(mktemp -d)
chmod 755 "$tmp"
trap 'netns_hosts_down; rm -rf "$tmp"' EXIT
netns_hosts_up 2 "$tmp"
results="$tmp/results.jsonl"

reached() {  # reached METRICS: the first record at the target, as JSON, or nothing
    python3 - "$1" "$target" <<'PY'
import json, sys
try: lines = open(sys.argv[1]).read().split("\n")
except OSError: sys.exit(1)
for line in lines:
    if not line.strip(): continue
    r = json.loads(line)
    if r.get("test_accuracy", 0) >= float(sys.argv[2]):
        print(json.dumps({"train_seconds": r["train_seconds"], "epochs": r["epoch"], "test_accuracy": r["test_accuracy"],
                          "samples_per_second": r["samples_per_second"], "reached": True}))
        sys.exit(0)
sys.exit(1)
PY
}

at_target() {  # at_target RECORD: whether a metrics.jsonl record's test_accuracy is at the target (builtins only)
    [[ $1 =~ \"test_accuracy\":([0-9.eE+-]+) ]] || return 1
    local value goal
    printf -v value '%.6f' "${BASH_REMATCH[1]}"
    printf -v goal '%.6f' "$target"
    (( 10#${value/./} >= 10#${goal/./} ))
}

plexus_run() {  # plexus_run LINK NAME SETTINGS: trains until the target, records the result
    local link=$1 name=$2 run="$tmp/run-$1-$2" pid line
    rm -rf "$run"
    set -m  # the run in a process group of its own, so that stopping it stops mpirun and its ranks
    if [ "$link" = one-host ]; then
        taskset -c 0 "$binary" train "$config" --run-dir "$run" --progress plain --set training.threads=1 $3 \
            > "$tmp/log" 2>&1 & pid=$!
    else
        netns_mpirun "$binary train $config --run-dir $run --progress plain --set training.threads=1 \
--set distributed.shared_memory=false $3" > "$tmp/log" 2>&1 & pid=$!
    fi
    # Watched with shell builtins only (a read that times out is the pause): on the two hosts' cores a process
    # started every 0.2 s would take time from the ranks being timed.
    local seen=0 records=() pause
    exec {pause}<> <(:)
    while kill -0 "$pid" 2>/dev/null; do
        [ -e "$run/metrics.jsonl" ] && mapfile -t records < "$run/metrics.jsonl"
        # A record counts once complete (its closing brace written).
        while [ "$seen" -lt ${#records[@]} ] && [[ ${records[seen]} == *"}" ]]; do
            seen=$((seen + 1))
            at_target "${records[seen - 1]}" && break 2
        done
        read -r -t 0.2 -u "$pause" || true
    done
    exec {pause}<&-
    kill -- "-$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    set +m
    line=$(reached "$run/metrics.jsonl") || line=""
    [ -n "${line:-}" ] || line=$(python3 -c 'import json,sys; r=[json.loads(l) for l in open(sys.argv[1]) if l.strip()][-1]; print(json.dumps({"train_seconds": r["train_seconds"], "epochs": r["epoch"], "test_accuracy": r["test_accuracy"], "samples_per_second": r["samples_per_second"], "reached": False}))' "$run/metrics.jsonl" 2>/dev/null) \
        || { echo "plexus $link $name failed: $(tail -3 "$tmp/log")" >&2; return 0; }
    echo "plexus  $link $name: $line"
    python3 -c 'import json,sys; d=json.loads(sys.argv[4]); d.update(link=sys.argv[1], who="plexus", setting=sys.argv[2]); print(json.dumps(d))' \
        "$link" "$name" "" "$line" >> "$results"
}

ddp_run() {  # ddp_run LINK MODE: two hosts, one process each
    local i
    for i in 2 1; do
        netns_run "$i" "RANK=$((i - 1)) WORLD_SIZE=2 MASTER_ADDR=$netns_net.1 MASTER_PORT=29534 GLOO_SOCKET_IFNAME=eth0 \
OMP_NUM_THREADS=1 env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $python $root/bench/torch_tta.py --mode $2 --target $target" \
            > "$tmp/ddp$i.out" 2> "$tmp/ddp$i.err" &
    done
    wait
    local line
    line=$(grep '^{' "$tmp/ddp1.out") || { echo "DDP $2 failed: $(tail -3 "$tmp/ddp1.err")" >&2; return 0; }
    echo "pytorch $1 $2: $line"
    python3 -c 'import json,sys; d=json.loads(sys.argv[3]); d.update(link=sys.argv[1], who="pytorch", setting=sys.argv[2]); print(json.dumps(d))' \
        "$1" "$2" "$line" >> "$results"
}

bench/machine
echo "target test accuracy $target; load before: $(cut -d' ' -f1-3 /proc/loadavg)"
plexus_run one-host default ""
if [ "$plexus_only" = 0 ]; then
    line=$(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OMP_NUM_THREADS=1 taskset -c 0 "$python" bench/torch_tta.py --target "$target")
    echo "pytorch one-host: $line"
    python3 -c 'import json,sys; d=json.loads(sys.argv[1]); d.update(link="one-host", who="pytorch", setting="default"); print(json.dumps(d))' "$line" >> "$results"
fi
for link in $links; do
    netns_link "$link"
    for i in "${!names[@]}"; do
        [ -z "$only" ] || [[ " $only " == *" ${names[$i]} "* ]] || continue
        plexus_run "$link" "${names[$i]}" "${settings[$i]}"
    done
    if [ "$plexus_only" = 0 ]; then
        for mode in $ddp_modes; do ddp_run "$link" "$mode"; done
    fi
done
netns_link none
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"

python3 - "$results" "$out/time_to_accuracy.json" "$target" <<'PY'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
json.dump(rows, open(sys.argv[2], "w"), indent=1)
one = {r["who"]: r["train_seconds"] for r in rows if r["link"] == "one-host" and r["reached"]}
print(f"\ntime to test accuracy {sys.argv[3]} (train_seconds: from the first step, evaluations included)")
print(f"{'link':8} {'who':8} {'setting':14} {'seconds':>8} {'epochs':>6} {'samples/s':>10} {'one host/this':>13}")
for r in rows:
    seconds = f"{r['train_seconds']:.2f}" if r["reached"] else f">{r['train_seconds']:.1f}"
    speedup = f"{one[r['who']] / r['train_seconds']:.2f}x" if r["reached"] and r["who"] in one else "-"
    print(f"{r['link']:8} {r['who']:8} {r['setting']:14} {seconds:>8} {r['epochs']:>6} {r['samples_per_second']:>10,.0f} {speedup:>13}")
for link in dict.fromkeys(r["link"] for r in rows if r["link"] != "one-host"):
    best = {who: min([r for r in rows if r["link"] == link and r["who"] == who and r["reached"]],
                     key=lambda r: r["train_seconds"], default=None) for who in ("plexus", "pytorch")}
    if best["plexus"]:
        line = f"{link}: plexus best {best['plexus']['setting']} {best['plexus']['train_seconds']:.2f} s"
        if best["pytorch"]:
            line += (f", DDP best {best['pytorch']['setting']} {best['pytorch']['train_seconds']:.2f} s"
                     f" ({best['pytorch']['train_seconds'] / best['plexus']['train_seconds']:.2f}x)")
        print(line)
PY

# The model for N nodes with periodic synchronization (every H steps, 2(N−1)/N·4P bytes each way per round as a ring
# allreduce, plus 2(N−1) latencies), from what this run measured: t₁, one host's step of the global batch; o, the
# per-step overhead left over at 2 nodes; E₁ and E₂, epochs to the target at 1 and 2 nodes, extrapolated linearly
# in N when E₂ > E₁ (more nodes' drift between rounds costs epochs), else E₂ for every N ≥ 2; the link's latency α is
# taken as 50 µs. Prints bytes per step and the time to the target per N,
# and the N beyond which it stops improving.
python3 - "$out/time_to_accuracy.json" <<'PY'
import json, re, sys
rows = json.load(open(sys.argv[1]))
P = 784 * 256 + 256 + 256 * 128 + 128 + 128 * 10 + 10
steps_per_epoch, batch = 469, 128
one = next((r for r in rows if r["link"] == "one-host" and r["who"] == "plexus" and r["reached"]), None)
if not one: sys.exit(0)
t1 = batch / one["samples_per_second"]
print(f"\nmodel: {P} parameters; one host {t1 * 1e3:.2f} ms per step of {batch} rows, {one['epochs']} epochs to the target")
for r in rows:
    m = re.fullmatch(r"sync(\d+)", r["setting"])
    if r["who"] != "plexus" or not m or not r["reached"]: continue
    H, link = int(m.group(1)), r["link"]
    beta = 8 / (float(link.rstrip("gbit")) * 1e9)
    alpha = 50e-6
    def sync(n): return (2 * (n - 1) / n * 4 * P * beta + 2 * (n - 1) * alpha) / H
    overhead = max(0.0, batch / r["samples_per_second"] - t1 / 2 - sync(2))
    E1, E2 = one["epochs"], r["epochs"]
    cells, best = [], None
    for n in (1, 2, 4, 8, 16, 32, 64):
        step = t1 if n == 1 else t1 / n + overhead + sync(n)
        # Drift between rounds grows with N: epochs grow as measured from 1 to 2 nodes, never shrink below E₂.
        epochs = E1 if n == 1 else E2 + max(0, E2 - E1) * (n - 2)
        seconds = epochs * steps_per_epoch * step
        cells.append(f"{n}: {seconds:5.2f} s")
        if best is None or seconds < best[1]: best = (n, seconds)
    print(f"{link} sync_every {H}: {2 * 4 * P / H / 1e3:.1f} kB per step per node (N≫1); overhead o {overhead * 1e3:.2f} ms; "
          + ", ".join(cells) + f"; stops improving beyond {best[0]} nodes")
PY
