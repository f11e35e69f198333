#!/usr/bin/env python3
"""Train the rumbled edge model (seq2seq time-patch transformer) on Kaldi fbank features.

Default model (synthetic soundscapes, recorder rates mixed):
  python models/train.py --synthetic 48 --minutes 10 --steps 6000 \
      --out models/checkpoints/rumbled-edge-ev5.pt
Your own recordings (WAV + Raven selection tables with a class column):
  python models/train.py --data DIR --init models/checkpoints/rumbled-edge-ev5.pt \
      --steps 3000 --out my-model.pt
then `python models/export.py --ckpt my-model.pt --name my-model` (see models/README.md).

Targets, per 160 ms output frame g: class c is 1 when calls of class c cover at
least half of [0.16 g, 0.16 g + 0.16); the background label (first label) is 1
when no call class is. Loss: binary cross-entropy on all labels (multi-label
sigmoid). Features: torchaudio Kaldi fbank after resampling to 16 kHz with
scipy resample_poly, normalised (fbank - mean) / (2 std) with mean/std measured
on the training features and stored in the checkpoint.
"""
from __future__ import annotations

import argparse
import collections
import copy
import functools
import glob
import hashlib
import json
import math
import os
import sys
import time
from multiprocessing import Pool

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import soundscape as ss  # noqa: E402
from common import OUT_S, PATCH, WINDOW, audio_to_fbank, frame_labels, skipped_frames  # noqa: E402
from rumbled_model import LABELS, build  # noqa: E402

RATES = (2000, 4000, 8000, 16000, 22050, 44100, 48000)
TRAIN_SEED0 = 1000  # training soundscapes use seeds TRAIN_SEED0 + i
VAL_SEED0 = 500000  # validation during training
HUM_KINDS = ("engine", "vehicle", "wind")
CLIPPED_KINDS = ("dove", "birds", "wind", "clipping")
# Extra scenes aimed at the confounders behind the model's false alarms
# (models/README.md, Evaluation): name -> (first seed, description, generate()
# arguments). Each kind has 10000 seeds, between the training and validation seeds.
NEGATIVE_SCENES = {
    # steady or slowly changing harmonic hum: false "rumbles"
    "hum": (400000, f"call-free {'/'.join(HUM_KINDS)}",
            dict(no_calls=True, confounders=HUM_KINDS, confounder_always=True,
                 confounder_scale=3.0)),
    # long strong gusts of wind on their own: false "rumbles" and "roars"
    "wind": (410000, "call-free strong wind",
             dict(no_calls=True, confounders=("wind",), confounder_always=True,
                  confounder_scale=3.0)),
    # an overdriven recorder among doves and birds: its harmonics turn coos into false
    # "cries" and "trumpets". Calls at 3/min in the odd seeds, so that clipping alone
    # does not come to mean "no call".
    "clipped": (420000, f"clipped {'/'.join(CLIPPED_KINDS[:-1])} (calls in odd seeds)",
                dict(confounders=CLIPPED_KINDS, confounder_always=True, confounder_scale=2.0,
                     clipping_always=True)),
    # real recordings of what synthesis does not make (voices above all: every utterance
    # of a human voice was a false "roar"; models/README.md, "Real recordings") mixed
    # into the usual scenes; needs --recordings DIR. Calls at 3/min in the odd seeds.
    "recording": (430000, "real recordings (--recordings) in synthetic scenes, calls in odd "
                  "seeds", dict()),
    # wind in leaves under an insect chorus, as on a real day in wooded or grass country:
    # every gust was a false "roar" (models/README.md, "Real ambiences"). Calls at 3/min
    # in the odd seeds.
    "day": (440000, f"windy days, {'/'.join(ss.WINDY_DAY)} (calls in odd seeds)",
            dict(confounders=ss.WINDY_DAY, confounder_always=True, confounder_scale=2.0)),
    # every default confounder kind at twice its rate, as in evaluate.py's hard call-free
    # set (from other seeds), the set whose false alarms stay over the 1/h. Calls
    # at 3/min in the odd seeds.
    "hard": (450000, "every confounder kind at twice its rate (calls in odd seeds)",
             dict(confounder_always=True, confounder_scale=2.0)),
    # goats, sheep and cattle calling among wind, birds and insects: bleats were false
    # "trumpets" in real recordings and in an independently written generator
    # (models/README.md, "Four generators"). Calls at 3/min in the odd seeds.
    "livestock": (460000, "livestock with wind, birds and insects (calls in odd seeds)",
                  dict(confounders=("livestock", "wind", "birds", "insects"),
                       confounder_always=True, confounder_scale=2.0)),
}
NEGATIVE_SEEDS = 10000
NEGATIVE_SEED0 = min(first for first, _, _ in NEGATIVE_SCENES.values())


def negative_seeds(scene: str, n: int) -> list:
    """First and last seed of n --<scene>-scenes."""
    first = NEGATIVE_SCENES[scene][0]
    return [first, first + n - 1]


# evaluate.py uses seeds >= 900000: never used here
LOG_EPS = float(np.log(np.finfo(np.float32).eps))


# ----------------------------------------------------------------------------- data

def recording_paths(folder: str) -> list:
    """The --recordings WAVs: every .wav under folder, sorted."""
    return sorted(glob.glob(os.path.join(folder, "**", "*.wav"), recursive=True))


@functools.lru_cache(maxsize=2)  # each worker reads the folder once, not once per scene
def read_recordings(folder: str) -> list:
    """Every WAV under folder as (mono float samples, rate), for --recording-scenes."""
    import soundfile as sf
    paths = recording_paths(folder)
    if not paths:
        raise SystemExit(f"--recordings {folder}: no .wav files there")
    out = []
    for p in paths:
        x, sr = sf.read(p, dtype="float32", always_2d=True)
        out.append((x.mean(1), sr))
    return out


def recordings_tag(folder: str) -> str:
    """A short digest of the recordings' names and sizes: the cache key of the scenes
    made with them, so that another set of recordings makes new scenes."""
    h = hashlib.sha256()
    for p in recording_paths(folder):
        h.update(f"{os.path.relpath(p, folder)}:{os.path.getsize(p)};".encode())
    return h.hexdigest()[:10]


def synth_item(args):
    """One synthetic soundscape -> (fbank float16 [N,128], targets uint8 [N//16, C], info).

    args: (seed, minutes, cache, scene, recordings); scene names one of NEGATIVE_SCENES
    (--hum-scenes, --wind-scenes, --clipped-scenes, --recording-scenes, --day-scenes,
    --hard-scenes, --livestock-scenes) instead of the seed's usual mix (None); recordings is
    the --recordings folder or None."""
    seed, minutes, cache, scene, recordings = args
    stem = f"{scene}-{recordings_tag(recordings)}" if scene == "recording" else scene or "syn"
    path = os.path.join(cache, f"{stem}-{seed}-{minutes:g}.npz") if cache else None
    if path and os.path.exists(path):
        d = np.load(path)
        return d["fb"], d["y"], json.loads(str(d["info"]))
    rate = RATES[seed % len(RATES)]
    kind = scene or seed % 6
    kw = dict(seed=seed, duration_s=minutes * 60.0, rate=rate)
    if scene:
        kw.update(NEGATIVE_SCENES[scene][2])
        if scene == "recording":
            kw.update(recordings=read_recordings(recordings))
        if "no_calls" not in kw:  # a kind that may hold calls: in its odd seeds only
            kw.update(no_calls=seed % 2 == 0, density=3.0)
    elif kind == 5:  # confounder-heavy scene without calls
        kw.update(no_calls=True, confounder_always=True, confounder_scale=2.0)
    elif kind == 4:  # calls among many confounders
        kw.update(confounder_always=True, density=4.0)
    else:
        kw.update(density=5.0)
    sc = ss.generate(**kw)
    fb = audio_to_fbank(sc.audio, sc.rate)
    y = frame_labels([(c.begin, c.end, c.cls) for c in sc.calls], len(fb) // PATCH, LABELS)
    info = dict(seed=seed, rate=rate, n_calls=len(sc.calls), kind=kind)
    fb16 = fb.astype(np.float16)
    y8 = y.astype(np.uint8)
    if path:
        os.makedirs(cache, exist_ok=True)
        tmp = path + f".{os.getpid()}.tmp.npz"
        np.savez(tmp, fb=fb16, y=y8, info=json.dumps(info))
        os.replace(tmp, path)
    return fb16, y8, info


def find_table(wav: str):
    stem = os.path.splitext(wav)[0]
    for pat in (stem + ".selections.txt", stem + ".Table.1.selections.txt",
                stem + "*.selections.txt", stem + ".txt", stem + "*.txt"):
        hits = sorted(glob.glob(glob.escape(stem) + pat[len(stem):]))
        if hits:
            return hits[0]
    return None


def sort_selections(sel, labels, mapping, unknown, table):
    """Raven selections [(begin, end, class)] -> (calls under model labels
    [(begin, end, label)], calls to leave out [(begin, end)]), by --map and
    --unknown: `skip` leaves a class not among the labels out, `call` takes it
    for the first call label, `error` stops with what to do."""
    known, skip = [], []
    for b, e, c in sel:
        c = mapping.get(c, c)
        if c in labels[1:]:
            known.append((b, e, c))
        elif unknown == "skip":
            skip.append((b, e))
        elif unknown == "call" and c is not None:
            known.append((b, e, labels[1]))
        else:
            raise SystemExit(f"{table}: class {c!r} is not one of {labels[1:]}; use "
                             f"--map {c}=LABEL, --unknown skip or --unknown call")
    return known, skip


def annotated_files(data_dir, labels, class_column, mapping, unknown):
    """Each WAV under data_dir that has a Raven table next to it, as (wav, table,
    selections [(begin, end, class as written)], calls, left out) with the classes
    sorted by sort_selections. WAVs without a table are skipped with a warning."""
    wavs = sorted(glob.glob(os.path.join(data_dir, "**", "*.wav"), recursive=True) +
                  glob.glob(os.path.join(data_dir, "**", "*.WAV"), recursive=True))
    if not wavs:
        raise SystemExit(f"no .wav files under {data_dir}")
    out, missing = [], []
    for w in wavs:
        table = find_table(w)
        if table is None:
            missing.append(w)
            continue
        sel = ss.read_raven(table, class_column)
        out.append((w, table, sel, *sort_selections(sel, labels, mapping, unknown, table)))
    if missing:
        print(f"warning: {len(missing)} WAV file(s) without a selection table were skipped, "
              f"e.g. {missing[0]}", file=sys.stderr)
    if not out:
        raise SystemExit(f"{data_dir}: no WAV has a Raven selection table next to it "
                         "(NAME.selections.txt, NAME.Table.1.selections.txt or NAME*.txt)")
    return out


def read_channel(wav: str, channel: int):
    """(samples, rate) of one channel of a --data WAV; a missing channel stops with what to do."""
    try:
        return ss.read_wav(wav, channel)
    except ValueError as e:
        raise SystemExit(f"{e}; pick one with --channel N")


def user_items(data_dir, labels, class_column, mapping, unknown, channel):
    """WAV + Raven tables under data_dir -> list of (fb, y, info); y = 255 marks frames
    excluded from the loss (calls of an unknown class with --unknown skip)."""
    items, seen = [], collections.Counter()
    for w, table, sel, known, skip in annotated_files(data_dir, labels, class_column, mapping,
                                                      unknown):
        x, sr = read_channel(w, channel)
        fb = audio_to_fbank(x, sr)
        n_out = len(fb) // PATCH
        seen.update(mapping.get(c, c) for _, _, c in sel)
        y = frame_labels(known, n_out, labels).astype(np.uint8)
        y[skipped_frames(skip, n_out, labels)] = 255
        items.append((fb.astype(np.float16), y, dict(file=w, table=table, rate=sr,
                                                     n_calls=len(sel))))
        print(f"  {os.path.relpath(w, data_dir)}: {len(x) / sr:.1f} s at {sr} Hz, "
              f"{len(sel)} selections ({os.path.basename(table)})", file=sys.stderr)
    print(f"classes seen: {dict(seen)}", file=sys.stderr)
    return items


# ----------------------------------------------------------------------------- batches

class Sampler:
    def __init__(self, items, mean, std, rng, window=WINDOW, mix_p=0.25, fmask_p=0.3):
        self.items = items
        self.window = window
        self.mean, self.std = mean, std
        self.rng = rng
        self.mix_p, self.fmask_p = mix_p, fmask_p
        w = np.array([max(1, len(fb) // PATCH) for fb, _, _ in items], float)
        self.p = w / w.sum()
        self.floor = (LOG_EPS - mean) / (2 * std)
        self.hard = None

    def add_hard_negatives(self, frac, found):
        """Draw `frac` of the crops around the given false alarms (hard-negative mining).

        `found` is a list of (item index, output frame, call score) where the
        model called a call on background. Synthetic scenes hold hours of easy
        background around a few engine hums and thunder rolls; the false alarms
        per hour come from those, so crops are drawn where they are, in
        proportion to how sure the model was.
        """
        if not found:
            return
        idx = np.array([(i, g) for i, g, _ in found], np.int64)
        w = np.array([s for _, _, s in found], float)
        self.hard = (frac, idx, w / w.sum())

    def pick(self):
        """An item and the first output frame of a crop of it."""
        w16 = self.window // PATCH
        if self.hard is not None and self.rng.random() < self.hard[0]:
            _, idx, p = self.hard
            i, g = idx[self.rng.choice(len(idx), p=p)]
            n16 = len(self.items[i][0]) // PATCH
            j = int(np.clip(g - self.rng.integers(0, w16), 0, max(0, n16 - w16)))
            return self.items[i], j
        item = self.items[self.rng.choice(len(self.items), p=self.p)]
        n16 = len(item[0]) // PATCH
        return item, int(self.rng.integers(0, n16 - w16 + 1)) if n16 >= w16 else 0

    def crop(self):
        (fb, y, _), j = self.pick()
        n16 = len(fb) // PATCH
        w16 = self.window // PATCH
        if n16 >= w16:
            x = fb[j * PATCH: j * PATCH + self.window].astype(np.float32)
            t = y[j: j + w16]
        else:
            x = np.full((self.window, fb.shape[1]), LOG_EPS, np.float32)
            x[:n16 * PATCH] = fb[:n16 * PATCH]
            t = np.full((w16, y.shape[1]), 255, np.uint8)
            t[:n16] = y[:n16]
        return x, t.astype(np.float32)

    def batch(self, bs):
        xs, ts = [], []
        for _ in range(bs):
            x, t = self.crop()
            if self.rng.random() < self.mix_p:  # mix two scenes: log-add of power spectra
                x2, t2 = self.crop()
                g = self.rng.uniform(-3.0, 1.0)
                x = np.logaddexp(x, x2 + g)
                ign = (t == 255).any(1) | (t2 == 255).any(1)
                t = np.maximum(t, t2)
                t[:, 0] = 1.0 - t[:, 1:].max(1)
                t[ign] = 255
            x = (x - self.mean) / (2 * self.std)
            if self.rng.random() < self.fmask_p:
                w = self.rng.integers(2, 16)
                f0 = self.rng.integers(0, x.shape[1] - w)
                x[:, f0:f0 + w] = 0.0
            xs.append(x)
            ts.append(t)
        return torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ts))


def masked_bce(logits, target):
    valid = target != 255
    t = torch.where(valid, target, torch.zeros_like(target))
    loss = F.binary_cross_entropy_with_logits(logits, t, reduction="none")
    return (loss * valid).sum() / valid.sum().clamp(min=1)


def average_precision(score, truth):
    order = np.argsort(-score, kind="stable")
    t = truth[order].astype(np.float64)
    if t.sum() == 0:
        return float("nan")
    tp = np.cumsum(t)
    prec = tp / np.arange(1, len(t) + 1)
    return float((prec * t).sum() / t.sum())


def windowed(model, items, mean, std, window=WINDOW):
    """(item index, logits, targets) over each item's non-overlapping windows."""
    model.eval()
    w16 = window // PATCH
    with torch.no_grad():
        for i_item, (fb, y, _) in enumerate(items):
            n16 = len(fb) // PATCH
            starts = list(range(0, n16 - w16 + 1, w16))
            if not starts:  # shorter than one window: nothing to score
                continue
            lgs = []
            for i in range(0, len(starts), 32):
                xs = [(fb[j * PATCH: j * PATCH + window].astype(np.float32) - mean) / (2 * std)
                      for j in starts[i:i + 32]]
                lgs.append(model(torch.from_numpy(np.stack(xs))).reshape(-1, y.shape[1]))
            lg = torch.cat(lgs)
            yield i_item, lg, torch.from_numpy(y[:len(lg)].astype(np.float32))
    model.train()


def call_score(p):
    """How sure the model is of some call: rumbled's class-agnostic score, 1 - P(background)."""
    return 1.0 - p[:, 0]


class Ema:
    """Exponential moving average of a model's parameters (buffers copied as they are)."""

    def __init__(self, model, decay):
        self.decay = decay
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model):
        avg = list(self.model.parameters())
        torch._foreach_mul_(avg, self.decay)
        torch._foreach_add_(avg, [p.detach() for p in model.parameters()], alpha=1 - self.decay)
        for b, src in zip(self.model.buffers(), model.buffers()):
            b.copy_(src)


def validate(model, items, mean, std, window=WINDOW):
    """Loss, framewise call AP and the share of background frames called a call (p > 0.5)."""
    losses, scores, truths = [], [], []
    for _, lg, t in windowed(model, items, mean, std, window):
        losses.append(float(masked_bce(lg, t)))
        p, t = torch.sigmoid(lg).numpy(), t.numpy()
        ok = (t != 255).all(1)
        scores.append(call_score(p[ok]))
        truths.append(1.0 - t[ok, 0])
    if not scores:  # every validation recording is shorter than one window
        return float("nan"), float("nan"), float("nan")
    s, t = np.concatenate(scores), np.concatenate(truths)
    false_call = float((s[t == 0] > 0.5).mean()) if (t == 0).any() else float("nan")
    return float(np.mean(losses)), average_precision(s, t), false_call


def false_calls(model, items, mean, std, threshold, margin=0, window=WINDOW):
    """(item index, frame, score) for every background frame the model scores above threshold
    that is more than `margin` output frames away from any call frame."""
    found = []
    for i, lg, t in windowed(model, items, mean, std, window):
        s = call_score(torch.sigmoid(lg).numpy())
        t = t.numpy()
        bg = (t[:, 0] == 1) & (t != 255).all(1) & ~near_calls(t, margin)
        for g in np.flatnonzero(bg & (s > threshold)):
            found.append((i, int(g), float(s[g])))
    return found


def near_calls(t, margin):
    """Frames within `margin` frames of a call frame (the call frames included)."""
    call = (t[:, 0] == 0).astype(np.float32)
    return np.convolve(call, np.ones(2 * max(0, margin) + 1, np.float32), mode="same") > 0


# ----------------------------------------------------------------------------- main

def grown(model, extra_layers: int, ff: int):
    """A bigger model that computes exactly what `model` computes, to fine-tune from.

    More capacity without starting over: a new encoder layer whose two output
    projections (attention and MLP) are zero adds nothing to the residual
    stream, and new MLP units whose outgoing weights are zero add nothing to
    their layer. Training then moves them away from zero, as in zero-init
    residual branches (ReZero, Net2Net's function-preserving growth).
    """
    cfg = dict(model.config)
    if ff and ff < cfg["ff"]:
        raise SystemExit(f"--grow-ff {ff} is narrower than the model's MLP ({cfg['ff']})")
    cfg["layers"] += extra_layers
    cfg["ff"] = max(cfg["ff"], ff)
    big = build(cfg)
    old = model.state_dict()
    sd = big.state_dict()
    for k, v in old.items():
        if sd[k].shape == v.shape:
            sd[k] = v.clone()
        elif k.endswith("ff1.weight") or k.endswith("ff1.bias"):
            sd[k][: v.shape[0]] = v
        elif k.endswith("ff2.weight"):
            sd[k].zero_()
            sd[k][:, : v.shape[1]] = v
        else:
            raise SystemExit(f"cannot grow parameter {k} from {tuple(v.shape)} to {tuple(sd[k].shape)}")
    for i in range(model.config["layers"], cfg["layers"]):
        for k in (f"blocks.{i}.proj.weight", f"blocks.{i}.proj.bias",
                  f"blocks.{i}.ff2.weight", f"blocks.{i}.ff2.bias"):
            sd[k].zero_()
    big.load_state_dict(sd)
    return big


def check_same_function(small, big, tol: float = 1e-5):
    small.eval()
    big.eval()
    x = torch.randn(2, WINDOW, small.config["n_mels"], generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        diff = float((small(x) - big(x)).abs().max())
    big.train()
    if diff > tol:
        raise SystemExit(f"growing the model changed its output by {diff:.2e} (> {tol:g})")
    print(f"grown model matches the checkpoint: max |logit difference| {diff:.1e}", file=sys.stderr)


def parse_map(s):
    out = {}
    for part in filter(None, (s or "").split(",")):
        k, v = part.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--synthetic", type=int, default=0, help="number of synthetic soundscapes")
    ap.add_argument("--first-seed", type=int, default=TRAIN_SEED0,
                    help="seed of the first synthetic soundscape (they are loaded into memory, "
                         "15 MB each: a later stage can move the range onto unseen seeds)")
    for scene, (first, desc, _) in NEGATIVE_SCENES.items():
        ap.add_argument(f"--{scene}-scenes", type=int, default=0, metavar="N",
                        help=f"add N {desc} soundscapes (seeds {first}+), aimed at a "
                        "confounder behind false alarms")
    ap.add_argument("--recordings", metavar="DIR",
                    help="call-free real recordings (WAV) for --recording-scenes, e.g. "
                         "`real_audio.py fetch`'s speech-en")
    ap.add_argument("--minutes", type=float, default=10.0, help="length of each soundscape")
    ap.add_argument("--val", type=int, default=4, help="synthetic validation soundscapes")
    ap.add_argument("--data", help="directory of WAV + Raven selection tables")
    ap.add_argument("--class-column", help="Raven column holding the class (default: Class, "
                    "Label, Call Type, Annotation, ...)")
    ap.add_argument("--map", help="rename classes: 'Rumble=rumble,Tr=trumpet'")
    ap.add_argument("--unknown", choices=["error", "skip", "call"], default="error",
                    help="selections of classes not in --labels: stop (error), leave their "
                         "frames out of the loss (skip), or train them as the first call label")
    ap.add_argument("--channel", type=int, default=0,
                    help="--data: the channel to train on (0-based)")
    ap.add_argument("--labels", default=",".join(LABELS),
                    help="output labels, background first")
    ap.add_argument("--val-frac", type=float, default=0.15, help="--data files held out")
    ap.add_argument("--init", help="start from this checkpoint (fine-tune)")
    ap.add_argument("--grow-layers", type=int, default=0,
                    help="with --init: append this many encoder layers that start as the identity")
    ap.add_argument("--grow-ff", type=int, default=0,
                    help="with --init: widen every MLP to this many units, new units start silent")
    ap.add_argument("--renorm", action="store_true",
                    help="with --init: re-measure mean/std on this data (default: keep)")
    ap.add_argument("--hard-negatives", type=float, default=0.0, metavar="FRAC",
                    help="with --init: draw this share of the crops around the background "
                         "frames the checkpoint calls a call (hard-negative mining)")
    ap.add_argument("--hard-threshold", type=float, default=0.3,
                    help="call score above which a background frame counts as hard")
    ap.add_argument("--hard-margin", type=float, default=0.0, metavar="SECONDS",
                    help="mine no background frame closer than this to a call (its edges "
                         "are label noise, not confounders)")
    ap.add_argument("--ema", type=float, default=0.0, metavar="DECAY",
                    help="validate and save an exponential moving average of the weights "
                         "(e.g. 0.999); 0 = the weights as trained")
    ap.add_argument("--steps", type=int, default=6000)
    ap.add_argument("--max-minutes", type=float, default=0, help="stop training after this")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--window", type=int, default=None, metavar="FRAMES",
                    help="fbank frames per training crop and per inference window, a multiple "
                         f"of {PATCH} plus up to {PATCH - 1} (default: --init's, else {WINDOW} = "
                         "10 s); longer windows let the model see whether a sound outlasts a call")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--d", type=int, default=128)
    ap.add_argument("--layers", type=int, default=3)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--ff", type=int, default=256)
    ap.add_argument("--dropout", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2, help="processes generating data")
    ap.add_argument("--cache", default=os.path.join(HERE, ".cache"),
                    help="feature cache for synthetic soundscapes ('' = none)")
    ap.add_argument("--eval-every", type=int, default=500)
    ap.add_argument("--keep-each-eval", action="store_true",
                    help="also save the weights of every evaluation as <out>-step<N>.pt, so that "
                         "a later check (models/tune_endpoint.py's false alarms and F1) can "
                         "choose a step the validation loss would not")
    ap.add_argument("--out", default=os.path.join(HERE, "checkpoints", "rumbled-edge-ev5.pt"))
    a = ap.parse_args()
    if a.synthetic and (a.first_seed < 0 or a.first_seed + a.synthetic > NEGATIVE_SEED0):
        ap.error(f"--first-seed {a.first_seed} --synthetic {a.synthetic}: training seeds must "
                 f"lie in 0..{NEGATIVE_SEED0 - 1}; seeds from {NEGATIVE_SEED0} up are --*-scenes, "
                 "validation, development (tune_endpoint.py) and test (evaluate.py) soundscapes")
    extra = {scene: getattr(a, f"{scene}_scenes") for scene in NEGATIVE_SCENES}
    for scene, n in extra.items():
        if not 0 <= n <= NEGATIVE_SEEDS:
            ap.error(f"--{scene}-scenes {n}: at most {NEGATIVE_SEEDS}")
    if a.recording_scenes and not a.recordings:
        ap.error("--recording-scenes mixes real recordings into its scenes: give --recordings DIR")
    if a.recording_scenes:
        # read here, not first in a worker: a SystemExit there would hang the pool, and
        # the workers fork with this read already cached
        read_recordings(a.recordings)
    if a.window is not None and a.window < PATCH:
        ap.error(f"--window {a.window}: at least one {PATCH}-frame patch")
    if a.ema and not 0.0 < a.ema < 1.0:
        ap.error(f"--ema {a.ema}: the decay must be between 0 and 1, e.g. 0.999")
    if (a.grow_layers or a.grow_ff) and not a.init:
        ap.error("--grow-layers and --grow-ff grow a trained model: give it with --init")
    if a.hard_negatives and not a.init:
        ap.error("--hard-negatives mines a trained model's false alarms: give it with --init")
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)
    labels = [s for s in a.labels.split(",") if s]
    t_start = time.time()

    train, val = [], []
    synthetic = a.synthetic or any(extra.values())
    if synthetic:
        if labels != LABELS:
            raise SystemExit("--synthetic produces the EV5 labels; drop --labels")
        jobs = [(a.first_seed + i, a.minutes, a.cache, None, None) for i in range(a.synthetic)]
        for scene, n in extra.items():
            lo, hi = negative_seeds(scene, n)
            jobs += [(seed, a.minutes, a.cache, scene, a.recordings) for seed in range(lo, hi + 1)]
        vjobs = [(VAL_SEED0 + i, a.minutes, a.cache, None, None) for i in range(a.val)]
        print(f"synthesising {len(jobs)} + {len(vjobs)} soundscapes of {a.minutes:g} min ...",
              file=sys.stderr)
        with Pool(a.workers) as pool:
            train += pool.map(synth_item, jobs, chunksize=1)
            val += pool.map(synth_item, vjobs, chunksize=1)
        print(f"  done in {time.time() - t_start:.0f} s", file=sys.stderr)
    if a.data:
        items = user_items(a.data, labels, a.class_column, parse_map(a.map), a.unknown,
                           a.channel)
        order = rng.permutation(len(items))
        nv = int(round(a.val_frac * len(items))) if len(items) > 1 else 0
        val += [items[i] for i in order[:nv]]
        train += [items[i] for i in order[nv:]]
        n_user_train = len(items) - nv
    if not train:
        raise SystemExit("no training data: give --synthetic N and/or --data DIR")
    t_data = time.time() - t_start

    init = torch.load(a.init, map_location="cpu", weights_only=False) if a.init else None
    # Every recorder rate the weights have learnt from, the parent's included: export.py
    # records the lowest as the manifest's min_input_rate, below which rumbled warns.
    recorder_rates = sorted({int(info["rate"]) for _, _, info in train} |
                            set((init or {}).get("provenance", {}).get("recorder_rates", [])))
    if init is not None and not a.renorm:
        mean, std = float(init["mean"]), float(init["std"])
    else:
        allf = np.concatenate([fb[::7].astype(np.float32).ravel() for fb, _, _ in train])
        mean, std = float(allf.mean()), float(allf.std())
    print(f"features: mean {mean:.4f} std {std:.4f}; {sum(len(f) for f, _, _ in train) / 6000:.0f}"
          f" min training audio", file=sys.stderr)

    if init is not None:
        cfg = dict(init["config"])
        model = build(cfg)
        sd = init["state_dict"]
        if cfg["n_classes"] != len(labels):
            cfg["n_classes"] = len(labels)
            model = build(cfg)
            sd = {k: v for k, v in sd.items() if not k.startswith("head.")}
        model.load_state_dict(sd, strict=False)
        if a.grow_layers or a.grow_ff:
            small, model = model, grown(model, a.grow_layers, a.grow_ff)
            check_same_function(small, model)
    else:
        model = build(dict(d=a.d, layers=a.layers, heads=a.heads, ff=a.ff,
                           n_classes=len(labels), dropout=a.dropout))
    nparam = sum(p.numel() for p in model.parameters())
    print(f"model {model.config}: {nparam / 1e6:.2f} M parameters", file=sys.stderr)

    window = a.window or int((init or {}).get("window_frames", WINDOW))
    sampler = Sampler(train, mean, std, rng, window)
    if val and init is not None:
        vl, vap, vfc = validate(model, val, mean, std, window)
        print(f"step 0 val {vl:.4f} AP {vap:.4f} false-call {vfc:.5f}", file=sys.stderr)
    if a.hard_negatives:
        t_mine = time.time()
        found = false_calls(model, train, mean, std, a.hard_threshold,
                            int(round(a.hard_margin / OUT_S)), window)
        sampler.add_hard_negatives(a.hard_negatives, found)
        print(f"hard negatives: {len(found)} background frames score > {a.hard_threshold:g} "
              f"(none within {a.hard_margin:g} s of a call) in "
              f"{len({i for i, _, _ in found})} of {len(train)} items ({time.time() - t_mine:.0f} s);"
              f" {a.hard_negatives:.0%} of the crops are drawn around them", file=sys.stderr)

    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=0.01)
    warm = max(1, min(300, a.steps // 10))
    t_train = time.time()  # after mining, so --max-minutes schedules training alone

    def lr_factor(s):
        # warm-up, then cosine decay over the steps or over --max-minutes, whichever ends first
        prog = s / a.steps
        if a.max_minutes:
            prog = max(prog, (time.time() - t_train) / (a.max_minutes * 60))
        return min(1.0, (s + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(1.0, prog)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_factor)
    # The moving average smooths out the last few hundred noisy steps, which a
    # small model trained on random crops otherwise keeps as its final word.
    ema = Ema(model, a.ema) if a.ema else None
    model.train()
    best = (float("inf"), None)
    history = []
    t0 = time.time()
    run_loss = 0.0
    step = 0
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)

    def kept():
        return ema.model if ema else model

    def save(path, metrics):
        torch.save({"config": model.config, "state_dict": kept().state_dict(), "mean": mean,
                    "std": std, "labels": labels, "version": "1.0.0", "window_frames": window,
                    "provenance": provenance(metrics)}, path)

    def provenance(metrics):
        src = []
        if a.synthetic:
            src.append(f"{a.synthetic} synthetic soundscapes x {a.minutes:g} min "
                       f"(models/soundscape.py seeds {a.first_seed}..{a.first_seed + a.synthetic - 1},"
                       f" recorder rates {','.join(map(str, RATES))} by seed)")
        for scene, n in extra.items():
            if n:
                lo, hi = negative_seeds(scene, n)
                src.append(f"{n} {NEGATIVE_SCENES[scene][1]} soundscapes x {a.minutes:g} min "
                           f"(seeds {lo}..{hi})")
                if scene == "recording":
                    src[-1] += (f", recordings {os.path.abspath(a.recordings)} "
                                f"({recordings_tag(a.recordings)})")
        if a.data:
            src.append(f"user data {os.path.abspath(a.data)} ({n_user_train} train files)")
        if a.init:
            src.append(f"fine-tuned from {os.path.basename(a.init)}")
            if a.grow_layers or a.grow_ff:
                src.append(f"grown to {model.config['layers']} layers, MLP {model.config['ff']}")
        return {"trained_on": "; ".join(src), "recorder_rates": recorder_rates,
                "seeds": {"torch": a.seed, "train_soundscapes":
                [a.first_seed, a.first_seed + a.synthetic - 1] if a.synthetic else None,
                **{f"{scene}_soundscapes": negative_seeds(scene, n) if n else None
                   for scene, n in extra.items()},
                "val_soundscapes": [VAL_SEED0, VAL_SEED0 + a.val - 1] if synthetic else None},
                "training": {"steps": step, "batch": a.batch, "lr": a.lr,
                             "data_s": round(t_data), "train_s": round(time.time() - t0),
                             "torch_threads": a.threads, "val": metrics,
                             "hard_negatives": a.hard_negatives or None,
                             "hard_margin_s": a.hard_margin if a.hard_negatives else None,
                             "ema": a.ema or None},
                "metrics": {}, "license": "Apache-2.0 OR MIT",
                "code": "models/train.py (rumbled)"}

    while step < a.steps:
        xb, tb = sampler.batch(a.batch)
        loss = masked_bce(model(xb), tb)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if ema:
            ema.update(model)
        step += 1
        run_loss += float(loss.detach())
        last = step == a.steps or (a.max_minutes and time.time() - t0 > a.max_minutes * 60)
        if step % a.eval_every == 0 or last:
            msg = f"step {step} train {run_loss / (a.eval_every if not last else max(1, step % a.eval_every or a.eval_every)):.4f}"
            run_loss = 0.0
            metrics = {}
            if val:
                vl, vap, vfc = validate(kept(), val, mean, std, window)
                metrics = {"val_loss": round(vl, 5), "val_call_ap": round(vap, 5),
                           "val_false_call": round(vfc, 6)}
                msg += f" val {vl:.4f} AP {vap:.4f} false-call {vfc:.5f}"
                if math.isnan(vl):  # no validation recording fills a window: keep the latest
                    save(a.out, metrics)
                elif vl < best[0]:
                    best = (vl, step)
                    save(a.out, metrics)
            else:
                save(a.out, metrics)
            if a.keep_each_eval:
                save(f"{os.path.splitext(a.out)[0]}-step{step}.pt", metrics)
            history.append(dict(step=step, **metrics))
            print(f"{msg} ({time.time() - t0:.0f} s)", file=sys.stderr, flush=True)
        if last:
            break
    if val and best[1] is not None:
        print(f"best val loss {best[0]:.4f} at step {best[1]} -> {a.out}", file=sys.stderr)
    elif val:
        print(f"warning: every validation recording is shorter than one {window}-frame window, "
              f"so nothing was validated; saved the last step to {a.out}", file=sys.stderr)
    else:
        print(f"saved {a.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
