"""Helpers for rumbled model manifests (models/<name>.json, schema 1)."""
import datetime
import hashlib
import json
import os

from rumbled_model import LABELS, PATCH, N_MELS

# The published "Learning to rumble" (aerd) normalisation defaults; used only
# when no training statistics are known (e.g. for an untrained placeholder).
AERD_MEAN = 14.7274
AERD_STD = 2.9366


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def make_manifest(onnx_path: str, name: str, version: str, mean: float, std: float,
                  provenance: dict, labels=LABELS, window_frames: int = 998,
                  min_input_rate: int | None = None) -> dict:
    """min_input_rate: the lowest recorder rate in the training data (None: unknown);
    rumbled warns about recordings below it."""
    prov = dict(provenance)
    prov.setdefault("created", datetime.datetime.now(datetime.timezone.utc)
                    .replace(microsecond=0).isoformat().replace("+00:00", "Z"))
    m = {
        "schema": 1,
        "name": name,
        "version": version,
        "sha256": sha256_file(onnx_path),
        "onnx": os.path.basename(onnx_path),
        "sample_rate": 16000,
        "features": {
            "kind": "kaldi_fbank",
            "num_mel_bins": N_MELS,
            "frame_length": 400,
            "frame_shift": 160,
            "low_freq": 20.0,
            "high_freq": 0.0,
            "preemphasis": 0.97,
            "scale": 32768.0,
            "mean": float(mean),
            "std": float(std),
        },
        "input": {"name": "fbank", "layout": ["batch", "frames", "mel"]},
        "output": {"name": "logits", "activation": "sigmoid", "frames_per_output": PATCH,
                   "layout": ["batch", "frames", "classes"]},
        "window_frames": window_frames,
        "labels": list(labels),
        "background": labels[0],
        "min_input_rate": min_input_rate,
        "provenance": prov,
    }
    if min_input_rate is None:
        del m["min_input_rate"]
    return m


def write_manifest(path: str, manifest: dict) -> None:
    with open(path, "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")


def check_manifest(manifest_path: str) -> dict:
    """Load a manifest and verify the sha256 of the .onnx it names."""
    with open(manifest_path) as f:
        m = json.load(f)
    onnx_path = os.path.join(os.path.dirname(manifest_path), m["onnx"])
    got = sha256_file(onnx_path)
    if got != m["sha256"]:
        raise ValueError(f"{onnx_path}: sha256 {got} != manifest {m['sha256']}")
    return m
