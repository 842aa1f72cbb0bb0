#!/usr/bin/env bash
# A user error on the ranks must end the whole job promptly: launch/train with 2 ranks and a data
# file that does not exist must exit 2 within 60 s, stderr must name the file, OpenMPI's
# "process returned a non-zero exit code" banners must be filtered out, and no plexus process of
# this run may survive.
set -euo pipefail
name=rank_failure
source "$(dirname "${BASH_SOURCE[0]}")/fixtures/harness.sh"

[ -x "$binary" ] || fail "no plexus binary at $binary"
command -v mpirun >/dev/null || fail "mpirun missing (openmpi-bin)"

tmp="$(mktemp -d /tmp/plexus-rankfail.XXXXXX)"
run="$tmp/run"
missing="$tmp/no-such-dir/train-images"
cleanup() {
    # Only this run's ranks (their arguments contain the unique temp dir), if any survived.
    local p
    for p in $(pgrep -f -- "--run-dir $run" || true); do kill -9 "$p" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT

st=0
start=$SECONDS
PLEXUS_RANKS=2 PLEXUS_SKIP_BUILD=1 PLEXUS_SKIP_PACKAGES=1 PLEXUS_BINARY="$binary" \
    timeout -k 5 60 "$root/launch/train" "$config" --run-dir "$run" --set "data.train=$missing" \
    >"$tmp/out" 2>"$tmp/err" </dev/null || st=$?
elapsed=$((SECONDS - start))
[ "$st" != 124 ] && [ "$st" != 137 ] || fail "job hung: killed by timeout after ${elapsed}s"
[ "$st" = 2 ] || fail "exit status $st, expected 2; stderr: $(head -5 "$tmp/err" | tr '\n' ' ')"
grep -qF "$missing" "$tmp/err" || fail "stderr does not name $missing: $(head -3 "$tmp/err" | tr '\n' ' ')"
if grep -qE 'Primary job +terminated normally|mpirun detected that one or more processes' "$tmp/err"; then
    fail "OpenMPI's non-zero-exit banner was not filtered"
fi
sleep 0.5
if pgrep -f -- "--run-dir $run" >/dev/null; then
    fail "plexus processes survived: $(pgrep -af -- "--run-dir $run" | head -2 | tr '\n' ' ')"
fi
echo "PASS $name (${elapsed}s)"
