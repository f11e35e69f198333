"""Tiny ONNX graphs that break the model contract in one way each.

rumbled must refuse each of them at start-up with a message naming the
file and what does not fit. Regenerate with:

    python models/make_test_models.py tests/data/models

Needs only the `onnx` package (see requirements.txt).
"""
import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def graph(in_name="fbank", mel=128, classes=5, out_rank=3, out_name="logits"):
    """Mean-pools 16 frames, projects mel -> classes: a contract-shaped graph."""
    x = helper.make_tensor_value_info(in_name, TensorProto.FLOAT, ["batch", "frames", mel])
    w = numpy_helper.from_array(np.full((mel, classes), 0.01, dtype=np.float32), "w")
    nodes = [
        # [b, t, mel] -> [b, mel, t] so AveragePool runs along time.
        helper.make_node("Transpose", [in_name], ["xt"], perm=[0, 2, 1]),
        helper.make_node("AveragePool", ["xt"], ["pooled"], kernel_shape=[16], strides=[16]),
        helper.make_node("Transpose", ["pooled"], ["p"], perm=[0, 2, 1]),
        helper.make_node("MatMul", ["p", "w"], ["y3"]),
    ]
    if out_rank == 3:
        nodes[-1].output[0] = out_name
        y = helper.make_tensor_value_info(out_name, TensorProto.FLOAT, ["batch", "out_frames", classes])
    else:
        shape = numpy_helper.from_array(np.array([-1, classes], dtype=np.int64), "shape")
        nodes.append(helper.make_node("Reshape", ["y3", "shape"], [out_name]))
        y = helper.make_tensor_value_info(out_name, TensorProto.FLOAT, [None, classes])
    inits = [w] + ([shape] if out_rank != 3 else [])
    g = helper.make_graph(nodes, "contract_test", [x], [y], initializer=inits)
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def manifest(name, onnx_bytes, labels=("not-call", "rumble", "roar", "cry", "trumpet")):
    return {
        "schema": 1,
        "name": name,
        "version": "0.0.1",
        "sha256": hashlib.sha256(onnx_bytes).hexdigest(),
        "onnx": f"{name}.onnx",
        "sample_rate": 16000,
        "features": {
            "kind": "kaldi_fbank", "num_mel_bins": 128, "frame_length": 400,
            "frame_shift": 160, "low_freq": 20.0, "high_freq": 0.0,
            "preemphasis": 0.97, "scale": 32768.0, "mean": 14.7274, "std": 2.9366,
        },
        "input": {"name": "fbank", "layout": ["batch", "frames", "mel"]},
        "output": {"name": "logits", "activation": "sigmoid", "frames_per_output": 16,
                   "layout": ["batch", "frames", "classes"]},
        "window_frames": 998,
        "labels": list(labels),
        "background": "not-call",
        "provenance": {"trained_on": "nothing: a contract test graph"},
    }


def main(out_dir):
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cases = {
        "ok_pool": graph(),
        "wrong_input_name": graph(in_name="features"),
        "wrong_mel": graph(mel=64),
        "wrong_classes": graph(classes=4),
        "rank2_output": graph(out_rank=2),
    }
    garbage = b"this is not an onnx protobuf\n" * 4
    cases["garbage"] = garbage
    for name, data in cases.items():
        (out / f"{name}.onnx").write_bytes(data)
        (out / f"{name}.json").write_text(json.dumps(manifest(name, data), indent=2) + "\n")
    # A manifest whose checksum does not match its (valid) graph.
    bad_sum = manifest("bad_checksum", cases["ok_pool"])
    bad_sum["onnx"] = "ok_pool.onnx"
    bad_sum["sha256"] = "0" * 64
    (out / "bad_checksum.json").write_text(json.dumps(bad_sum, indent=2) + "\n")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "tests/data/models")
