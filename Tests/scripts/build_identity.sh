#!/usr/bin/env bash
# What `plexus --version` says about the source it was built from (Sources/BuildIdentity/build-identity.sh, which
# the build runs):
#   * a tree that is no git checkout (a source tarball) gets the VERSION file and no git description, also when it
#     is unpacked inside another git repository;
#   * a checkout gets `git describe --tags --always --dirty`: the commit, a tag when there is one, -dirty after an
#     edit of a tracked file;
#   * the output is rewritten only when its text changes (so an unchanged build compiles nothing);
#   * the release binary names this checkout's commit.
set -euo pipefail
name=build_identity
source "$(dirname "${BASH_SOURCE[0]}")/fixtures/harness.sh"
command -v git >/dev/null || { echo "SKIP $name: git is not installed"; exit 0; }
script="$root/Sources/BuildIdentity/build-identity.sh"

tmp="$(mktemp -d /tmp/plexus-identity.XXXXXX)"
trap 'rm -rf "$tmp"' EXIT
git_quiet() { git -c user.name=test -c user.email=test@example.com -c init.defaultBranch=main "$@" >/dev/null 2>&1; }

# identity TREE: the version and description the script writes for TREE, as "VERSION DESCRIPTION".
identity() {
    sh "$script" "$1" "$tmp/out.swift" || fail "build-identity.sh failed on $1"
    local version description
    version="$(sed -n 's/^let buildVersion = "\(.*\)"$/\1/p' "$tmp/out.swift")"
    description="$(sed -n 's/^let buildGitDescription: String? = //p' "$tmp/out.swift" | tr -d '"')"
    echo "$version $description"
}

mkdir -p "$tmp/outer/plexus-src"
printf '9.8.7\n' > "$tmp/outer/plexus-src/VERSION"
[ "$(identity "$tmp/outer/plexus-src")" = "9.8.7 nil" ] || fail "no git: got '$(identity "$tmp/outer/plexus-src")'"
git_quiet -C "$tmp/outer" init && git_quiet -C "$tmp/outer" commit --allow-empty -m outer
[ "$(identity "$tmp/outer/plexus-src")" = "9.8.7 nil" ] || fail "inside another repository: got '$(identity "$tmp/outer/plexus-src")'"

git_quiet -C "$tmp/outer/plexus-src" init
git_quiet -C "$tmp/outer/plexus-src" add VERSION && git_quiet -C "$tmp/outer/plexus-src" commit -m first
commit="$(git -C "$tmp/outer/plexus-src" rev-parse --short HEAD)"
[ "$(identity "$tmp/outer/plexus-src")" = "9.8.7 $commit" ] || fail "a checkout: got '$(identity "$tmp/outer/plexus-src")', expected $commit"
git_quiet -C "$tmp/outer/plexus-src" tag v9.8.7
[ "$(identity "$tmp/outer/plexus-src")" = "9.8.7 v9.8.7" ] || fail "a tagged checkout: got '$(identity "$tmp/outer/plexus-src")'"
before="$(stat -c %Y.%i "$tmp/out.swift")"
sleep 1
identity "$tmp/outer/plexus-src" >/dev/null
[ "$(stat -c %Y.%i "$tmp/out.swift")" = "$before" ] || fail "the unchanged output was rewritten"
printf '9.8.8\n' > "$tmp/outer/plexus-src/VERSION"
[ "$(identity "$tmp/outer/plexus-src")" = "9.8.8 v9.8.7-dirty" ] || fail "an edited checkout: got '$(identity "$tmp/outer/plexus-src")'"

[ -x "$binary" ] || fail "no plexus binary at $binary"
line="$("$binary" --version)" || fail "plexus --version failed"
line="${line%%$'\n'*}"
if git -C "$root" rev-parse --verify -q HEAD >/dev/null 2>&1; then
    head="$(git -C "$root" rev-parse --short HEAD)"
    [[ "$line" == "plexus $(tr -d ' \n' < "$root/VERSION") (git "*"$head"* ]] || fail "plexus --version says '$line'; HEAD is $head"
fi
echo "PASS $name ($line)"
