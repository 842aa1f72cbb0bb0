#!/bin/sh
# build-identity.sh ROOT OUTPUT: writes OUTPUT, the Swift source of `buildVersion` (ROOT/VERSION) and
# `buildGitDescription` (`git describe --tags --always --dirty` of ROOT, or nil), for `plexus --version`.
# The plugin in this folder runs it at build time; Tests/scripts/build_identity.sh checks it.
#
# git describes ROOT only when ROOT is the top of its own checkout: a source tarball unpacked inside another
# repository is not that repository's commit. --no-optional-locks keeps git from rewriting the index, whose changes
# make the build run this again. Values keep only characters that need no escaping in a Swift string, and OUTPUT is
# rewritten only when its text changes, so an unchanged build compiles nothing.
root="$1" output="$2"
version="$(tr -cd 'A-Za-z0-9._+-' < "$root/VERSION" 2>/dev/null)"
description=""
top="$(git -C "$root" rev-parse --show-toplevel 2>/dev/null)" || top=""
if [ -n "$top" ] && [ "$(cd "$top" && pwd -P)" = "$(cd "$root" && pwd -P)" ]; then
    description="$(git -C "$root" --no-optional-locks describe --tags --always --dirty 2>/dev/null | tr -cd 'A-Za-z0-9._+/-')"
fi
if [ -n "$description" ]; then description="\"$description\""; else description=nil; fi
text="// Written by Sources/BuildIdentity/build-identity.sh at build time.
/// The VERSION file of the source tree this binary was built from.
let buildVersion = \"${version:-unknown}\"
/// \`git describe --tags --always --dirty\` of that tree, nil when it was not a git checkout.
let buildGitDescription: String? = $description"
if [ ! -f "$output" ] || [ "$(cat "$output")" != "$text" ]; then
    printf '%s\n' "$text" > "$output"
fi
