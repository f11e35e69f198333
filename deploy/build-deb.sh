#!/usr/bin/env bash
# Build a Debian package for this machine's architecture: the binary, the
# ONNX Runtime library, the default model, the unit and the example config.
# Built on the Pi itself for arm64 (no cross toolchain is needed or used).
#
# usage: deploy/build-deb.sh [--binary PATH] [--out DIR]
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BINARY=""
OUT="$ROOT/target/debian"
while (($#)); do
    case "$1" in
        --binary) BINARY="$2"; shift 2 ;;
        --out) OUT="$2"; shift 2 ;;
        *) echo "unknown option: $1" >&2; exit 2 ;;
    esac
done
VERSION="$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/Cargo.toml" | head -1)"
ARCH="$(dpkg --print-architecture)"
STAGE="$(mktemp -d)"
trap 'rm -rf "$STAGE"' EXIT
chmod 0755 "$STAGE"

"$ROOT/deploy/install.sh" --destdir "$STAGE" ${BINARY:+--binary "$BINARY"} >/dev/null
# The package's own copy of the config is a conffile; dpkg keeps edits.
rm -f "$STAGE/etc/rumbled/rumbled.toml.dist"

mkdir -p "$STAGE/DEBIAN"
cat >"$STAGE/DEBIAN/control" <<CONTROL
Package: rumbled
Version: $VERSION
Architecture: $ARCH
Maintainer: rumbled developers <rumbled@localhost>
Depends: libasound2 (>= 1.1), adduser
Section: science
Priority: optional
Installed-Size: $(du -sk "$STAGE" | cut -f1)
Description: elephant call detector for field monitoring stations
 Listens for elephant calls (rumble, roar, cry, trumpet), finds where each
 call starts and stops, and publishes call events over MQTT. Includes the
 default edge model and the ONNX Runtime library it runs on.
CONTROL
echo "/etc/rumbled/rumbled.toml" >"$STAGE/DEBIAN/conffiles"
cat >"$STAGE/DEBIAN/postinst" <<'POSTINST'
#!/bin/sh
set -e
if [ "$1" = configure ]; then
    if ! getent passwd rumbled >/dev/null; then
        adduser --system --group --home /var/lib/rumbled --no-create-home rumbled
    fi
    adduser rumbled audio >/dev/null
    chgrp rumbled /etc/rumbled/rumbled.toml
    chmod 0640 /etc/rumbled/rumbled.toml
    if [ -d /run/systemd/system ]; then
        systemctl daemon-reload
        systemctl enable rumbled.service >/dev/null
    fi
fi
POSTINST
cat >"$STAGE/DEBIAN/prerm" <<'PRERM'
#!/bin/sh
set -e
if [ -d /run/systemd/system ] && [ "$1" = remove ]; then
    systemctl disable --now rumbled.service >/dev/null || true
fi
PRERM
cat >"$STAGE/DEBIAN/postrm" <<'POSTRM'
#!/bin/sh
set -e
if [ "$1" = purge ]; then
    rm -rf /var/lib/rumbled
    deluser --system rumbled >/dev/null 2>&1 || true
fi
if [ -d /run/systemd/system ]; then systemctl daemon-reload || true; fi
POSTRM
chmod 0755 "$STAGE/DEBIAN/postinst" "$STAGE/DEBIAN/prerm" "$STAGE/DEBIAN/postrm"
mkdir -p "$OUT"
DEB="$OUT/rumbled_${VERSION}_${ARCH}.deb"
dpkg-deb --root-owner-group -Zgzip -z6 --build "$STAGE" "$DEB" >/dev/null
echo "$DEB"
