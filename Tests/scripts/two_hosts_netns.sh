#!/usr/bin/env bash
# Simulates two hosts with network namespaces and trains across them over TCP, the way a cluster
# without shared memory between ranks runs:
#   namespace pxb-PID   holds a bridge (so nothing is added to the machine's own network)
#   namespace pxh1-PID  10.77.0.1/24 via a veth to the bridge  ("host 1", runs mpirun and rank 0)
#   namespace pxh2-PID  10.77.0.2/24 via a veth to the bridge  ("host 2", rank 1)
# mpirun reaches host 2 through an rsh agent that wraps `ip netns exec`, as it would through ssh.
# Checks: the MPI hello program's ranks see different addresses and their allreduce crosses the
# link; then plexus trains the small config across the two hosts and with 2 ranks on one host, and
# the final parameters must agree (param_sha256 equal, else max |diff| <= 1e-5). Root only.
# Namespaces (and with them the veths and the bridge) are removed on exit, also on failure.
set -euo pipefail
name=two_hosts_netns
source "$(dirname "${BASH_SOURCE[0]}")/fixtures/harness.sh"

if [ "$(id -u)" != 0 ]; then echo "SKIP $name: needs root for network namespaces"; exit 0; fi
command -v ip >/dev/null || { echo "SKIP $name: no ip command (iproute2)"; exit 0; }
[ -x "$binary" ] || fail "no plexus binary at $binary"
command -v mpicc >/dev/null || fail "mpicc missing (libopenmpi-dev)"
mpirun_root_flags

tmp="$(mktemp -d /tmp/plexus-netns.XXXXXX)"
chmod 755 "$tmp"
ns_br="pxb-$$" ns1="pxh1-$$" ns2="pxh2-$$"
net=10.77.0
cleanup() {
    local ns
    for ns in "$ns1" "$ns2" "$ns_br"; do
        # Kill anything left running inside (e.g. an orted after a timeout), then the namespace;
        # deleting a namespace destroys its veth ends and the bridge with it.
        ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
        ip netns del "$ns" 2>/dev/null || true
    done
    if [ "${PLEXUS_TEST_KEEP:-0}" = 1 ]; then echo "kept $tmp" >&2; else rm -rf "$tmp"; fi
}
trap cleanup EXIT

# --- network ------------------------------------------------------------------------------------
ip netns add "$ns_br" && ip netns add "$ns1" && ip netns add "$ns2" || fail "cannot create namespaces"
ip -n "$ns_br" link add br0 type bridge
ip -n "$ns_br" link set lo up
ip -n "$ns_br" link set br0 up
i=0
for ns in "$ns1" "$ns2"; do
    i=$((i + 1))
    # Create the pair inside the bridge namespace (no interface ever appears in the root one), then
    # move one end to the host namespace.
    ip -n "$ns_br" link add "v$i" type veth peer name eth0 netns "$ns"
    ip -n "$ns_br" link set "v$i" master br0 up
    ip -n "$ns" link set lo up
    ip -n "$ns" addr add "$net.$i/24" dev eth0
    ip -n "$ns" link set eth0 up
done
if command -v ping >/dev/null 2>&1; then  # (not installed on a minimal Debian; the hello run below checks too)
    ok=0
    for _ in $(seq 30); do
        if ip netns exec "$ns1" ping -c1 -W1 "$net.2" >/dev/null 2>&1; then ok=1; break; fi
        sleep 0.2
    done
    [ "$ok" = 1 ] || fail "$ns1 cannot ping $net.2"
fi

# --- launcher: hostfile and rsh agent -----------------------------------------------------------
cat > "$tmp/hostfile" <<HF
$net.1 slots=1
$net.2 slots=1
HF
cat > "$tmp/agent" <<AGENT
#!/bin/sh
# rsh agent for mpirun: "agent [ssh-style options] HOST COMMAND..." -> run COMMAND in HOST's namespace.
while [ \$# -gt 0 ]; do case "\$1" in -*) shift ;; *) break ;; esac; done
host=\$1; shift
case "\$host" in
    $net.1) ns=$ns1 ;;
    $net.2) ns=$ns2 ;;
    *) echo "agent: unknown host \$host" >&2; exit 255 ;;
esac
exec ip netns exec "\$ns" sh -c "\$*"
AGENT
chmod +x "$tmp/agent"
cross=(--hostfile "$tmp/hostfile" -np 2 --mca plm_rsh_agent "$tmp/agent"
       --mca btl tcp,self --mca btl_tcp_if_include "$net.0/24" --mca oob_tcp_if_include "$net.0/24")

# --- 1. the network carries MPI -----------------------------------------------------------------
mpicc -O2 -o "$tmp/mpi_hello" "$here/fixtures/mpi_hello.c" 2>"$tmp/cc.err" || fail "mpicc: $(head -3 "$tmp/cc.err")"
st=0
ip netns exec "$ns1" timeout 60 mpirun "${cross[@]}" "$tmp/mpi_hello" >"$tmp/hello.out" 2>"$tmp/hello.err" || st=$?
[ "$st" = 0 ] || fail "hello across namespaces exited $st: $(tail -5 "$tmp/hello.err" | tr '\n' ' ')"
grep -qx "rank=0 size=2 ips=$net.1 sum=3" "$tmp/hello.out" && grep -qx "rank=1 size=2 ips=$net.2 sum=3" "$tmp/hello.out" \
    || fail "hello ranks not on the two hosts: $(tr '\n' ' ' < "$tmp/hello.out")"

# --- 2. plexus across the hosts vs. on one host -------------------------------------------------
st=0
ip netns exec "$ns1" timeout 300 mpirun "${cross[@]}" "$binary" train "$config" --run-dir "$tmp/two-hosts" \
    >"$tmp/two-hosts.out" 2>"$tmp/two-hosts.err" || st=$?
[ "$st" = 0 ] || fail "training across hosts exited $st: $(tail -5 "$tmp/two-hosts.err" | tr '\n' ' ')"
st=0
timeout 300 mpirun -np 2 "$binary" train "$config" --run-dir "$tmp/one-host" \
    >"$tmp/one-host.out" 2>"$tmp/one-host.err" || st=$?
[ "$st" = 0 ] || fail "training with 2 ranks on one host exited $st: $(tail -5 "$tmp/one-host.err" | tr '\n' ' ')"

verdict="$(python3 - "$tmp/two-hosts" "$tmp/one-host" <<'PY'
import json, struct, sys
import numpy as np

def summary(d):
    return json.load(open(f"{d}/summary.json"))

def tensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    kinds = {"F32": "<f4", "F64": "<f8", "F16": "<f2", "I64": "<i8", "I32": "<i4"}
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        a, b = t["data_offsets"]
        out[name] = np.frombuffer(data[a:b], dtype=kinds[t["dtype"]]).reshape(t["shape"]).astype(np.float64)
    return out

a, b = sys.argv[1], sys.argv[2]
sa, sb = summary(a), summary(b)
if sa.get("world_size") != 2 or sb.get("world_size") != 2:
    print(f"bad world_size: {sa.get('world_size')} / {sb.get('world_size')}"); sys.exit(1)
if sa.get("param_sha256") and sa.get("param_sha256") == sb.get("param_sha256"):
    print("identical"); sys.exit(0)
ta, tb = tensors(f"{a}/final.safetensors"), tensors(f"{b}/final.safetensors")
if ta.keys() != tb.keys():
    print(f"different tensors: {sorted(ta)} vs {sorted(tb)}"); sys.exit(1)
diff = max((float(np.max(np.abs(ta[k] - tb[k]))) if ta[k].size else 0.0) for k in ta)
print(f"max abs diff {diff:.3g}")
sys.exit(0 if diff <= 1e-5 else 1)
PY
)" || fail "final parameters differ between two hosts and one host: $verdict"

echo "PASS $name"
