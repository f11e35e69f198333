#!/usr/bin/env bash
# Install rumbled on a Debian / Raspberry Pi OS station, or into a staging
# root. Idempotent: a second run changes nothing; an edited config is never
# overwritten (the new default lands next to it as rumbled.toml.dist).
#
# usage: deploy/install.sh [--destdir DIR] [--binary PATH] [--no-apt] [--no-systemctl]
#   --destdir DIR    install under DIR (a staging root: no user, no systemctl)
#   --binary PATH    install this rumbled binary instead of building one
#   --no-apt         do not install system packages
#   --no-systemctl   do not create the user or enable the service
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DESTDIR=""
BINARY=""
APT=1
SYSTEMCTL=1
while (($#)); do
    case "$1" in
        --destdir) DESTDIR="$(realpath -m "$2")"; shift 2 ;;
        --binary) BINARY="$2"; shift 2 ;;
        --no-apt) APT=0; shift ;;
        --no-systemctl) SYSTEMCTL=0; shift ;;
        *) echo "unknown option: $1 (see the usage at the top of $0)" >&2; exit 2 ;;
    esac
done
if [[ -n "$DESTDIR" ]]; then APT=0; SYSTEMCTL=0; fi
if [[ $(id -u) -ne 0 && -z "$DESTDIR" ]]; then
    echo "error: run as root (sudo $0) or with --destdir" >&2
    exit 1
fi

if ((APT)); then
    # Runtime: ALSA; pip fetches the ONNX Runtime library from PyPI.
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        libasound2 python3-pip ca-certificates >/dev/null
fi

if [[ -z "$BINARY" ]]; then
    if ! command -v cargo >/dev/null; then
        echo "error: no --binary given and no cargo to build one; install Rust (https://rustup.rs) or pass --binary" >&2
        exit 1
    fi
    (cd "$ROOT" && cargo build --release --locked)
    BINARY="$ROOT/target/release/rumbled"
fi

# `install -C` leaves an identical file untouched, which keeps reruns quiet.
put() { # mode source destination
    install -C -D -m "$1" "$2" "$DESTDIR$3"
}

put 0755 "$BINARY" /usr/bin/rumbled

ORT_DIR="$ROOT/.onnxruntime"
[[ -e "$ORT_DIR/libonnxruntime.so.1" ]] || "$ROOT/deploy/fetch-onnxruntime.sh" "$ORT_DIR"
ORT_LIB="$(readlink "$ORT_DIR/libonnxruntime.so.1")"
put 0644 "$ORT_DIR/$ORT_LIB" "/usr/lib/rumbled/$ORT_LIB"
if [[ "$(readlink "$DESTDIR/usr/lib/rumbled/libonnxruntime.so.1" 2>/dev/null)" != "$ORT_LIB" ]]; then
    ln -sfn "$ORT_LIB" "$DESTDIR/usr/lib/rumbled/libonnxruntime.so.1"
fi

for f in rumbled-edge-ev5.onnx rumbled-edge-ev5.json; do
    put 0644 "$ROOT/models/$f" "/usr/share/rumbled/models/$f"
done
put 0644 "$ROOT/deploy/rumbled.toml" /usr/share/rumbled/rumbled.toml.example
put 0644 "$ROOT/README.md" /usr/share/doc/rumbled/README.md
put 0644 "$ROOT/systemd/rumbled.service" /lib/systemd/system/rumbled.service

CONFIG="$DESTDIR/etc/rumbled/rumbled.toml"
if [[ ! -e "$CONFIG" ]]; then
    put 0640 "$ROOT/deploy/rumbled.toml" /etc/rumbled/rumbled.toml
    echo "installed $CONFIG: set [station] name and the [mqtt] broker"
elif ! cmp -s "$ROOT/deploy/rumbled.toml" "$CONFIG"; then
    put 0644 "$ROOT/deploy/rumbled.toml" /etc/rumbled/rumbled.toml.dist
    echo "kept your $CONFIG; the new default is in rumbled.toml.dist"
fi

if ((SYSTEMCTL)); then
    id -u rumbled >/dev/null 2>&1 || useradd --system --home-dir /var/lib/rumbled \
        --no-create-home --shell /usr/sbin/nologin --groups audio rumbled
    chgrp rumbled /etc/rumbled/rumbled.toml
    systemctl daemon-reload
    systemctl enable --now rumbled.service
    echo "rumbled is running: journalctl -u rumbled -f"
fi
