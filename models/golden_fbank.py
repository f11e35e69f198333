#!/usr/bin/env python3
"""Golden Kaldi-fbank vectors for rumbled's Rust feature extractor.

Writes under tests/data/fbank/ (relative to the repository root):
  cases.json                 list of {"name","n_samples","n_frames","num_bins"}
  <name>.samples.f32le       raw little-endian float32 samples, 16 kHz mono, in [-1, 1]
  <name>.fbank.f32le         raw little-endian float32, n_frames x 128 row-major

The reference is torchaudio.compliance.kaldi.fbank on x * 32768 with
num_mel_bins=128, 16 kHz, 25 ms / 10 ms frames, dither=0.0 (passed explicitly),
all other parameters at their torchaudio 2.11 defaults (povey window,
pre-emphasis 0.97, DC removal, snip_edges, low 20 Hz, high = Nyquist).

Deterministic: fixed seed; running it twice gives byte-identical files.
Usage: /work/venvs/torch/bin/python models/golden_fbank.py [--out tests/data/fbank]
"""
import argparse
import json
import os

import numpy as np
import torch
import torchaudio

SR = 16000
DUR_S = 2.0
NUM_BINS = 128
SEED = 20261126


def kaldi_fbank(x: np.ndarray) -> np.ndarray:
    """The feature contract, exactly (x: float32 in [-1, 1], 16 kHz mono)."""
    wav = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))[None] * 32768.0
    fb = torchaudio.compliance.kaldi.fbank(
        wav,
        num_mel_bins=NUM_BINS,
        sample_frequency=SR,
        frame_length=25.0,
        frame_shift=10.0,
        dither=0.0,
    )
    return fb.numpy().astype(np.float32)


def make_cases(rng: np.random.Generator) -> dict:
    n = int(SR * DUR_S)
    t = np.arange(n, dtype=np.float64) / SR
    cases = {}

    cases["silence"] = np.zeros(n)

    cases["white_noise"] = 0.1 * rng.standard_normal(n)

    # 18 Hz fundamental, harmonics up to ~400 Hz with a formant-ish envelope,
    # slight frequency arch, in low-level noise
    f0 = 18.0 + 2.0 * np.sin(np.pi * t / DUR_S)
    phase = 2 * np.pi * np.cumsum(f0) / SR
    rumble = np.zeros(n)
    for h in range(1, 23):
        fh = 18.0 * h
        amp = 1.0 / h ** 0.7 * (1.0 + 1.5 * np.exp(-((fh - 120.0) / 40.0) ** 2))
        rumble += amp * np.sin(h * phase + rng.uniform(0, 2 * np.pi))
    rumble *= 0.3 / np.max(np.abs(rumble))
    env = np.minimum(1.0, np.minimum(t / 0.2, (DUR_S - t) / 0.2))
    cases["rumble18"] = rumble * env + 0.01 * rng.standard_normal(n)

    cases["tone440"] = 0.5 * np.sin(2 * np.pi * 440.0 * t)

    loud = 3.0 * np.sin(2 * np.pi * 300.0 * t) + 1.5 * np.sin(2 * np.pi * 37.0 * t) \
        + 0.5 * rng.standard_normal(n)
    cases["clipped"] = np.clip(loud, -1.0, 1.0)

    return {k: v.astype(np.float32) for k, v in cases.items()}


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(here, "..", "tests", "data", "fbank"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    os.makedirs(args.out, exist_ok=True)

    rng = np.random.default_rng(SEED)
    meta = []
    for name, x in make_cases(rng).items():
        assert np.all(np.abs(x) <= 1.0), name
        fb = kaldi_fbank(x)
        assert fb.shape[1] == NUM_BINS
        x.astype("<f4").tofile(os.path.join(args.out, f"{name}.samples.f32le"))
        fb.astype("<f4").tofile(os.path.join(args.out, f"{name}.fbank.f32le"))
        meta.append({"name": name, "n_samples": int(x.size), "n_frames": int(fb.shape[0]),
                     "num_bins": NUM_BINS})
        print(f"{name:12s} samples={x.size} frames={fb.shape[0]} "
              f"fbank min={fb.min():.3f} max={fb.max():.3f} mean={fb.mean():.3f}")
    with open(os.path.join(args.out, "cases.json"), "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
