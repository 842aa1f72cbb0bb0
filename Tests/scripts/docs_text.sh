#!/usr/bin/env bash
# The reader-facing Markdown (README.md, CONTRIBUTING.md, docs/): README.md at most 250 lines; no issue or
# pull-request references; no paths or tools of the machine the text was written on (/work/, temporary
# directories other than clearly-named examples, home directories); no words telling the history of the text;
# every relative link names an existing file and heading (fixtures/check_docs.py has the rules). The checker is
# first run on a made-up tree with one of each mistake and must report every one of them.
set -euo pipefail
name=docs_text
source "$(dirname "${BASH_SOURCE[0]}")/fixtures/harness.sh"
command -v python3 >/dev/null || fail "python3 missing"
checker="$here/fixtures/check_docs.py"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/docs"
for i in $(seq 1 251); do echo "line $i"; done > "$tmp/README.md"
cat > "$tmp/docs/page.md" <<'MD'
# A page

## Ranks × threads

Fixed in issue 12, see also #31.
Run `/work/main/.build/release/plexus` or keep files in /tmp/run-42 and /var/tmp/x.
Before this change the step was slower; it used to allocate (was 11 per step).
Time it under the cpu-exclusive wrapper.
[ok](#ranks--threads) [bad anchor](#no-such-heading) [missing](other.md) [site](https://example.org/#12)
Example paths are fine: /tmp/example-run, ~/data/train.csv, colour #1f77b4, [a](#ranks--threads).
MD
st=0
python3 "$checker" "$tmp" > "$tmp/report" || st=$?
[ "$st" = 1 ] || fail "the checker exited $st on the made-up tree, expected 1"
for expected in "README.md:251: 251 lines" "issue 12" '"#31"' '"/work/"' '"/tmp/"' '"/var/tmp/"' \
                "Before this change" '"used to"' '"(was"' '"cpu-exclusive"' "#no-such-heading" "no such file docs/other.md"; do
    grep -qF -- "$expected" "$tmp/report" || fail "the checker missed '$expected'; it reported: $(tr '\n' ' ' < "$tmp/report")"
done
[ "$(wc -l < "$tmp/report")" = 12 ] || fail "the checker reported $(wc -l < "$tmp/report") problems on the made-up tree, expected 12: $(tr '\n' ' ' < "$tmp/report")"

st=0
python3 "$checker" "$root" > "$tmp/real" || st=$?
if [ "$st" != 0 ]; then
    cat "$tmp/real"
    fail "$(wc -l < "$tmp/real") problem(s) in README.md, CONTRIBUTING.md or docs/ (listed above)"
fi
echo "PASS $name ($(wc -l < "$root/README.md") README lines; $(find "$root/docs" -name '*.md' | wc -l) pages in docs/)"
