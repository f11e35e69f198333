#!/usr/bin/env python3
"""Export a rumbled model checkpoint to ONNX plus its manifest, and verify it.

  python models/export.py --ckpt models/checkpoints/edge.pt            # trained model
  python models/export.py --random-init --seed 0 --version 0.1.0       # untrained placeholder

Writes models/<name>.onnx and models/<name>.json (sha256 of the .onnx filled in),
then checks with onnxruntime that the graph matches PyTorch within 1e-5 at
batch 1 and 2 and at 1998, 998, 500, 37 and 16 frames.

Checkpoint format (torch.save dict): config (EdgeAST kwargs), state_dict,
mean, std, labels, provenance, and window_frames (the manifest's; 998 if absent).
"""
import argparse
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import WINDOW  # noqa: E402
from manifest import AERD_MEAN, AERD_STD, make_manifest, write_manifest  # noqa: E402
from rumbled_model import LABELS, N_MELS, build  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def export_onnx(model: torch.nn.Module, path: str) -> None:
    model.eval()
    example = torch.randn(2, 998, N_MELS)
    batch = torch.export.Dim("batch", min=1, max=1024)
    frames = torch.export.Dim("frames", min=16, max=1 << 20)
    prog = torch.onnx.export(
        model, (example,), dynamo=True, input_names=["fbank"], output_names=["logits"],
        dynamic_shapes={"fbank": {0: batch, 1: frames}}, optimize=True, verify=False,
        external_data=False,
    )
    prog.save(path, external_data=False)


def verify(model: torch.nn.Module, path: str, tol: float = 1e-5) -> float:
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    ins, outs = sess.get_inputs(), sess.get_outputs()
    assert [i.name for i in ins] == ["fbank"] and [o.name for o in outs] == ["logits"], \
        (ins, outs)
    rng = np.random.default_rng(1)
    worst = 0.0
    for b in (1, 2):
        for t in (1998, 998, 500, 37, 16):
            x = rng.standard_normal((b, t, N_MELS)).astype(np.float32)
            with torch.no_grad():
                ref = model(torch.from_numpy(x)).numpy()
            got = sess.run(["logits"], {"fbank": x})[0]
            assert got.shape == (b, t // 16, model.config["n_classes"]), got.shape
            # relative to the logits' scale: float32 rounds a logit of 8 to about 1e-6
            # and the two runtimes sum in different orders
            err = float(np.max(np.abs(got - ref))) / max(1.0, float(np.max(np.abs(ref))))
            worst = max(worst, err)
            if err > tol:
                raise SystemExit(f"ONNX mismatch at batch {b} frames {t}: {err:g} > {tol:g} "
                                 f"(largest logit difference / largest logit)")
    return worst


def summarise_metrics(r: dict) -> dict:
    """The headline numbers of an evaluate.py result, for the manifest."""
    ev = r["events"]
    out = {"test_set": r.get("test"), "detector": r.get("detector"),
           "framewise_call_ap": r["framewise"]["call_ap_max"],
           "framewise_call_ap_snr_ge_0dB": r["framewise"].get("call_ap_max_snr_ge_0dB"),
           "class_roc_auc": r["framewise"]["class_auc"],
           "class_roc_auc_mean": r["framewise"]["class_auc_mean"],
           "event_f1_snr_ge_0dB": ev["events_vs_regions_snr_ge_0dB"]["f1"],
           "event_f1_all": ev["events_vs_regions"]["f1"],
           "label_accuracy": ev["label_accuracy"],
           "recall_by_snr": {k: v["recall"] for k, v in ev["recall_by_snr"].items()},
           "by_recorder_rate": r.get("by_rate")}
    if "false_alarms" in r:
        out["false_alarms_per_hour_confounders"] = r["false_alarms"]["per_hour"]
        out["false_alarm_hours"] = r["false_alarms"]["hours"]
    if "false_alarms_typical" in r:
        out["false_alarms_per_hour_typical_scenes"] = r["false_alarms_typical"]["per_hour"]
    if "events_rumbled" in r:
        out["event_f1_snr_ge_0dB_rumbled_replay"] = \
            r["events_rumbled"]["events_vs_regions_snr_ge_0dB"]["f1"]
        if "rumbled_per_hour" in r.get("false_alarms", {}):
            out["false_alarms_per_hour_confounders_rumbled_replay"] = \
                r["false_alarms"]["rumbled_per_hour"]
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ckpt", help="checkpoint from train.py")
    ap.add_argument("--random-init", action="store_true",
                    help="export the default architecture with random weights (placeholder)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--name", default="rumbled-edge-ev5")
    ap.add_argument("--version", default=None)
    ap.add_argument("--out-dir", default=HERE)
    ap.add_argument("--metrics", help="evaluate.py JSON: its summary goes into provenance.metrics")
    ap.add_argument("--trained-on", help="override provenance.trained_on")
    ap.add_argument("--endpoint-from", metavar="MANIFEST",
                    help="copy the recommended [endpoint] settings and their provenance from this "
                         "manifest (the one tune_endpoint.py --write-manifest wrote for these weights)")
    ap.add_argument("--min-input-rate", type=int, metavar="HZ",
                    help="the lowest recorder rate the weights were trained on, for checkpoints "
                         "that do not record it (provenance.recorder_rates); rumbled warns about "
                         "recordings below it")
    args = ap.parse_args()
    if args.min_input_rate is not None and args.min_input_rate <= 0:
        ap.error("--min-input-rate must be a positive rate in Hz")
    torch.set_num_threads(1)

    if args.random_init:
        torch.manual_seed(args.seed)
        model = build()
        mean, std, labels = AERD_MEAN, AERD_STD, LABELS
        version = args.version or "0.1.0"
        window = WINDOW
        prov = {"trained_on": "nothing: untrained placeholder with random initial weights "
                              f"(torch.manual_seed({args.seed})); outputs are meaningless",
                "seeds": {"init": args.seed},
                "metrics": {},
                "normalisation": "aerd defaults (mean 14.7274, std 2.9366), not measured",
                "license": "Apache-2.0 OR MIT"}
    elif args.ckpt:
        ck = torch.load(args.ckpt, map_location="cpu", weights_only=False)
        model = build(ck["config"])
        model.load_state_dict(ck["state_dict"])
        mean, std, labels = ck["mean"], ck["std"], ck.get("labels", LABELS)
        version = args.version or ck.get("version", "1.0.0")
        prov = ck.get("provenance", {})
        # the window the weights were trained on (train.py --window), which rumbled must use
        window = int(ck.get("window_frames", WINDOW))
    else:
        ap.error("give --ckpt or --random-init")
    model.eval()
    prov = dict(prov)
    if a_metrics := args.metrics:
        with open(a_metrics) as f:
            prov["metrics"] = summarise_metrics(json.load(f))
    if args.trained_on:
        prov["trained_on"] = args.trained_on

    os.makedirs(args.out_dir, exist_ok=True)
    onnx_path = os.path.join(args.out_dir, f"{args.name}.onnx")
    export_onnx(model, onnx_path)
    worst = verify(model, onnx_path)
    rates = prov.get("recorder_rates") or []
    min_rate = args.min_input_rate or (min(rates) if rates else None)
    m = make_manifest(onnx_path, args.name, version, mean, std, prov, labels=labels,
                      window_frames=window, min_input_rate=min_rate)
    if args.endpoint_from:
        with open(args.endpoint_from) as f:
            tuned = json.load(f)
        if "endpoint" not in tuned:
            raise SystemExit(f"{args.endpoint_from}: no \"endpoint\" settings to copy "
                             "(run tune_endpoint.py --write-manifest on it first)")
        m["endpoint"] = tuned["endpoint"]
        if "endpoint_tuning" in tuned.get("provenance", {}):
            m["provenance"]["endpoint_tuning"] = tuned["provenance"]["endpoint_tuning"]
    write_manifest(os.path.join(args.out_dir, f"{args.name}.json"), m)
    size = os.path.getsize(onnx_path)
    print(f"wrote {onnx_path} ({size / 1e6:.2f} MB, sha256 {m['sha256'][:16]}...), "
          f"max |onnx - torch| / max |logit| = {worst:.2e}")


if __name__ == "__main__":
    main()
