#!/usr/bin/env python3
"""Evaluate a rumbled model on held-out synthetic soundscapes (or your own recordings).

  python models/evaluate.py --model models/rumbled-edge-ev5.json --out models/eval/metrics.json
  python models/evaluate.py --model my-model.json --data DIR      # WAV + Raven tables
      [--class-column C --map 'Rumble=rumble' --unknown skip --channel N]  # as for train.py

Runs the exported ONNX model in onnxruntime with rumbled's exact windowing
(998-frame windows, hop 13 output frames, uniform averaging, tail window).

Metrics:
  framewise   binary AP of call vs no-call per 160 ms frame (score = max call-class
              probability, and 1 - P(background)); per-class one-vs-rest ROC AUC
  events      a detector in Python (hysteresis on the max call-class probability:
              onset --on, offset --off, minimum duration, merge gap; the label is
              the class with the highest mean probability); detections matched
              one-to-one to truth calls by temporal IoU >= 0.3; P/R/F1
              (a) against every truth call, (b) against truth "regions" (overlapping
              truth calls merged: a class-agnostic detector reports one call there),
              (c) on regions at SNR >= 0 dB (detections matching a region of
              lower SNR are ignored); label accuracy on matched calls
  false alarms detections per hour on call-free confounder soundscapes
  breakdown   recall by SNR band and everything by recorder sample rate
  --rumbled BIN  additionally run `BIN replay FILE --events out.jsonl` and score
              its events the same way (--rumbled-config TOML: with that file's
              [endpoint] settings, e.g. those tune_endpoint.py chose)
Test soundscapes use seeds >= 900000, disjoint from training (1000..) and
validation (500000..).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import soundscape as ss  # noqa: E402
from common import (OUT_S, audio_to_fbank, frame_labels, ort_runner, skipped_frames,  # noqa: E402
                    stitch)

TEST_SEED0 = 900000
CONF_SEED0 = 950000
RATES = (2000, 4000, 8000, 16000, 22050, 44100, 48000)
SNR_BANDS = ((-99, -5), (-5, 0), (0, 10), (10, 20), (20, 99))


def load_model(manifest_path):
    import onnxruntime as ort
    with open(manifest_path) as f:
        m = json.load(f)
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(os.path.join(os.path.dirname(manifest_path), m["onnx"]), so,
                                providers=["CPUExecutionProvider"])
    return m, sess


def predict(m, sess, audio, rate):
    fb = audio_to_fbank(audio, rate)
    f = m["features"]
    xn = ((fb - f["mean"]) / (2 * f["std"])).astype(np.float32)
    return stitch(len(fb), ort_runner(sess, xn), len(m["labels"]), window=m["window_frames"]), len(fb)


def detect(probs, labels, on=0.5, off=0.35, min_dur=0.32, merge_gap=0.32, max_dur=60.0):
    """Hysteresis endpointing on P(call) = max over call classes -> [(b, e, label, conf)]."""
    pc = probs[:, 1:].max(1)
    segs = []
    active = False
    for g, p in enumerate(pc):
        if not active and p >= on:
            active, s = True, g
        elif active and p < off:
            segs.append([s, g])
            active = False
    if active:
        segs.append([s, len(pc)])
    merged = []
    for s in segs:
        if merged and (s[0] - merged[-1][1]) * OUT_S < merge_gap:
            merged[-1][1] = s[1]
        else:
            merged.append(s)
    out = []
    for s, e in merged:
        if (e - s) * OUT_S < min_dur:
            continue
        mp = probs[s:e, 1:].mean(0)
        k = int(np.argmax(mp))
        out.append((s * OUT_S, e * OUT_S, labels[1 + k], float(mp[k])))
    return out


def iou(a, b):
    inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    union = max(a[1], b[1]) - min(a[0], b[0])
    return inter / union if union > 0 else 0.0


def match(dets, truth, thr=0.3):
    """Greedy one-to-one matching by IoU (highest first). -> list of (det_i, truth_j)."""
    pairs = []
    for i, d in enumerate(dets):
        for j, t in enumerate(truth):
            v = iou(d, t)
            if v >= thr:
                pairs.append((v, i, j))
    pairs.sort(reverse=True)
    used_d, used_t, out = set(), set(), []
    for v, i, j in pairs:
        if i not in used_d and j not in used_t:
            used_d.add(i)
            used_t.add(j)
            out.append((i, j))
    return out


def regions(calls):
    """Merge overlapping truth calls: [(b, e, set(classes), min SNR... max SNR)]."""
    out = []
    for c in sorted(calls, key=lambda c: c[0]):
        if out and c[0] < out[-1][1]:
            r = out[-1]
            r[1] = max(r[1], c[1])
            r[2].add(c[2])
            r[3] = max(r[3], c[3])
        else:
            out.append([c[0], c[1], {c[2]}, c[3]])
    return out


def average_precision(score, truth):
    order = np.argsort(-score, kind="stable")
    t = truth[order].astype(np.float64)
    if t.sum() == 0:
        return float("nan")
    tp = np.cumsum(t)
    return float(((tp / np.arange(1, len(t) + 1)) * t).sum() / t.sum())


def roc_auc(score, truth):
    t = truth.astype(bool)
    npos, nneg = t.sum(), (~t).sum()
    if npos == 0 or nneg == 0:
        return float("nan")
    from scipy.stats import rankdata
    r = rankdata(score)
    return float((r[t].sum() - npos * (npos + 1) / 2) / (npos * nneg))


def prf(tp, nd, nt):
    p = tp / nd if nd else float("nan")
    r = tp / nt if nt else float("nan")
    f = 2 * p * r / (p + r) if nd and nt and (p + r) > 0 else float("nan")
    return {"precision": round(p, 4), "recall": round(r, 4), "f1": round(f, 4),
            "tp": tp, "detections": nd, "truth": nt}


def score_file(dets, calls, snr_min=0.0, ignore=()):
    """calls: [(b, e, cls, snr)]; ignore: [(b, e)] left out of the truth (a class
    --unknown skip leaves out), so a detection that touches one and matches no
    call is not counted. Returns counters for aggregation."""
    if ignore:
        hit = {i for i, _ in match(dets, regions(calls))}
        dets = [d for i, d in enumerate(dets)
                if i in hit or not any(iou(d, g) > 0 for g in ignore)]
    c = {}
    pm = match(dets, calls)
    c["calls_tp"], c["calls_nd"], c["calls_nt"] = len(pm), len(dets), len(calls)
    c["label_ok"] = sum(1 for i, j in pm if dets[i][2] == calls[j][2])
    c["label_n"] = len(pm)
    c["per_class"] = {}
    for i, j in pm:
        k = calls[j][2]
        pc = c["per_class"].setdefault(k, [0, 0, 0])
        pc[0] += 1
        pc[1] += dets[i][2] == k
    for t in calls:
        c["per_class"].setdefault(t[2], [0, 0, 0])[2] += 1
    matched_t = {j for _, j in pm}
    c["snr"] = [(t[3], j in matched_t) for j, t in enumerate(calls)]
    c["rate_calls"] = [(t[2], j in matched_t) for j, t in enumerate(calls)]
    reg = regions(calls)
    rm = match(dets, reg)
    c["reg_tp"], c["reg_nd"], c["reg_nt"] = len(rm), len(dets), len(reg)
    # SNR >= snr_min: regions whose loudest call is below are "don't care"
    low = {j for j, r in enumerate(reg) if r[3] < snr_min}
    hits = {i for i, j in rm if j not in low}
    # detections that found no counted region but touch a low-SNR one (those
    # matched to one included) are ignored; a hit stays counted even if it
    # also touches one, or it would count as a true positive but not as a
    # detection (precision > 1)
    ign = {i for i, d in enumerate(dets)
           if i not in hits and any(iou(d, reg[j]) > 0 for j in low)}
    c["hi_tp"] = len(hits)
    c["hi_nd"] = len(dets) - len(ign)
    c["hi_nt"] = len(reg) - len(low)
    return c


def aggregate(counters):
    s = lambda k: sum(c[k] for c in counters)  # noqa: E731
    out = {"events_vs_calls": prf(s("calls_tp"), s("calls_nd"), s("calls_nt")),
           "events_vs_regions": prf(s("reg_tp"), s("reg_nd"), s("reg_nt")),
           "events_vs_regions_snr_ge_0dB": prf(s("hi_tp"), s("hi_nd"), s("hi_nt")),
           "label_accuracy": round(s("label_ok") / max(1, s("label_n")), 4)}
    pcs = {}
    for c in counters:
        for k, v in c["per_class"].items():
            a = pcs.setdefault(k, [0, 0, 0])
            for i in range(3):
                a[i] += v[i]
    out["per_class"] = {k: {"truth": v[2], "recall": round(v[0] / max(1, v[2]), 4),
                            "label_accuracy": round(v[1] / max(1, v[0]), 4)}
                        for k, v in sorted(pcs.items())}
    snr = [x for c in counters for x in c["snr"]]
    out["recall_by_snr"] = {}
    for lo, hi in SNR_BANDS:
        sel = [m for v, m in snr if lo <= v < hi]
        out["recall_by_snr"][band_name(lo, hi)] = {
            "n": len(sel), "recall": round(float(np.mean(sel)), 4) if sel else None}
    return out


def band_name(lo, hi) -> str:
    return f"[{lo},{hi})" if -99 < lo and hi < 99 else (f"<{hi}" if lo == -99 else f">={lo}")


def loudest_in(calls, lo, hi, n_out: int, labels) -> np.ndarray:
    """The frames whose loudest call has lo <= SNR < hi."""
    inside = frame_labels([(b, e, c) for b, e, c, s in calls if lo <= s < hi], n_out, labels)
    louder = frame_labels([(b, e, c) for b, e, c, s in calls if s >= hi], n_out, labels)
    return (inside[:, 0] == 0) & (louder[:, 0] == 1)


def band_masks(calls, n_out: int, labels) -> dict:
    """Per SNR band, the frames whose loudest call is in that band."""
    return {band_name(lo, hi): loudest_in(calls, lo, hi, n_out, labels) for lo, hi in SNR_BANDS}


def call_ap_by_snr(p, y, masks) -> dict:
    """Framewise call AP of each SNR band's call frames against all call-free
    frames: where the all-SNR AP loses its precision."""
    score, free = p[:, 1:].max(1), y[:, 0] == 1
    out = {}
    for name, mask in masks.items():
        sel = mask | free
        out[name] = {"call_frames": int(mask.sum()),
                     "ap": round(average_precision(score[sel], mask[sel].astype(float)), 4)
                     if mask.any() else None}
    return out


def framewise(probs_list, y_list):
    p = np.concatenate(probs_list)
    y = np.concatenate(y_list)
    out = {"frames": int(len(p)), "call_frames": int((1 - y[:, 0]).sum()),
           "call_ap_max": round(average_precision(p[:, 1:].max(1), 1 - y[:, 0]), 4),
           "call_ap_1mbg": round(average_precision(1 - p[:, 0], 1 - y[:, 0]), 4),
           "call_auc": round(roc_auc(p[:, 1:].max(1), 1 - y[:, 0]), 4)}
    out["class_auc"] = {}
    return out, p, y


def synthetic_sets(seed0, conf_seed0, per_rate, minutes, nconf, rates=RATES, ndays=0):
    """Soundscapes with calls (per_rate per recorder rate, seeds seed0 + 100 * rate index + k)
    and nconf 10 min call-free confounder scenes of each kind ("hard": every confounder at
    twice its rate, seeds conf_seed0 + k; "typical": drawn as in training, conf_seed0 + 1000 + k),
    plus ndays of kind "windy_day" (ss.WINDY_DAY at twice their rate, conf_seed0 + 2000 + k).
    Items are (name, rate, audio, calls [(b, e, cls, snr)], wav path or None); the confounder
    scenes come as one generator per kind, to be iterated once."""
    tests = []
    for ri, rate in enumerate(rates):
        for k in range(per_rate):
            seed = seed0 + ri * 100 + k
            sc = ss.generate(seed=seed, duration_s=minutes * 60, rate=rate,
                             density=4.0, confounder_always=(k % 2 == 1))
            calls = [(c.begin, c.end, c.cls, c.snr_db) for c in sc.calls]
            tests.append((f"seed{seed}@{rate}", rate, sc.audio, calls, None))
    # 0 scenes skips false alarms. Generated lazily, one scene at a time, so that many
    # hours of call-free audio (--confounder-minutes 480 and more) fit in memory.
    def scenes(kind, n):
        for k in range(n):
            yield confounder_scene(kind, k, conf_seed0, rates)

    confs = {"hard": scenes("hard", nconf), "typical": scenes("typical", nconf)} if nconf else {}
    if ndays:
        confs["windy_day"] = scenes("windy_day", ndays)
    return tests, confs


def confounder_scene(kind, k, conf_seed0, rates=RATES):
    """The k-th 10 min call-free scene of a kind, as a synthetic_sets item."""
    rate = rates[k % len(rates)]
    if kind == "hard":
        seed = conf_seed0 + k
        sc = ss.generate(seed=seed, duration_s=600.0, rate=rate, no_calls=True,
                         confounder_always=True, confounder_scale=2.0)
    elif kind == "windy_day":
        seed = conf_seed0 + 2000 + k
        sc = ss.generate(seed=seed, duration_s=600.0, rate=rate, no_calls=True,
                         confounders=ss.WINDY_DAY, confounder_always=True, confounder_scale=2.0)
    else:
        seed = conf_seed0 + 1000 + k
        sc = ss.generate(seed=seed, duration_s=600.0, rate=rate, no_calls=True)
    return f"conf{seed}@{rate}", rate, sc.audio, [], None


def replay_end_events(binary, wavs, manifest=None, config=None, channel=None) -> list:
    """The "end" event (one per call, closing its "start" and "update" events) of every
    call `rumbled replay` reports in wavs, as JSON dicts. manifest None: rumbled's
    configured model; config: a rumbled.toml for its [endpoint] settings (None: the
    model's recommended settings where its manifest has them, rumbled's built-in
    defaults for the rest); channel: the one to analyse (None: rumbled's [input] channel)."""
    with tempfile.TemporaryDirectory() as td:
        ev = os.path.join(td, "events.jsonl")
        cmd = [binary, "replay", *wavs, "--events", ev, "-q"]
        if manifest:
            cmd += ["--model", manifest]
        if config:
            cmd += ["--config", config]
        if channel is not None:
            cmd += ["--channel", str(channel)]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
        if r.returncode != 0:
            raise RuntimeError(f"rumbled replay failed ({r.returncode}): {r.stderr[-2000:]}")
        with open(ev) as f:
            return [e for e in map(json.loads, filter(str.strip, f)) if e.get("type") == "end"]


def run_rumbled(binary, wav, manifest, config=None, channel=None):
    """The calls `rumbled replay` finds in one WAV as [(begin, end, label, confidence)]."""
    dets = []
    for e in replay_end_events(binary, [wav], manifest, config, channel):
        b = float(e["offset_s"])
        dets.append((b, b + float(e["duration_s"]), e["label"], float(e.get("confidence", 0))))
    return dets


def parse_rates(text):
    """--rates: comma-separated recorder sample rates in Hz."""
    try:
        rates = tuple(int(r) for r in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give sample rates in Hz, e.g. 11025,32000")
    if any(r <= 0 for r in rates):
        raise argparse.ArgumentTypeError(f"{text!r}: sample rates must be positive")
    return rates


def add_data_arguments(ap):
    """How --data's Raven tables are read, as train.py reads them."""
    ap.add_argument("--class-column", help="--data: the Raven column of the class, as for "
                    "train.py (default: the first of Class, Label, Call Type, Annotation, Species)")
    ap.add_argument("--map", help="--data: rename classes, as for train.py: "
                    "'Rumble=rumble,Tr=trumpet'")
    ap.add_argument("--unknown", choices=["error", "skip", "call"], default="error",
                    help="--data: a class that is not a model label stops the run (error), is "
                    "left out of the truth, its frames and the detections on it uncounted "
                    "(skip), or is scored as the first call label (call), as train.py trains it")
    ap.add_argument("--channel", type=int, default=0,
                    help="--data: the channel to evaluate (0-based); rumbled replays the same one")
    ap.add_argument("--snr-column", help="--data: a Raven column with each call's SNR in dB "
                    "(e.g. 'SNR NIST Quick (dB)'), for the scores by SNR band and at SNR >= 0 dB; "
                    "without it every call counts as 0 dB or louder")


def annotated_calls(a, labels):
    """--data's recordings as [(wav, calls [(b, e, label, snr)], left-out calls [(b, e)])].
    Without --snr-column every call counts as 0 dB or louder, so the *_snr_ge_0dB
    numbers are then those of all calls."""
    from train import annotated_files, parse_map
    out = []
    for w, table, _, known, skip in annotated_files(a.data, labels, a.class_column,
                                                    parse_map(a.map), a.unknown):
        try:
            snr = ss.read_raven_snr(table, a.snr_column) if a.snr_column else {}
        except ValueError as e:
            raise SystemExit(str(e))
        out.append((w, [(b, e, c, snr.get((b, e), 99.0)) for b, e, c in known], skip))
    return out


def data_tests(a, labels):
    """--data's recordings as tests [(name, rate, audio, calls, wav)], and {name: left-out
    calls}."""
    from train import read_channel
    tests, ignored = [], {}
    for w, calls, skip in annotated_calls(a, labels):
        x, sr = read_channel(w, a.channel)
        name = os.path.relpath(w, a.data)
        ignored[name] = skip
        tests.append((name, sr, x, calls, w))
    return tests, ignored


def clean(o):
    """NaN -> null so that the output is strict JSON."""
    if isinstance(o, float) and o != o:
        return None
    if isinstance(o, dict):
        return {k: clean(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [clean(v) for v in o]
    return o


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=os.path.join(HERE, "rumbled-edge-ev5.json"))
    ap.add_argument("--per-rate", type=int, default=2, help="test soundscapes per recorder rate")
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--rates", type=parse_rates, default=RATES,
                    help="recorder rates of the synthetic test, comma-separated (default "
                         f"{','.join(map(str, RATES))}, the rates trained on; others such as "
                         "11025,24000,32000,96000 test recorders the model never saw)")
    ap.add_argument("--confounder-minutes", type=float, default=120.0)
    ap.add_argument("--windy-day-minutes", type=float, default=0.0,
                    help="also count false alarms in this much call-free wind in leaves "
                         "under insect choruses (10 min scenes)")
    ap.add_argument("--data", help="evaluate on WAV + Raven tables in DIR instead")
    add_data_arguments(ap)
    ap.add_argument("--on", type=float, default=0.5)
    ap.add_argument("--off", type=float, default=0.35)
    ap.add_argument("--min-dur", type=float, default=0.32)
    ap.add_argument("--merge-gap", type=float, default=0.32)
    ap.add_argument("--rumbled", help="path of the rumbled binary: also score its replay events")
    ap.add_argument("--rumbled-config", help="rumbled.toml whose [endpoint] section rumbled replays with "
                    "(default: the model's recommended settings, else rumbled's built-in ones)")
    ap.add_argument("--out", help="write metrics JSON here")
    a = ap.parse_args()
    # Per-run scratch for the WAVs rumbled replays, so that evaluations
    # running side by side (two models, two thresholds) never share a file.
    with tempfile.TemporaryDirectory(prefix="rumbled-eval-") as scratch:
        evaluate(a, scratch)


def evaluate(a, scratch):
    import torch
    torch.set_num_threads(1)
    m, sess = load_model(a.model)
    labels = m["labels"]
    t0 = time.time()

    tests = []  # (name, rate, audio, calls[(b,e,cls,snr)], wav path or None)
    ignored = {}  # name -> calls of --data left out by --unknown skip [(b, e)]
    if a.data:
        tests, ignored = data_tests(a, labels)
        confs = []
    else:
        tests, confs = synthetic_sets(TEST_SEED0, CONF_SEED0, a.per_rate, a.minutes,
                                      int(round(a.confounder_minutes / 10)), a.rates,
                                      int(round(a.windy_day_minutes / 10)))
    print(f"data ready in {time.time() - t0:.0f} s", file=sys.stderr)

    per_rate = {}
    probs_all, y_all, counters, rcounters, keep_all, bands_all = [], [], [], [], [], []
    sweep_files, sweep_conf = [], {}
    infer_s = audio_s = 0.0
    for name, rate, x, calls, wav in tests:
        t1 = time.time()
        probs, nfb = predict(m, sess, x, rate)
        infer_s += time.time() - t1
        audio_s += len(x) / rate
        skip = ignored.get(name, [])
        # frames of left-out calls count nowhere
        fw_frames = ~skipped_frames(skip, len(probs), labels)
        y = frame_labels([(b, e, c) for b, e, c, _ in calls], len(probs), labels)[fw_frames]
        # frames of calls below 0 dB SNR (and no louder call): "don't care" for *_snr_ge_0dB
        keep_all.append(~loudest_in(calls, -np.inf, 0, len(probs), labels)[fw_frames])
        bands_all.append({k: v[fw_frames] for k, v in band_masks(calls, len(probs), labels).items()})
        dets = detect(probs, labels, a.on, a.off, a.min_dur, a.merge_gap)
        c = score_file(dets, calls, ignore=skip)
        probs_all.append(probs[fw_frames])
        y_all.append(y)
        counters.append(c)
        sweep_files.append((probs, calls, skip))
        pr = per_rate.setdefault(rate, {"p": [], "y": [], "c": [], "k": []})
        pr["k"].append(keep_all[-1])
        pr["p"].append(probs_all[-1])
        pr["y"].append(y)
        pr["c"].append(c)
        if a.rumbled:
            path = wav
            if path is None:
                path = os.path.join(scratch, f"{name}.wav")
                ss.write_wav(path, ss.Soundscape(x, rate, [], [], {}))
            rdets = run_rumbled(a.rumbled, path, os.path.abspath(a.model), a.rumbled_config,
                                channel=a.channel if a.data else None)
            rcounters.append(score_file(rdets, calls, ignore=skip))
            if wav is None:
                os.remove(path)
        print(f"{name}: {len(calls)} calls, {len(dets)} detections", file=sys.stderr)

    res = {"model": {"name": m["name"], "version": m["version"], "sha256": m["sha256"]},
           "test": ("user data " + a.data) if a.data else
           f"{len(tests)} synthetic soundscapes x {a.minutes:g} min (seeds {TEST_SEED0}+, "
           f"{a.per_rate} per recorder rate {','.join(map(str, a.rates))}; density 4/min, "
           f"SNR -10..30 dB, every second one with all confounder kinds present)",
           "detector": {"kind": "python hysteresis (evaluate.py)", "on": a.on, "off": a.off,
                        "min_dur_s": a.min_dur, "merge_gap_s": a.merge_gap, "iou": 0.3}}
    if a.rumbled:
        res["rumbled_config"] = (Path(a.rumbled_config).read_text() if a.rumbled_config else
                                 f"none: the model's recommended [endpoint] {json.dumps(m['endpoint'])}"
                                 if m.get("endpoint") else "none: rumbled's built-in [endpoint] defaults")
    fw, P, Y = framewise(probs_all, y_all)
    keep = np.concatenate(keep_all)
    fw["call_ap_max_snr_ge_0dB"] = round(average_precision(P[keep, 1:].max(1), 1 - Y[keep, 0]), 4)
    fw["call_ap_by_snr"] = call_ap_by_snr(P, Y, {name: np.concatenate([b[name] for b in bands_all])
                                                 for name in bands_all[0]})
    fw["class_auc_snr_ge_0dB"] = {lab: round(roc_auc(P[keep, k], Y[keep, k]), 4)
                                  for k, lab in enumerate(labels[1:], 1)}
    for k, lab in enumerate(labels[1:], 1):
        fw["class_auc"][lab] = round(roc_auc(P[:, k], Y[:, k]), 4)
    fw["class_auc_mean"] = round(float(np.nanmean(list(fw["class_auc"].values()))), 4)
    res["framewise"] = fw
    res["events"] = aggregate(counters)
    if rcounters:
        res["events_rumbled"] = aggregate(rcounters)
    res["by_rate"] = {}
    for rate, d in sorted(per_rate.items()):
        f, Pr, Yr = framewise(d["p"], d["y"])
        ag = aggregate(d["c"])
        res["by_rate"][str(rate)] = {
            "call_ap": f["call_ap_max"],
            "call_ap_snr_ge_0dB": round(average_precision(
                Pr[np.concatenate(d["k"]), 1:].max(1), 1 - Yr[np.concatenate(d["k"]), 0]), 4),
            "f1_regions_snr_ge_0dB": ag["events_vs_regions_snr_ge_0dB"]["f1"],
            "f1_regions": ag["events_vs_regions"]["f1"],
            "label_accuracy": ag["label_accuracy"],
            "rumble_recall": ag["per_class"].get("rumble", {}).get("recall"),
            "rumble_recall_snr_ge_0dB": round(float(np.mean(
                [mm for c in d["c"] for (cls, mm), (snr, _) in zip(c["rate_calls"], c["snr"])
                 if cls == "rumble" and snr >= 0])), 4)}
    descr = {"hard": "every confounder kind present at twice its normal rate, no calls "
                     f"(seeds {CONF_SEED0}+, recorder rates cycled)",
             "typical": "scenes drawn as in training (each confounder kind present with "
                        "its scene probability), no calls "
                        f"(seeds {CONF_SEED0 + 1000}+, recorder rates cycled)",
             "windy_day": f"{'/'.join(ss.WINDY_DAY)} at twice their normal rate, no calls "
                          f"(seeds {CONF_SEED0 + 2000}+, recorder rates cycled)"}
    for kind, sets in (confs.items() if confs else []):
        nfa, hours, rfa = 0, 0.0, 0
        fa_kinds = []
        for name, rate, x, _, _ in sets:
            probs, _ = predict(m, sess, x, rate)
            sweep_conf.setdefault(kind, []).append((probs, len(x) / rate / 3600))
            dets = detect(probs, labels, a.on, a.off, a.min_dur, a.merge_gap)
            if a.rumbled:
                path = os.path.join(scratch, f"{name}.wav")
                ss.write_wav(path, ss.Soundscape(x, rate, [], [], {}))
                rfa += len(run_rumbled(a.rumbled, path, os.path.abspath(a.model), a.rumbled_config))
                os.remove(path)
            nfa += len(dets)
            hours += len(x) / rate / 3600
            fa_kinds += [(name, round(d[0], 2), round(d[1] - d[0], 2), d[2]) for d in dets]
            print(f"{name}: {len(dets)} false alarms", file=sys.stderr)
        key = "false_alarms" if kind == "hard" else f"false_alarms_{kind}"
        res[key] = {"hours": round(hours, 3), "count": nfa, "per_hour": round(nfa / hours, 3),
                    "confounders": descr[kind], "detections": fa_kinds[:50]}
        if a.rumbled:
            res[key]["rumbled_count"] = rfa
            res[key]["rumbled_per_hour"] = round(rfa / hours, 3)
    # operating points of the Python detector: onset threshold sweep (offset = onset - 0.15)
    res["onset_sweep"] = []
    for on in (0.5, 0.6, 0.7, 0.8, 0.9):
        off = on - 0.15
        cs = [score_file(detect(p, labels, on, off, a.min_dur, a.merge_gap), c, ignore=skip)
              for p, c, skip in sweep_files]
        ag = aggregate(cs)
        row = {"onset": on, "offset": round(off, 2),
               "f1_snr_ge_0dB": ag["events_vs_regions_snr_ge_0dB"]["f1"],
               "precision_snr_ge_0dB": ag["events_vs_regions_snr_ge_0dB"]["precision"],
               "recall_snr_ge_0dB": ag["events_vs_regions_snr_ge_0dB"]["recall"],
               "label_accuracy": ag["label_accuracy"]}
        for kind, lst in sweep_conf.items():
            n = sum(len(detect(p, labels, on, off, a.min_dur, a.merge_gap)) for p, _ in lst)
            row[f"false_alarms_per_hour_{kind}"] = round(n / sum(h for _, h in lst), 2)
        res["onset_sweep"].append(row)
    res["speed"] = {"onnxruntime_1_thread_realtime_factor": round(infer_s / max(audio_s, 1), 5)}
    res["eval_s"] = round(time.time() - t0)
    txt = json.dumps(clean(res), indent=1)
    print(txt)
    if a.out:
        os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
        with open(a.out, "w") as f:
            f.write(txt + "\n")


if __name__ == "__main__":
    main()
