#!/usr/bin/env python3
"""Choose rumbled's [endpoint] settings for a model on a development set.

  python models/tune_endpoint.py --rumbled target/release/rumbled --out models/eval/endpoint.json
  python models/tune_endpoint.py --rumbled target/release/rumbled --model my-model.json \\
      --data MY_ANNOTATED_DIR --quiet-data MY_CALL_FREE_DIR \\
      [--class-column C --map 'Rumble=rumble' --unknown skip --channel N]  # as for train.py

Every candidate is a real `rumbled replay` run with that [endpoint] section, so
what is chosen is what the daemon will do. Its events are scored as
evaluate.py scores them: regions at SNR >= 0 dB matched by IoU >= 0.3 (P/R/F1),
label accuracy, false alarms per hour on call-free recordings.

The synthetic development set is drawn like evaluate.py's test set but from its
own seeds (800000+ with calls, 850000+ call-free), which are never used for
training (1000..), validation (500000..) or the test (900000+): settings chosen
here can be reported on the test without having been fitted to it.

Search: coordinate ascent from rumbled's defaults, one key at a time over a grid
of values, for --rounds rounds. A candidate's score is its F1 minus
--fa-weight times its false alarms per hour (both call-free kinds averaged), so
a setting that buys F1 with false alarms only wins if it is worth it; and it
must beat the current setting by --min-gain, so that a difference of a
detection or two on the development set does not move a setting. With
--max-false-alarms N, a station's hard limit, a setting over N false alarms
per hour scores below every setting within it (worse the further over).
Prints every candidate, writes them all to --out, and prints the best as a
TOML [endpoint] section. --write-manifest stores it in the model's manifest
(`endpoint`, with the search in `provenance.endpoint_tuning`): rumbled then
uses it wherever a station's config leaves an [endpoint] key unset.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import soundscape as ss  # noqa: E402
from evaluate import (add_data_arguments, aggregate, annotated_calls,  # noqa: E402
                      run_rumbled, score_file, synthetic_sets)

DEV_SEED0 = 800000
DEV_CONF_SEED0 = 850000
# rumbled's built-in [endpoint] defaults (src/detect/endpoint.rs); the
# offset is searched as a margin below the onset so that it never exceeds it.
DEFAULTS = {"onset": 0.5, "offset_margin": 0.15, "min_onset_s": 0.32, "hangover_s": 0.48,
            "min_duration_s": 0.32, "merge_gap_s": 0.64}
GRID = {"onset": [0.4, 0.5, 0.6, 0.7, 0.8],
        "offset_margin": [0.05, 0.1, 0.15, 0.25, 0.35],
        "min_onset_s": [0.16, 0.32, 0.48, 0.64],
        "hangover_s": [0.16, 0.32, 0.48, 0.64, 0.96],
        "min_duration_s": [0.16, 0.32, 0.64, 0.96],
        "merge_gap_s": [0.16, 0.32, 0.64, 0.96, 1.28]}


def endpoint_toml(p):
    return "[endpoint]\n" + "".join(f"{k} = {v:g}\n" for k, v in endpoint_keys(p).items())


def write_sets(a, scratch):
    """Returns ([(wav, calls, left out)], [(wav, hours)]) on disk for rumbled to replay."""
    if a.data:
        from train import read_channel
        with open(a.model) as f:
            labels = json.load(f)["labels"]
        annotated = annotated_calls(a, labels)
        quiet = []
        for w in sorted(glob.glob(os.path.join(a.quiet_data, "**", "*.wav"), recursive=True)
                        if a.quiet_data else []):
            x, sr = read_channel(w, a.channel)
            quiet.append((w, len(x) / sr / 3600))
        return annotated, quiet
    tests, confs = synthetic_sets(DEV_SEED0, DEV_CONF_SEED0, a.per_rate, a.minutes,
                                  int(round(a.confounder_minutes / 10)))

    def write(name, rate, x):
        path = os.path.join(scratch, f"{name}.wav")
        ss.write_wav(path, ss.Soundscape(x, rate, [], [], {}))
        return path

    annotated = [(write(name, rate, x), calls, []) for name, rate, x, calls, _ in tests]
    quiet = [(write(name, rate, x), len(x) / rate / 3600)
             for kind in confs.values() for name, rate, x, _, _ in kind]
    return annotated, quiet


def evaluate_setting(a, p, annotated, quiet, scratch):
    with tempfile.NamedTemporaryFile("w", suffix=".toml", dir=scratch, delete=False) as f:
        f.write(endpoint_toml(p))
    channel = a.channel if a.data else None
    counters = [score_file(run_rumbled(a.rumbled, w, a.model, f.name, channel), calls, ignore=skip)
                for w, calls, skip in annotated]
    fa = sum(len(run_rumbled(a.rumbled, w, a.model, f.name, channel)) for w, _ in quiet)
    os.remove(f.name)
    ag = aggregate(counters)
    hi = ag["events_vs_regions_snr_ge_0dB"]
    hours = sum(h for _, h in quiet)
    fa_h = fa / hours if hours else 0.0
    return {"setting": dict(p), "f1_snr_ge_0dB": hi["f1"], "precision_snr_ge_0dB": hi["precision"],
            "recall_snr_ge_0dB": hi["recall"], "label_accuracy": ag["label_accuracy"],
            "false_alarms_per_hour": round(fa_h, 2), "score": score(a, hi["f1"], fa_h)}


def score(a, f1, fa_h):
    """F1 less the false alarms' worth. As F1 lies in [0, 1], taking 1 + the excess off a
    setting over --max-false-alarms puts it below every setting within the limit."""
    s = f1 - a.fa_weight * fa_h
    if a.max_false_alarms is not None and fa_h > a.max_false_alarms:
        s -= 1.0 + (fa_h - a.max_false_alarms)
    return round(s, 4)


def model_id(manifest):
    with open(manifest) as f:
        m = json.load(f)
    return {k: m[k] for k in ("name", "version", "sha256")}


def key_of(p):
    return tuple(sorted(p.items()))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rumbled", required=True, help="path of the rumbled binary")
    ap.add_argument("--model", default=os.path.join(HERE, "rumbled-edge-ev5.json"))
    ap.add_argument("--data", help="your WAV + Raven tables instead of synthetic soundscapes")
    ap.add_argument("--quiet-data", help="with --data: call-free WAVs for false alarms")
    add_data_arguments(ap)
    ap.add_argument("--per-rate", type=int, default=6, help="synthetic soundscapes per recorder rate")
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--confounder-minutes", type=float, default=180.0, help="of each call-free kind")
    ap.add_argument("--fa-weight", type=float, default=0.005,
                    help="F1 one false alarm per hour is worth (default: 2/h = 0.01 F1)")
    ap.add_argument("--max-false-alarms", type=float, metavar="PER_HOUR",
                    help="a hard limit: settings over it lose to every setting within it")
    ap.add_argument("--min-gain", type=float, default=0.002,
                    help="score a change must add to be taken (default: about one detection in 500)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--keys", default=",".join(GRID),
                    help="settings to search, comma-separated (the others keep rumbled's defaults)")
    ap.add_argument("--write-manifest", action="store_true",
                    help="store the best setting in --model's manifest as its recommended [endpoint]")
    ap.add_argument("--jobs", type=int, default=2, help="replays side by side")
    ap.add_argument("--out", help="write every candidate as JSON here")
    a = ap.parse_args()
    unknown = set(a.keys.split(",")) - set(GRID)
    if unknown:
        ap.error(f"--keys: {', '.join(sorted(unknown))} not among {', '.join(GRID)}")
    a.model = os.path.abspath(a.model)
    with tempfile.TemporaryDirectory(prefix="rumbled-tune-") as scratch:
        annotated, quiet = write_sets(a, scratch)
        print(f"{len(annotated)} annotated recordings, {len(quiet)} call-free", file=sys.stderr)
        tried = {}

        def run_all(settings):
            todo = [p for p in settings if key_of(p) not in tried]
            with ThreadPoolExecutor(a.jobs) as pool:
                for p, r in zip(todo, pool.map(lambda p: evaluate_setting(a, p, annotated, quiet, scratch), todo)):
                    tried[key_of(p)] = r
                    print(json.dumps(r), file=sys.stderr, flush=True)

        best = dict(DEFAULTS)
        run_all([best])
        for _ in range(a.rounds):
            for k in a.keys.split(","):
                values = GRID[k]
                run_all([{**best, k: v} for v in values])
                top = max((tried[key_of({**best, k: v})] for v in values), key=lambda r: r["score"])
                if top["score"] >= tried[key_of(best)]["score"] + a.min_gain:
                    best = top["setting"]
        results = sorted(tried.values(), key=lambda r: -r["score"])
        if a.out:
            os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
            with open(a.out, "w") as f:
                json.dump({"model": model_id(a.model), "fa_weight": a.fa_weight,
                           "max_false_alarms_per_hour": a.max_false_alarms, "min_gain": a.min_gain,
                           "default": tried[key_of(DEFAULTS)],
                           "candidates": results}, f, indent=1)
        d, b = tried[key_of(DEFAULTS)], tried[key_of(best)]
        for name, r in (("defaults", d), ("best", b)):
            print(f"{name}: F1 {r['f1_snr_ge_0dB']} (P {r['precision_snr_ge_0dB']}, R {r['recall_snr_ge_0dB']}), "
                  f"label accuracy {r['label_accuracy']}, {r['false_alarms_per_hour']} false alarms/h")
        print(endpoint_toml(best))
        if a.write_manifest:
            write_manifest(a, best, d, b, len(annotated), sum(h for _, h in quiet))


def endpoint_keys(p):
    """A setting as [endpoint] keys (the offset as a threshold, not a margin)."""
    keys = {"onset": p["onset"], "offset": max(0.0, round(p["onset"] - p["offset_margin"], 3))}
    keys.update((k, v) for k, v in p.items() if k not in ("onset", "offset_margin"))
    return keys


def write_manifest(a, best, default, chosen, n_annotated, quiet_hours):
    with open(a.model) as f:
        m = json.load(f)
    m["endpoint"] = endpoint_keys(best)
    data = (f"your recordings in {a.data}" if a.data else
            f"{n_annotated} synthetic soundscapes x {a.minutes:g} min (seeds {DEV_SEED0}+, made as "
            f"evaluate.py's test set) and {quiet_hours:g} h call-free (seeds {DEV_CONF_SEED0}+)")
    summary = lambda r: {k: r[k] for k in ("f1_snr_ge_0dB", "precision_snr_ge_0dB",  # noqa: E731
                                           "recall_snr_ge_0dB", "label_accuracy",
                                           "false_alarms_per_hour")}
    m.setdefault("provenance", {})["endpoint_tuning"] = {
        "tool": "models/tune_endpoint.py", "data": data, "fa_weight": a.fa_weight,
        "max_false_alarms_per_hour": a.max_false_alarms, "min_gain": a.min_gain,
        "rounds": a.rounds, "keys": a.keys,
        "builtin_defaults": summary(default), "recommended": summary(chosen)}
    with open(a.model, "w") as f:
        json.dump(m, f, indent=2)
        f.write("\n")
    print(f"wrote the recommended [endpoint] settings into {a.model}", file=sys.stderr)


if __name__ == "__main__":
    main()
