#!/usr/bin/env bash
# Unpacks the official Node.js linux build that the `node` devDependency stands for (the npm
# package node-linux-<arch> at the version package-lock.json pins for `node`) into DIR and
# prints DIR: bin/node, include/node (headers), LICENSE. npm's cache serves it offline once
# `npm ci` has run; `npm install` prunes the copy under node_modules/node, this one stays.
#
#   scripts/node-dist.sh DIR
# Used by scripts/build-deb.sh (the bundled node) and containers/lab.sh (the lab's node images).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dest=$(realpath -m "${1:?usage: node-dist.sh DIR}")
version=$(node -p "require('$repo/package-lock.json').packages['node_modules/node'].version")
case "$(uname -m)" in
  x86_64) arch=x64 ;;
  aarch64) arch=arm64 ;;
  *) echo "node-dist: no node-linux package for $(uname -m)" >&2; exit 1 ;;
esac
pkg="node-linux-$arch@$version"

if [[ "$(cat "$dest/.pkg" 2>/dev/null)" != "$pkg" ]]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack --silent --prefer-offline "$pkg" >/dev/null)
  rm -rf "$dest"
  mkdir -p "$dest"
  tar -xzf "$tmp"/node-linux-*.tgz -C "$dest" --strip-components=1
  echo "$pkg" >"$dest/.pkg"
fi
"$dest/bin/node" --version >/dev/null
echo "$dest"
