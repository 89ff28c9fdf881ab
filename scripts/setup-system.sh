#!/usr/bin/env bash
# Installs the Debian packages listed in scripts/system-packages.txt that are
# not installed yet. Idempotent: with everything present it only checks.
# Called by `npm test` and `npm run demo`; safe to run by hand as root.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
list="$here/system-packages.txt"

mapfile -t wanted < <(sed -e 's/#.*//' -e 's/[[:space:]]//g' "$list" | grep -v '^$')

missing=()
for pkg in "${wanted[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$pkg")
done

if ((${#missing[@]} == 0)); then
  exit 0
fi

echo "setup-system: installing missing Debian packages: ${missing[*]}" >&2
if [[ $(id -u) -ne 0 ]]; then
  echo "setup-system: ERROR: must run as root to install: ${missing[*]}" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null; then
  echo "setup-system: ERROR: apt-get not found; install by hand: ${missing[*]}" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
if ! apt-get update -q >&2; then
  echo "setup-system: ERROR: apt-get update failed" >&2
  exit 1
fi
if ! apt-get install -y -q --no-install-recommends "${missing[@]}" >&2; then
  echo "setup-system: ERROR: apt-get install failed for: ${missing[*]}" >&2
  exit 1
fi

# Verify: a package that apt "installed" but dpkg does not report is a failure.
for pkg in "${missing[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  if [[ "$status" != "install ok installed" ]]; then
    echo "setup-system: ERROR: $pkg is still not installed" >&2
    exit 1
  fi
done
echo "setup-system: done" >&2
