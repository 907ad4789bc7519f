#!/usr/bin/env bash
# Runs a command on a Node.js that forktrace supports (>= 22.15). On an older `node` (such as an
# end-of-life Node 20 that a machine still has as its default), it says so once and runs the
# command with Node 24 first on PATH, installed from the npm registry by scripts/node-line.sh;
# child processes (the apps, pm2, the load generator) then run on it too. On a supported Node it
# runs the command unchanged, so `PATH="$(scripts/node-line.sh 22):$PATH" npm test` tests Node 22.
#
#   scripts/on-supported-node.sh node --test test/*.test.mjs
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
if node -e '
  const [maj, min] = process.versions.node.split(".").map(Number);
  process.exit(maj > 22 || (maj === 22 && min >= 15) ? 0 : 1);'; then
  exec "$@"
fi
echo "forktrace: this is Node $(node --version), which forktrace does not support (>= 22.15); running on Node 24 from the npm registry (scripts/node-line.sh 24)" >&2
bin="$("$here/node-line.sh" 24)"
PATH="$bin:$PATH" exec "$@"
