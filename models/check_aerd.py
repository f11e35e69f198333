#!/usr/bin/env python3
"""Check that rumbled reproduces aerd's own probabilities for an exported model.

  python models/export_aerd.py --checkpoint aerd_ev_call_ko1_v1-5876c7c3.pt \\
      --out-dir models/ --reference rec.wav
  cargo build --release
  python models/check_aerd.py models/aerd-ev-call-ko1.json models/aerd-ev-call-ko1.reference.json

Runs `rumbled replay --frames` on the reference's WAV with the reference's
hop, so rumbled computes everything itself (fbank, normalisation, the graph
in onnxruntime, windows, stitching), and compares its per-frame
probabilities with the ones `aerd`'s PyTorch `predict` gave over the same
windows. Exits non-zero above 1e-4 plus the CSV's rounding (4 decimals).
Needs numpy only: no torch, no aerd.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
# the committed small model's Rust test allows 1e-4; the CSV rounds to 4 decimals
TOLERANCE = 1e-4 + 5e-5


def child_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_rumbled(rumbled: str, wav: str, manifest: str, hop: int, frames_csv: str):
    """One `rumbled replay` on one thread; returns wall s, CPU s and its summary line."""
    t0, c0 = time.perf_counter(), child_cpu()
    p = subprocess.run([rumbled, "replay", wav, "--model", manifest, "--threads", "1",
                        "--hop", str(hop), "--frames", frames_csv, "--quiet"],
                       capture_output=True, text=True, env=dict(os.environ, RUST_LOG="warn"))
    wall, cpu = time.perf_counter() - t0, child_cpu() - c0
    if p.returncode != 0:
        raise SystemExit(f"rumbled failed:\n{p.stderr}")
    return wall, cpu, p.stderr.strip().splitlines()[-1] if p.stderr.strip() else ""


def read_frames(path: str) -> np.ndarray:
    """rumbled's --frames CSV -> [frames, classes] probabilities."""
    with open(path) as f:
        rows = list(csv.reader(f))
    return np.array([[float(v) for v in r[2:]] for r in rows[1:]], np.float64)


def check(rumbled: str, manifest: str, reference: str, frames_csv: str) -> tuple[float, str]:
    """Largest |rumbled - aerd| over the reference, and a line saying so."""
    with open(reference) as f:
        ref = json.load(f)
    wav = os.path.join(os.path.dirname(os.path.abspath(reference)), ref["wav"])
    run_rumbled(rumbled, wav, manifest, ref["hop_outputs"], frames_csv)
    got, want = read_frames(frames_csv), np.array(ref["probs"], np.float64)
    if got.shape != want.shape:
        raise SystemExit(f"{reference}: rumbled gave {got.shape} frames x classes, "
                         f"aerd {want.shape}")
    worst = float(np.abs(got - want).max())
    name = os.path.splitext(os.path.basename(manifest))[0]
    return worst, (f"{name}: {want.shape[0]} frames x {want.shape[1]} classes: "
                   f"max |rumbled - aerd| = {worst:.2e} (CSV rounding included)")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("manifest", help="the exported model's manifest (.json)")
    ap.add_argument("reference", help="<name>.reference.json from export_aerd.py --reference")
    ap.add_argument("--rumbled", default=os.path.join(ROOT, "target", "release", "rumbled"))
    ap.add_argument("--frames", default=None, help="where rumbled's frame CSV goes "
                    "(default: next to the reference)")
    args = ap.parse_args(argv)
    frames = args.frames or os.path.splitext(args.reference)[0] + ".rumbled-frames.csv"
    worst, line = check(args.rumbled, args.manifest, args.reference, frames)
    print(line)
    if worst > TOLERANCE:
        raise SystemExit(f"rumbled differs from aerd by more than {TOLERANCE:g}")


if __name__ == "__main__":
    sys.exit(main())
