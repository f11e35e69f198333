#!/usr/bin/env python3
"""Feature throughput, rumbled vs torchaudio, measured in one run.

Times torchaudio.compliance.kaldi.fbank on 60 s of 16 kHz noise (one
thread, the feature contract's parameters), then runs rumbled's own fbank
benchmark (`cargo bench --bench fbank`) and prints both and their ratio.

    python models/bench_fbank_vs_torchaudio.py
"""
import re
import subprocess
import time

import numpy as np
import torch
import torchaudio

SECONDS = 60


def torchaudio_speed():
    torch.set_num_threads(1)
    x = torch.from_numpy(np.random.default_rng(0).uniform(-1, 1, 16000 * SECONDS).astype(np.float32))[None]

    def run():
        torchaudio.compliance.kaldi.fbank(x * 32768, num_mel_bins=128, sample_frequency=16000,
                                          frame_length=25, frame_shift=10, dither=0.0)
    run()
    reps = 5
    t0 = time.perf_counter()
    for _ in range(reps):
        run()
    per_run = (time.perf_counter() - t0) / reps
    return SECONDS / per_run


def rumbled_speed():
    out = subprocess.run(["cargo", "bench", "--bench", "fbank", "--", "fbank"],
                         capture_output=True, text=True, check=True).stdout
    m = re.search(r"fbank[^\n]*?: ([0-9.]+)x real time", out)
    if not m:
        raise SystemExit(f"no fbank speed in the bench output:\n{out}")
    return float(m.group(1))


if __name__ == "__main__":
    ta = torchaudio_speed()
    rs = rumbled_speed()
    print(f"torchaudio kaldi.fbank (1 thread): {ta:.0f}x real time")
    print(f"rumbled StreamingFbank (10 ms pushes): {rs:.0f}x real time")
    print(f"ratio rumbled / torchaudio: {rs / ta:.1f}")
