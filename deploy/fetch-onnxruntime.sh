#!/usr/bin/env bash
# Fetch the ONNX Runtime shared library rumbled loads at run time.
#
# ort's own build-time download reaches a host field stations and CI cannot;
# the same library ships inside the onnxruntime wheel on PyPI, which every
# Debian/Raspberry Pi OS box with pip can reach. We take it out of the wheel.
#
# usage: deploy/fetch-onnxruntime.sh [DEST_DIR]
#   DEST_DIR defaults to .onnxruntime/ in the repository root; the script is
#   idempotent and does nothing if the library is already there.
set -euo pipefail

ORT_VERSION="${ORT_VERSION:-1.31.1}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DEST="${1:-$ROOT/.onnxruntime}"
LIB="libonnxruntime.so.$ORT_VERSION"

if [[ -f "$DEST/$LIB" && -L "$DEST/libonnxruntime.so.1" ]]; then
    echo "onnxruntime $ORT_VERSION already in $DEST"
    exit 0
fi

case "$(uname -m)" in
    x86_64) PLATFORM=manylinux_2_28_x86_64 ;;
    aarch64 | arm64) PLATFORM=manylinux_2_28_aarch64 ;;
    *) echo "error: no onnxruntime wheel for $(uname -m); build ONNX Runtime from source and set [model] onnxruntime in rumbled.toml" >&2; exit 1 ;;
esac

PY="${PYTHON:-python3}"
if ! "$PY" -m pip --version >/dev/null 2>&1; then
    echo "error: $PY has no pip; install python3-pip (apt-get install python3-pip)" >&2
    exit 1
fi

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
"$PY" -m pip download --quiet --no-deps --only-binary=:all: --platform "$PLATFORM" \
    --python-version 3.11 "onnxruntime==$ORT_VERSION" -d "$TMP"
WHEEL="$(ls "$TMP"/onnxruntime-*.whl)"
mkdir -p "$DEST"
"$PY" - "$WHEEL" "$DEST" "$LIB" <<'PYEOF'
import sys, zipfile, os
wheel, dest, lib = sys.argv[1:]
with zipfile.ZipFile(wheel) as z:
    member = f"onnxruntime/capi/{lib}"
    with z.open(member) as src, open(os.path.join(dest, lib), "wb") as out:
        out.write(src.read())
PYEOF
ln -sf "$LIB" "$DEST/libonnxruntime.so.1"
echo "onnxruntime $ORT_VERSION ($PLATFORM) installed in $DEST"
