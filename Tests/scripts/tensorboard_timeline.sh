#!/usr/bin/env bash
# What a 2-rank run shows about itself, before and after a resume. A run with the timeline on is
# copied, its checkpoints after step 10 deleted and a torn record appended to its event file (a
# crash at step 40 whose last checkpoints were lost), then resumed. fixtures/check_run_records.py
# then checks, with TensorBoard's own reader (tensorboard from PyPI, in a cached venv), that both
# runs' scalars load with the same values; reading the raw records itself (framing and masked
# CRC-32C), that the resumed run wrote a second file and no (tag, step) appears twice; and that
# timeline.json has every phase from both ranks, with the wait for the slower rank.
set -euo pipefail
name=tensorboard_timeline
source "$(dirname "${BASH_SOURCE[0]}")/fixtures/harness.sh"
source "$here/fixtures/python_venv.sh"
[ -x "$binary" ] || fail "no plexus binary at $binary"
command -v mpirun >/dev/null || fail "mpirun missing (openmpi-bin)"
[ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] || fail "dataset-fashion-mnist is not installed"
python="$(test_venv tensorboard)" || fail "could not install tensorboard from PyPI into a venv"

tmp="$(mktemp -d /tmp/plexus-observe.XXXXXX)"
trap 'rm -rf "$tmp"' EXIT
settings=(--progress plain --set checkpoint.every_steps=10 --set checkpoint.keep=10 --set logging.every_steps=5
          --set logging.timeline=true --set logging.timeline_steps=3-12)
train() {  # run directory, extra arguments
    local run=$1; shift
    run_mpirun -np 2 --oversubscribe "$binary" train "$config" --run-dir "$run" "${settings[@]}" "$@" \
        >"$tmp/log" 2>&1 || fail "2-rank run in $run failed: $(tail -3 "$tmp/log")"
}

train "$tmp/full"
cp -r "$tmp/full" "$tmp/resumed"
rm "$tmp/resumed"/checkpoints/step-0000000{20,30,40}.safetensors
events=("$tmp/resumed"/events.out.tfevents.*)
[ ${#events[@]} = 1 ] || fail "expected one event file in a fresh run, found ${#events[@]}"
printf '\x40\0\0\0\0\0\0\0\x12\x34' >>"${events[0]}"
train "$tmp/resumed" --resume
grep -q "resuming from .*step-000000010" "$tmp/log" || fail "did not resume from step 10: $(head -3 "$tmp/log")"

"$python" "$here/fixtures/check_run_records.py" "$tmp/full" "$tmp/resumed" || fail "records check failed (above)"
for run in full resumed; do [ -s "$tmp/$run/curves.svg" ] || fail "$run: no curves.svg"; done
echo "PASS $name"
