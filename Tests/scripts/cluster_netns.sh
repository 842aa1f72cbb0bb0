#!/usr/bin/env bash
# The short, plexus-only version of bench/cluster.sh: two simulated hosts (network namespaces, each its own
# core and hostname, TCP only) at 1 Gbit/s and unshaped. Each rank must see itself alone on its node, and
# `plexus bench step` must run the between-nodes reductions there — bucketed float, bfloat16 and PowerSGD —
# and report its samples/s. No speed is asserted (timings live in docs/benchmarks.md, from bench/cluster.sh).
# Root only (namespaces, tc); SKIP otherwise.
set -euo pipefail
name=cluster_netns
source "$(dirname "${BASH_SOURCE[0]}")/fixtures/harness.sh"
if [ "$(id -u)" != 0 ]; then echo "SKIP $name: needs root for network namespaces"; exit 0; fi
command -v ip >/dev/null && command -v tc >/dev/null || { echo "SKIP $name: no ip/tc (iproute2)"; exit 0; }
[ -x "$binary" ] || fail "no plexus binary at $binary"
source "$here/fixtures/netns_hosts.sh"
mpirun_root_flags
tmp="$(mktemp -d /tmp/plexus-cluster-test.XXXXXX)"
chmod 755 "$tmp"
trap 'netns_hosts_down; rm -rf "$tmp"' EXIT
netns_hosts_up 2 "$tmp" || fail "cannot create namespaces"

alone=$(netns_mpirun "sh -c 'echo \$OMPI_COMM_WORLD_LOCAL_SIZE'" | sort -u)
[ "$alone" = 1 ] || fail "ranks share a node (OMPI_COMM_WORLD_LOCAL_SIZE=$alone)"
bench_config="$root/bench/mlp-784-512-256-10.yaml"
for link in 1gbit none; do
    netns_link "$link" || fail "cannot shape the link to $link"
    for compression in none bf16 powersgd; do
        out=$(NETNS_TIMEOUT=120 netns_mpirun "$binary bench step $bench_config --steps 10 --warmup 2 --json \
--set training.threads=1 --set distributed.bucket_mb=0 --set distributed.gradient_compression=$compression" 2>"$tmp/err") \
            || fail "$link $compression: bench step failed: $(tail -3 "$tmp/err")"
        rate=$(echo "$out" | grep '^{' | python3 -c 'import json,sys; print(round(json.load(sys.stdin)["samples_per_second"]))') \
            || fail "$link $compression: no JSON result"
        [ "$rate" -gt 0 ] || fail "$link $compression: $rate samples/s"
        echo "$link $compression: $rate samples/s"
    done
done
echo "PASS $name"
