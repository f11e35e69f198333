#!/usr/bin/env python3
"""Full-size aerd export, parity check and benchmark against aerd's PyTorch predict.

  cargo build --release
  python models/bench_aerd.py                 # everything under out/aerd-bench/

1. Exports a randomly initialised full-size AERDClassifier (BEATs, 12 layers,
   768 wide, 90 M parameters; torch.manual_seed(0)) with models/export_aerd.py:
   fp32 and dynamic int8 ONNX + manifests, and aerd's reference probabilities
   on tests/data/aerd/clip.wav over rumbled's default windows (hop 13).
2. Parity at full precision: `rumbled replay --frames` of that model on the
   reference clip against aerd's predict (rumbled's own fbank, graph, windows
   and stitching; must be within 1e-4 plus the CSV's rounding). The
   committed small model gets the same check, windows included, in
   tests/aerd_checkpoint.rs.
3. Benchmark, one thread each, in one run: a 10-minute synthetic soundscape
   (models/soundscape.py), cut into consecutive windows of 998 fbank frames
   (9.995 s) every 992 frames (62 output frames, 9.92 s): exactly the windows
   `rumbled replay --hop 62` runs, so both do the same work and every output
   frame comes from one window. aerd: `predict` on each window's samples
   (its own fbank + BEATs). rumbled: `target/release/rumbled replay --model
   ... --threads 1 --hop 62 --frames CSV`, wall time of the process, and the
   same minus its fixed start-up cost (sha256, session, probe window; measured
   on a 1 s file). Largest probability difference from rumbled's frame CSV
   (4 decimals, so up to 5e-5 of it is rounding). The three take turns for
   --rounds rounds (2), because this machine's speed drifts by tens of
   percent over minutes; the ratios are of the totals over all rounds, and
   results.json keeps every round.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import export_aerd as ex  # noqa: E402
from check_aerd import TOLERANCE, check, read_frames, run_rumbled  # noqa: E402

NAME = "aerd-random-full"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(ROOT, "out", "aerd-bench"))
    ap.add_argument("--rumbled", default=os.path.join(ROOT, "target", "release", "rumbled"))
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--seed", type=int, default=7, help="soundscape seed")
    ap.add_argument("--reuse", action="store_true", help="keep an existing export")
    ap.add_argument("--skip-parity", action="store_true", help="skip the parity step")
    ap.add_argument("--rounds", type=int, default=2,
                    help="benchmark rounds; aerd, rumbled fp32 and int8 take turns in each")
    args = ap.parse_args()
    torch.set_num_threads(1)
    os.makedirs(args.out, exist_ok=True)
    fp32 = os.path.join(args.out, f"{NAME}.json")
    int8 = os.path.join(args.out, f"{NAME}-int8.json")
    clip = os.path.join(ROOT, "tests", "data", "aerd", "clip.wav")
    results = {"torch_threads": torch.get_num_threads(), "load_before": os.getloadavg()}

    # 1. export
    if not (args.reuse and os.path.exists(fp32) and os.path.exists(int8)):
        t0 = time.perf_counter()
        ex.main(["--random-init", "--config", "full", "--seed", "0", "--name", NAME,
                 "--out-dir", args.out, "--int8", "--reference", clip])
        results["export_s"] = time.perf_counter() - t0
    for p in (fp32, int8):
        m = json.load(open(p))
        onnx = os.path.join(args.out, m["onnx"])
        results[os.path.basename(onnx) + "_MB"] = os.path.getsize(onnx) / 1e6
    labels = json.load(open(fp32))["labels"]
    model = ex.random_model("full", 0, len(labels), dict(enumerate(labels)))

    # 2. full-precision parity in Rust (features, graph, windows, stitching)
    if not args.skip_parity:
        worst, line = check(args.rumbled, fp32, os.path.join(args.out, f"{NAME}.reference.json"),
                            os.path.join(args.out, "parity_frames.csv"))
        print(line, flush=True)
        results["parity_clip_fp32"] = line
        if worst > TOLERANCE:
            raise SystemExit("full-size parity failed")

    # 3. benchmark
    from soundscape import generate, write_wav
    wav = os.path.join(args.out, f"soundscape{args.minutes:g}min.wav")
    if not os.path.exists(wav):
        write_wav(wav, generate(seed=args.seed, duration_s=60 * args.minutes))
    samples = ex.read_wav(wav)
    n_frames = (len(samples) - 400) // 160 + 1
    hop = ex.WINDOW // ex.PATCH  # 62 output frames: consecutive windows
    wins = [w for w in ex.windows(n_frames, ex.WINDOW, hop) if w[1] >= ex.PATCH]
    short = os.path.join(args.out, "one_second.wav")
    import soundfile as sf
    sf.write(short, np.round(samples[:16000] * 32768).astype(np.int16), 16000, subtype="PCM_16")

    results["recording"] = {"seconds": len(samples) / 16000, "windows": len(wins),
                            "window_frames": ex.WINDOW, "hop_outputs": hop}
    aerd_probs = np.zeros((n_frames // ex.PATCH, len(labels)))

    def run_aerd():
        t0, c0 = time.perf_counter(), time.process_time()
        for s, ln in wins:
            a, b = ex.window_samples(s, ln)
            p = model.predict(torch.from_numpy(samples[a:b])[None])[0].numpy()
            aerd_probs[s // ex.PATCH:s // ex.PATCH + len(p)] = p
        return {"wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0}

    def run_side(tag, manifest):
        w0, c_0, _ = run_rumbled(args.rumbled, short, manifest, hop,
                                 os.path.join(args.out, "short.csv"))
        frames_csv = os.path.join(args.out, f"frames-{tag}.csv")
        wall, cpu, summary = run_rumbled(args.rumbled, wav, manifest, hop, frames_csv)
        got = read_frames(frames_csv)
        assert got.shape == aerd_probs.shape, (got.shape, aerd_probs.shape)
        return {"wall_s": wall, "cpu_s": cpu, "startup_wall_s": w0, "startup_cpu_s": c_0,
                "max_abs_prob_diff_csv": float(np.max(np.abs(got - aerd_probs))),
                "summary": summary}

    # The machine's speed drifts by tens of percent over minutes (shared
    # host, clocks): the sides take turns, round after round, and the ratios
    # are of the totals over all rounds.
    sides = (("fp32", fp32), ("int8", int8))
    rounds = []
    for r in range(args.rounds):
        row = {"aerd_predict": run_aerd()}
        print(f"round {r + 1}: aerd predict: {len(wins)} windows, "
              f"{row['aerd_predict']['wall_s']:.1f} s wall, "
              f"{row['aerd_predict']['cpu_s']:.1f} s CPU", flush=True)
        for tag, manifest in sides:
            row[f"rumbled_{tag}"] = run_side(tag, manifest)
            x = row[f"rumbled_{tag}"]
            print(f"round {r + 1}: rumbled {tag}: {x['wall_s']:.1f} s wall "
                  f"({x['startup_wall_s']:.1f} s of it start-up), {x['cpu_s']:.1f} s CPU; "
                  f"aerd/rumbled = {row['aerd_predict']['wall_s'] / x['wall_s']:.2f}x wall",
                  flush=True)
        rounds.append(row)
    results["rounds"] = rounds

    def total(side, key):
        return sum(row[side][key] for row in rounds)

    aerd_wall, aerd_cpu = total("aerd_predict", "wall_s"), total("aerd_predict", "cpu_s")
    results["aerd_predict"] = {"wall_s": aerd_wall, "cpu_s": aerd_cpu}
    for tag, _ in sides:
        side = f"rumbled_{tag}"
        wall, cpu, w0 = total(side, "wall_s"), total(side, "cpu_s"), total(side, "startup_wall_s")
        diff = max(row[side]["max_abs_prob_diff_csv"] for row in rounds)
        r = {"wall_s": wall, "cpu_s": cpu, "startup_wall_s": w0,
             "speedup_wall": aerd_wall / wall, "speedup_cpu": aerd_cpu / cpu,
             "speedup_wall_without_startup": aerd_wall / max(wall - w0, 1e-9),
             "speedup_wall_per_round": [row["aerd_predict"]["wall_s"] / row[side]["wall_s"]
                                        for row in rounds],
             "max_abs_prob_diff_csv": diff, "summary": rounds[-1][side]["summary"]}
        results[side] = r
        print(f"rumbled {tag}, {len(rounds)} rounds: {wall:.1f} s wall ({w0:.1f} s of it "
              f"start-up), {cpu:.1f} s CPU, aerd {aerd_wall:.1f} s wall; aerd/rumbled = "
              f"{r['speedup_wall']:.2f}x wall, {r['speedup_wall_without_startup']:.2f}x without "
              f"start-up, {r['speedup_cpu']:.2f}x CPU; max |p - aerd| = {diff:.2e} "
              "(CSV, 4 decimals)", flush=True)
    results["load_after"] = os.getloadavg()
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
