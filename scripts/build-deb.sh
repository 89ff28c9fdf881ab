#!/usr/bin/env bash
# Builds the Debian package of tunsec offline with dpkg-deb: `npm run deb`, or
#
#   scripts/build-deb.sh [--tarball tunsec-X.Y.Z.tgz] [--system-node] [--out DIR]
#
# From the npm tarball (`npm pack`, made here unless --tarball names one) installed with
# its production dependencies only (the native addon built by its install script), laid out as
#   /usr/bin/tunsec                    wrapper: the bundled node, else the system's (>= 22)
#   /usr/lib/tunsec/                   dist/, native/build/Release/tunsec_native.node,
#                                      node_modules/ (runtime dependencies), package.json
#   /usr/lib/tunsec/node/bin/node      Node.js 22, the build the `node` devDependency pins
#                                      (scripts/node-dist.sh; not with --system-node: then the
#                                      package depends on nodejs >= 22)
#   /lib/systemd/system/tunsec.service examples/tunsec.service
#   /usr/share/man/man8/tunsec.8.gz    man/tunsec.8
#   /etc/tunsec/tunsec.yaml            conffile: a configuration that starts with no connections
#   /usr/share/doc/tunsec/             README, docs, example configuration, copyright
# Prints the path of the .deb (default DIR: dist/). Needs dpkg-deb, npm and what node-gyp
# needs (python3, make, g++); the npm registry only for packages not in npm's cache.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tarball=""
bundle_node=yes
out="$repo/dist"
while (($#)); do
  case "$1" in
    --tarball) tarball=$(realpath "$2"); shift 2 ;;
    --system-node) bundle_node=no; shift ;;
    --out) out=$(realpath -m "$2"); shift 2 ;;
    *) echo "build-deb: unknown argument '$1'" >&2; exit 2 ;;
  esac
done

version=$(node -p "require('$repo/package.json').version")
arch=$(dpkg --print-architecture)
work=$(mktemp -d /tmp/tunsec-deb.XXXXXX)
trap 'rm -rf "$work"' EXIT

if [[ -z "$tarball" ]]; then
  echo "build-deb: npm pack" >&2
  (cd "$repo" && npm pack --silent --pack-destination "$work" >/dev/null)
  tarball="$work/tunsec-$version.tgz"
fi

echo "build-deb: installing $tarball with its runtime dependencies" >&2
mkdir -p "$work/inst"
echo '{"name":"tunsec-deb-build","private":true}' >"$work/inst/package.json"
(cd "$work/inst" && npm install --omit=dev --prefer-offline --no-audit --no-fund --no-package-lock --loglevel=error "$tarball" >&2)
installed="$work/inst/node_modules/tunsec"
test -f "$installed/native/build/Release/tunsec_native.node"

root="$work/root"
lib="$root/usr/lib/tunsec"
install -d "$lib/native/build/Release" "$lib/node_modules" "$root/usr/bin" "$root/lib/systemd/system" \
  "$root/usr/share/man/man8" "$root/etc/tunsec" "$root/usr/share/doc/tunsec/examples" "$root/DEBIAN"
cp -a "$installed/package.json" "$installed/dist" "$lib/"
install -m 0644 "$installed/native/build/Release/tunsec_native.node" "$lib/native/build/Release/"
# the runtime dependencies; node-addon-api only builds the addon
for dep in "$work/inst/node_modules"/*; do
  case "$(basename "$dep")" in tunsec | node-addon-api | .bin | .package-lock.json) continue ;; esac
  cp -a "$dep" "$lib/node_modules/"
done
find "$lib/node_modules" -name .bin -prune -exec rm -rf {} +
depends="iproute2, netbase"
if [[ $bundle_node == yes ]]; then
  nodepkg=$("$repo/scripts/node-dist.sh" "$work/node")
  install -D -m 0755 "$nodepkg/bin/node" "$lib/node/bin/node"
  install -m 0644 "$nodepkg/LICENSE" "$lib/node/LICENSE"
  depends="$depends, libc6 (>= 2.28), libstdc++6"
else
  depends="$depends, nodejs (>= 22)"
fi

install -m 0755 "$repo/packaging/deb/tunsec" "$root/usr/bin/tunsec"
install -m 0644 "$repo/examples/tunsec.service" "$root/lib/systemd/system/tunsec.service"
gzip -9n <"$repo/man/tunsec.8" >"$root/usr/share/man/man8/tunsec.8.gz"
install -m 0644 "$repo/packaging/deb/tunsec.yaml" "$root/etc/tunsec/tunsec.yaml"
install -m 0644 "$repo/README.md" "$repo/docs/daemon.md" "$repo/docs/configuration.md" "$repo/docs/datapath.md" "$root/usr/share/doc/tunsec/"
install -m 0644 "$repo/examples/tunsec.yaml" "$repo/examples/tunsec.service" "$root/usr/share/doc/tunsec/examples/"
{
  echo "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/"
  echo "Upstream-Name: tunsec"
  echo
  echo "Files: *"
  echo "License: MIT"
  echo
  cat "$repo/LICENSE"
} >"$root/usr/share/doc/tunsec/copyright"
chmod -R u+rwX,go+rX,go-w "$root/usr" "$root/lib" "$root/etc"

install -m 0755 "$repo/packaging/deb/postinst" "$repo/packaging/deb/prerm" "$repo/packaging/deb/postrm" "$root/DEBIAN/"
echo /etc/tunsec/tunsec.yaml >"$root/DEBIAN/conffiles"
(cd "$root" && find usr lib -type f -print0 | sort -z | xargs -0 md5sum) >"$root/DEBIAN/md5sums"
cat >"$root/DEBIAN/control" <<EOF
Package: tunsec
Version: $version
Architecture: $arch
Maintainer: the tunsec authors <tunsec@invalid>
Installed-Size: $(du -sk --exclude=DEBIAN "$root" | cut -f1)
Depends: $depends
Section: net
Priority: optional
Description: userspace IKEv2 and ESP over a TUN device
 tunsec negotiates IPsec SAs with IKEv2 (RFC 7296) and carries ESP (RFC 4303,
 RFC 3948) in user space over a Linux TUN device, interoperating with strongSwan.
 The package holds the tunsec command and daemon, a systemd unit (Type=notify)
 and the man page tunsec(8).
EOF

mkdir -p "$out"
deb="$out/tunsec_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zgzip -z6 --build "$root" "$deb" >&2
echo "$deb"
