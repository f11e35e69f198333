"""Shared pieces of the models/ toolchain: features, frame labels, rumbled's windowing."""
from __future__ import annotations

import numpy as np
import torch
import torchaudio

from soundscape import resample

SR = 16000
N_MELS = 128
PATCH = 16
OUT_S = PATCH * 0.01  # one output frame = 16 fbank frames = 0.16 s
WINDOW = 998
HOP_OUT = 13


def fbank(x16k: np.ndarray) -> np.ndarray:
    """The feature contract: torchaudio Kaldi fbank of 16 kHz samples in [-1, 1]."""
    if len(x16k) < 400:
        return np.zeros((0, N_MELS), np.float32)
    wav = torch.from_numpy(np.ascontiguousarray(x16k, dtype=np.float32))[None] * 32768.0
    fb = torchaudio.compliance.kaldi.fbank(wav, num_mel_bins=N_MELS, sample_frequency=SR,
                                           frame_length=25.0, frame_shift=10.0, dither=0.0)
    return fb.numpy().astype(np.float32)


def audio_to_fbank(x: np.ndarray, rate: int) -> np.ndarray:
    """Recorder-rate samples -> resample_poly to 16 kHz -> fbank."""
    y = resample(x.astype(np.float64), rate, SR).astype(np.float32)
    return fbank(y)


def frame_labels(intervals, n_out: int, labels) -> np.ndarray:
    """Targets [n_out, len(labels)]: class c is 1 at output frame g when calls of class
    c cover at least half of [0.16 g, 0.16 (g + 1)); labels[0] (background) is 1 where
    no other class is. intervals: iterable of (begin_s, end_s, class_name)."""
    C = len(labels)
    idx = {c: i for i, c in enumerate(labels)}
    # coverage per class on a 10 ms grid, then pooled per output frame
    n10 = n_out * PATCH
    cover = np.zeros((C, n10 + 1), np.float32)
    for b, e, c in intervals:
        if c not in idx or idx[c] == 0:
            continue
        i0 = max(0, int(round(b * 100)))
        i1 = min(n10, int(round(e * 100)))
        if i1 > i0:
            cover[idx[c], i0:i1] = 1.0
    cov = cover[:, :n10].reshape(C, n_out, PATCH).mean(-1).T  # [n_out, C]
    y = (cov >= 0.5).astype(np.float32)
    y[:, 0] = 1.0 - y[:, 1:].max(1) if C > 1 else 1.0
    return y


def skipped_frames(skip, n_out: int, labels) -> np.ndarray:
    """Output frames mostly inside a left-out call ([(begin, end)]), as a mask."""
    return frame_labels([(b, e, labels[1]) for b, e in skip], n_out, labels)[:, 1] > 0


def windows(n_frames: int, window: int = WINDOW, hop_out: int = HOP_OUT):
    """rumbled's window schedule: list of (start_frame, length) for n_frames fbank frames."""
    n_out = n_frames // PATCH
    hop = PATCH * hop_out
    wins = []
    covered = 0
    s = 0
    while s + window <= n_frames:
        wins.append((s, window))
        covered = max(covered, (s + window) // PATCH)
        s += hop
    if covered < n_out:
        # The last window starts on the regular schedule and is shorter:
        # windows never start before the next scheduled start, which is what
        # lets the streaming code finalise frames as soon as a window runs.
        wins.append((s, n_frames - s))
    return wins


def stitch(n_frames: int, run, n_classes: int, window: int = WINDOW, hop_out: int = HOP_OUT,
           batch: int = 16) -> np.ndarray:
    """Per-output-frame probabilities averaged uniformly over rumbled's windows.
    run(list_of_(start, length)) -> list of [len // 16, C] probability arrays."""
    n_out = n_frames // PATCH
    acc = np.zeros((n_out, n_classes), np.float64)
    cnt = np.zeros(n_out, np.float64)
    wins = [w for w in windows(n_frames, window, hop_out) if w[1] >= PATCH]
    for i in range(0, len(wins), batch):
        chunk = wins[i:i + batch]
        outs = run(chunk)
        for (s, ln), p in zip(chunk, outs):
            g0 = s // PATCH
            acc[g0:g0 + len(p)] += p
            cnt[g0:g0 + len(p)] += 1
    return (acc / np.maximum(cnt, 1)[:, None]).astype(np.float32)


def torch_runner(model, feats_norm: np.ndarray):
    """A `run` for stitch() that evaluates a PyTorch model on normalised features."""
    def run(chunk):
        lens = {ln for _, ln in chunk}
        outs = []
        with torch.no_grad():
            if len(lens) == 1:
                ln = lens.pop()
                xb = torch.from_numpy(np.stack([feats_norm[s:s + ln] for s, _ in chunk]))
                outs = list(torch.sigmoid(model(xb)).numpy())
            else:
                for s, ln in chunk:
                    xb = torch.from_numpy(feats_norm[s:s + ln][None])
                    outs.append(torch.sigmoid(model(xb))[0].numpy())
        return outs
    return run


def ort_runner(sess, feats_norm: np.ndarray):
    def run(chunk):
        outs = []
        for s, ln in chunk:
            lg = sess.run(["logits"], {"fbank": feats_norm[s:s + ln][None]})[0][0]
            outs.append(1.0 / (1.0 + np.exp(-lg)))
        return outs
    return run
