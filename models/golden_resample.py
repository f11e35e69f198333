#!/usr/bin/env python3
"""Golden resampling vectors: what the training pipeline does to a recorder's rate.

models/common.py brings every recording to 16 kHz with
scipy.signal.resample_poly (soundscape.resample); rumbled's StreamResampler
must compute the same samples, or the model sees features it was not trained
on. Writes under tests/data/resample/ (relative to the repository root):
  cases.json            [{"name", "rate", "n_in", "n_out"}]
  <name>.in.s16le       the recorder's samples, 16-bit little-endian
  <name>.out.f32le      resample_poly(x / 32768, 16000 / g, rate / g) as float32

The input is 0.25 s of a rumble-like tone, a tone near the recorder's Nyquist
frequency, white noise and a click, so that pass band, transition band and
stop band are all exercised. Deterministic: fixed seed.
Usage: python models/golden_resample.py [--out tests/data/resample]
(needs only models/requirements-data.txt)
"""
import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from soundscape import resample  # noqa: E402

RATES = (2000, 4000, 8000, 11025, 22050, 44100, 48000, 96000)
SR = 16000
SEED = 20261127


def recording(rate: int, rng) -> np.ndarray:
    n = rate // 4
    t = np.arange(n) / rate
    x = (0.3 * np.sin(2 * np.pi * 18.0 * t)
         + 0.2 * np.sin(2 * np.pi * 0.45 * rate * t)
         + 0.05 * rng.standard_normal(n))
    x[n // 2] += 0.5
    return np.clip(np.round(x * 32767), -32768, 32767).astype("<i2")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "tests", "data", "resample"))
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    rng = np.random.default_rng(SEED)
    cases = []
    for rate in RATES:
        x = recording(rate, rng)
        y = resample(x.astype(np.float64) / 32768.0, rate, SR).astype("<f4")
        name = f"r{rate}"
        x.tofile(os.path.join(a.out, f"{name}.in.s16le"))
        y.tofile(os.path.join(a.out, f"{name}.out.f32le"))
        cases.append({"name": name, "rate": rate, "n_in": len(x), "n_out": len(y)})
    with open(os.path.join(a.out, "cases.json"), "w") as f:
        json.dump(cases, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
