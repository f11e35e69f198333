#!/usr/bin/env python3
"""Golden per-frame probabilities of the default model for rumbled's Rust tests.

  python models/golden_model.py [--ckpt models/checkpoints/rumbled-edge-ev5.pt]
                                [--manifest models/rumbled-edge-ev5.json]

Writes tests/data/model/:
  golden.wav         25 s, 16 kHz, 16-bit mono (models/soundscape.py, fixed schedule)
  golden.selections.txt   its ground truth
  golden.probs.f32le n_out x n_labels little-endian float32: sigmoid probabilities
  golden.json        {n_out, labels, hop_frames, window_frames, n_frames, windows, sha256, ...}

Probabilities come from PyTorch (the checkpoint the ONNX file was exported
from), not onnxruntime, with exactly rumbled's windowing: windows of 998 fbank
frames starting at frame 16*13*k while they fit; if those do not cover all
floor(N/16) output frames, one shorter tail window at the next scheduled start
s with the N - s frames left; each window's outputs are averaged uniformly
into the global output grid (models/common.py `windows`). Samples are read from the
WAV as int16 / 32768 and fed to torchaudio's Kaldi fbank (x 32768, dither 0).
Rerun whenever the default model changes (golden.json records its sha256).
"""
import argparse
import json
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import soundscape as ss  # noqa: E402
from common import HOP_OUT, PATCH, fbank, stitch, torch_runner, windows  # noqa: E402
from manifest import check_manifest  # noqa: E402
from rumbled_model import build  # noqa: E402

SCHEDULE = [("rumble", 1.0, 5.5, 18.0), ("trumpet", 7.5, 1.2, 12.0), ("cry", 9.8, 1.6, 10.0),
            ("roar", 12.5, 2.2, 10.0), ("rumble", 16.0, 4.0, 6.0), ("trumpet", 21.0, 0.8, 15.0),
            ("rumble", 22.0, 2.5, 12.0)]
CONF = [("engine", 13.0, 7.0, 10.0), ("birds", 3.0, 4.0, 3.0)]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ckpt", default=os.path.join(HERE, "checkpoints", "rumbled-edge-ev5.pt"))
    ap.add_argument("--manifest", default=os.path.join(HERE, "rumbled-edge-ev5.json"))
    ap.add_argument("--out", default=os.path.join(HERE, "..", "tests", "data", "model"))
    a = ap.parse_args()
    torch.set_num_threads(1)
    os.makedirs(a.out, exist_ok=True)

    m = check_manifest(a.manifest)
    ck = torch.load(a.ckpt, map_location="cpu", weights_only=False)
    if abs(ck["mean"] - m["features"]["mean"]) > 1e-9 or abs(ck["std"] - m["features"]["std"]) > 1e-9:
        raise SystemExit("checkpoint normalisation differs from the manifest: wrong checkpoint?")
    model = build(ck["config"])
    model.load_state_dict(ck["state_dict"])
    model.eval()

    wav = os.path.join(a.out, "golden.wav")
    sc = ss.generate(seed=25, duration_s=25.0, rate=16000, schedule=SCHEDULE, conf_schedule=CONF,
                     reverb_prob=0.0, level_dbfs=(-45.0, -45.0), dc_max=0.0)
    ss.write_wav(wav, sc)
    ss.write_raven(os.path.join(a.out, "golden.selections.txt"), sc.calls)
    x, sr = ss.read_wav(wav)
    assert sr == 16000
    fb = fbank(x)
    f = m["features"]
    xn = ((fb - f["mean"]) / (2 * f["std"])).astype(np.float32)
    wins = windows(len(fb), m["window_frames"], HOP_OUT)
    probs = stitch(len(fb), torch_runner(model, xn), len(m["labels"]),
                   window=m["window_frames"], batch=1)
    n_out = len(fb) // PATCH
    assert probs.shape == (n_out, len(m["labels"]))
    probs.astype("<f4").tofile(os.path.join(a.out, "golden.probs.f32le"))

    # cross-check against the shipped ONNX graph (informational)
    import onnxruntime as ort
    from common import ort_runner
    sess = ort.InferenceSession(os.path.join(os.path.dirname(a.manifest), m["onnx"]),
                                providers=["CPUExecutionProvider"])
    po = stitch(len(fb), ort_runner(sess, xn), len(m["labels"]), window=m["window_frames"])
    err = float(np.abs(po - probs).max())

    meta = {"n_out": n_out, "n_frames": int(len(fb)), "n_samples": int(len(x)),
            "labels": m["labels"], "hop_frames": HOP_OUT, "window_frames": m["window_frames"],
            "frames_per_output": PATCH, "windows": [[s, ln] for s, ln in wins],
            "sha256": m["sha256"], "model": {"name": m["name"], "version": m["version"]},
            "mean": f["mean"], "std": f["std"], "max_abs_diff_onnxruntime": err,
            "source": "models/golden_model.py (PyTorch eager, float32)"}
    with open(os.path.join(a.out, "golden.json"), "w") as fh:
        json.dump(meta, fh, indent=1)
        fh.write("\n")
    print(f"n_frames {len(fb)} n_out {n_out} windows {wins}; max |onnxruntime - torch| = {err:.2e}")


if __name__ == "__main__":
    main()
