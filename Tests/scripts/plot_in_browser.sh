#!/usr/bin/env bash
# `plexus plot` of two real runs, rendered by headless Chromium (Debian's chromium, installed when
# root, else SKIP): the screenshot must not be blank — both runs' colours and dark axis text drawn
# (counted by fixtures/check_screenshot.py with Pillow from PyPI) — and each run's own curves.svg
# renders too. Bad input exits 2 with one line naming the path or the metric.
set -euo pipefail
name=plot_in_browser
source "$(dirname "${BASH_SOURCE[0]}")/fixtures/harness.sh"
source "$here/fixtures/python_venv.sh"
[ -x "$binary" ] || fail "no plexus binary at $binary"
[ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] || fail "dataset-fashion-mnist is not installed"
if ! command -v chromium >/dev/null; then
    if [ "$(id -u)" = 0 ]; then
        ensure_packages chromium || fail "could not install chromium"
    else
        echo "SKIP $name: chromium is not installed and installing it needs root"
        exit 0
    fi
fi
python="$(test_venv pillow)" || fail "could not install pillow from PyPI into a venv"

tmp="$(mktemp -d /tmp/plexus-plot.XXXXXX)"
trap 'rm -rf "$tmp"' EXIT
for lr in 0.1 0.02; do
    "$binary" train "$config" --run-dir "$tmp/lr-$lr" --set optimizer.lr=$lr --set training.epochs=3 --progress plain \
        >"$tmp/log" 2>&1 || fail "training lr $lr failed: $(tail -2 "$tmp/log")"
done
"$binary" plot "$tmp/lr-0.1" "$tmp/lr-0.02" --output "$tmp/plot.svg" >"$tmp/out" 2>&1 || fail "plot failed: $(cat "$tmp/out")"

screenshot() {  # svg, png: renders the SVG at its own size
    local size
    size=$(sed -nE '1s/.* width="([0-9]+)" height="([0-9]+)".*/\1,\2/p' "$1")
    [ -n "$size" ] || fail "$1: no width and height"
    timeout -k 5 90 chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --user-data-dir="$tmp/profile" \
        --window-size="$size" --screenshot="$2" "file://$1" >"$tmp/chromium.log" 2>&1 \
        || fail "chromium could not render $1: $(tail -2 "$tmp/chromium.log")"
}
screenshot "$tmp/plot.svg" "$tmp/plot.png"
"$python" "$here/fixtures/check_screenshot.py" "$tmp/plot.png" "#1f77b4" "#ff7f0e" || fail "plot.svg rendered blank or without both runs"
screenshot "$tmp/lr-0.1/curves.svg" "$tmp/curves.png"
"$python" "$here/fixtures/check_screenshot.py" "$tmp/curves.png" "#1f77b4" || fail "curves.svg rendered blank"
[ -z "${PLEXUS_KEEP_PLOT:-}" ] || cp "$tmp/plot.png" "$PLEXUS_KEEP_PLOT"

bad_input() {  # expected fragment, plot arguments...
    local fragment=$1 st=0; shift
    "$binary" plot "$@" --output "$tmp/bad.svg" >/dev/null 2>"$tmp/err" || st=$?
    [ "$st" = 2 ] || fail "plot $* exited $st, expected 2: $(cat "$tmp/err")"
    [ "$(wc -l <"$tmp/err")" = 1 ] || fail "plot $*: expected one line on stderr, got: $(cat "$tmp/err")"
    grep -qF -- "$fragment" "$tmp/err" || fail "plot $*: stderr does not name $fragment: $(cat "$tmp/err")"
}
mkdir "$tmp/empty" "$tmp/torn"
bad_input "$tmp/empty/metrics.jsonl" "$tmp/empty"
printf '{"epoch": 1, "train_loss": 1}\n{"epoch": 2, "train_l' >"$tmp/torn/metrics.jsonl"
bad_input "$tmp/torn/metrics.jsonl:2" "$tmp/torn"
bad_input "--metric test_rmse" "$tmp/lr-0.1" --metric test_rmse
bad_input "$tmp/nope" "$tmp/nope"
[ ! -e "$tmp/bad.svg" ] || fail "a failed plot left $tmp/bad.svg"
echo "PASS $name"
