#!/usr/bin/env python3
"""Average the weights of checkpoints fine-tuned from one parent (a "model soup").

Checkpoints fine-tuned from the same weights on different data sit in one basin
of the loss, so their mean is a model too, and often one that generalises
better than any of them (Wortsman et al., "Model soups", ICML 2022). Every
input must share the parent's architecture and feature normalisation; the first
one gives the labels and everything else that is not a weight, except the
provenance: it keeps what all inputs agree on and lists each input's own.

    python models/average.py --out soup.pt a.pt b.pt c.pt
    python models/export.py --ckpt soup.pt --version X.Y.Z --out-dir cand
"""
import argparse
import os
import pickle
import sys

import torch


def load(path):
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except (OSError, RuntimeError, pickle.UnpicklingError) as e:
        raise SystemExit(f"{path}: cannot read the checkpoint ({e})")


def check_compatible(first, ck, path):
    """Averaging only makes sense for one architecture over one feature scale."""
    for key in ("config", "labels"):
        if ck.get(key) != first.get(key):
            raise SystemExit(f"{path}: its {key} {ck.get(key)} differs from the first "
                             f"checkpoint's {first.get(key)}; average only siblings")
    for key in ("mean", "std"):
        if float(ck[key]) != float(first[key]):
            raise SystemExit(f"{path}: feature {key} {float(ck[key])} differs from the first "
                             f"checkpoint's {float(first[key])} (trained with --renorm?)")


def average(paths):
    cks = [load(p) for p in paths]
    for ck, p in zip(cks[1:], paths[1:]):
        check_compatible(cks[0], ck, p)
    first = cks[0]["state_dict"]
    state = {}
    for name, w in first.items():
        if w.is_floating_point():
            total = sum(ck["state_dict"][name].double() for ck in cks)
            state[name] = (total / len(cks)).to(w.dtype)
        else:  # counters and index buffers are the same in siblings
            state[name] = w
    provs = [ck.get("provenance") or {} for ck in cks]
    # A key describes the soup only where every ingredient agrees (licence, code);
    # seeds, steps and validation scores differ and stay under averaged_from.
    prov = {k: v for k, v in provs[0].items() if all(p.get(k) == v for p in provs[1:])}
    names = ", ".join(os.path.basename(p) for p in paths)
    prov["trained_on"] = f"mean of the weights of {names}"
    prov["averaged_from"] = [dict(file=os.path.basename(p), provenance=pv)
                             for p, pv in zip(paths, provs)]
    return dict(cks[0], state_dict=state, provenance=prov)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("checkpoints", nargs="+", help="train.py checkpoints (.pt)")
    ap.add_argument("--out", required=True, help="where to write the averaged checkpoint")
    a = ap.parse_args(argv)
    if len(a.checkpoints) < 2:
        ap.error("give at least two checkpoints to average")
    torch.save(average(a.checkpoints), a.out)
    print(f"averaged {len(a.checkpoints)} checkpoints -> {a.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
