#!/usr/bin/env python3
"""Export a "Learning to rumble" (aerd) checkpoint to ONNX + a rumbled manifest.

The authors' inference package `aerd` (PyPI, 1.1.5, GPL-3.0-or-later) is
imported at export time; none of its code is copied here. The exported graph
is aerd's own `AERDClassifier.forward` on normalised fbank frames
[batch, frames, 128] -> logits [batch, frames // 16, classes]; rumbled computes
the features (aerd's `preprocess`: Kaldi fbank of samples * 2^15, then
(x - mean) / (2 std)) and applies the sigmoid, as aerd's `predict` does.

  # a checkpoint file from the authors' GitHub releases
  python models/export_aerd.py --checkpoint aerd_ev_call_ko1_v1-5876c7c3.pt --int8
  # or let aerd download it (needs network access to github.com)
  python models/export_aerd.py --weights EV_CALL --fold 1 --int8
  # a randomly initialised model, to prove the path (see models/README.md)
  python models/export_aerd.py --random-init --config small --seed 0 --pack-grid \\
      --out-dir tests/data/aerd --reference tests/data/aerd/clip.wav

Writes <out-dir>/<name>.onnx + <name>.json (and <name>-int8.* with --int8),
checks the graph against aerd's PyTorch forward in onnxruntime, and with
--reference writes aerd's own per-frame probabilities for a WAV file, computed
with `predict` over exactly rumbled's windows and averaged uniformly.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from common import windows  # noqa: E402
from manifest import make_manifest, sha256_file, write_manifest  # noqa: E402

SR = 16000
N_MELS = 128
PATCH = 16
WINDOW = 998
OPSET = 21  # int4 DequantizeLinear (used by --pack-grid) needs opset 21

# A reduced BEATs configuration for tests: the same architecture (patch
# embedding, conv positional embedding, deep-norm post-LN encoder with gated
# relative position bias, per-patch head averaged over frequency), with two
# layers, a narrow patch embedding and feed-forward, and a short depthwise
# positional convolution. The encoder width stays 768 because aerd's
# AERDClassifier.forward reshapes the encoder output to a literal 768.
SMALL_BEATS = {
    "encoder_layers": 2,
    "embed_dim": 64,
    "encoder_ffn_embed_dim": 64,
    "conv_pos": 32,
    "conv_pos_groups": 768,
}

# aerd's file names: aerd_<dataset>_<variant>_ko<fold>_v<version>-<hash>.pt
FILE_LABEL_MAPS = {
    "ev_call": ("elephant-voices", "call"),
    "ev_subcall": ("elephant-voices", "subcall"),
    "ev_binary": ("elephant-voices", "binary"),
    "ldc_poole": ("asian-voc", "poole"),
    "ldc_binary": ("asian-voc", "binary"),
}
PREDICTORS_PER_FRAME = ("seq", "seq-spec")


def aerd_version() -> str:
    import importlib.metadata
    return importlib.metadata.version("aerd")


# ----------------------------------------------------------------------------- loading

def beats_config(kind: str) -> dict:
    from aerd.model import _DEFAULT_BEATS_CONFIG
    cfg = dict(_DEFAULT_BEATS_CONFIG)
    if kind == "small":
        cfg.update(SMALL_BEATS)
    elif kind != "full":
        raise ValueError(f"unknown config {kind!r} (full or small)")
    return cfg


def random_model(config: str, seed: int, num_classes: int, labels: dict | None):
    from aerd import AERDClassifier
    torch.manual_seed(seed)
    model = AERDClassifier(num_classes=num_classes, beats_config=beats_config(config),
                           class_labels=labels)
    return model.eval()


def round_to_grid(model: torch.nn.Module, min_numel: int = 4096) -> list[str]:
    """Rounds every weight matrix with >= min_numel elements to an int4 grid
    (k * 2^e, k in [-8, 7], one power-of-two step per tensor) so --pack-grid
    can store it as 4-bit integers losslessly. The model is still a random
    model and still computes in float32; only its weight values are coarser.
    The weight-normed positional convolution is left alone (its weight is
    computed from g and v in the graph)."""
    done = []
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim < 2 or p.numel() < min_numel or "weight_g" in name or "weight_v" in name:
                continue
            step = 2.0 ** np.floor(np.log2(p.std().item() / 2))
            p.copy_((p / step).round().clamp(-8, 7) * step)
            done.append(name)
    return done


def load_checkpoint_file(path: str):
    """A checkpoint file through aerd's own loader, plus its raw metadata."""
    import aerd
    ck = torch.load(path, map_location="cpu", weights_only=True)
    model, _ = aerd.aerd(weights=os.path.abspath(path), progress=False)
    meta = {k: ck.get(k) for k in ("hyper_parameters", "dataset_info", "class_labels",
                                   "beats_config") if ck.get(k) is not None}
    return model.eval(), meta


def resolve_labels(model, meta: dict, label_map: str | None, hint: str | None):
    """Class names in output order: from the checkpoint, else from aerd's label
    maps (named by --label-map, the checkpoint's dataset_info, or the file name)."""
    from aerd import LABEL_MAPS, get_class_labels
    n = model.num_classes
    mapping, origin = None, None
    if model.class_labels is not None:
        mapping, origin = model.class_labels, "checkpoint class_labels"
    elif label_map:
        dataset, _, variant = label_map.partition("/")
        mapping = get_class_labels(dataset, variant)
        if mapping is None:
            known = ", ".join(f"{d}/{v}" for d, v in LABEL_MAPS)
            raise SystemExit(f"--label-map {label_map}: not one of aerd's maps ({known})")
        origin = f"aerd LABEL_MAPS[{dataset}/{variant}] (--label-map)"
    else:
        info = meta.get("dataset_info") or {}
        dataset = info.get("dataset") if isinstance(info, dict) else None
        variant = info.get("variant") if isinstance(info, dict) else None
        if dataset and variant and get_class_labels(dataset, variant):
            mapping = get_class_labels(dataset, variant)
            origin = f"aerd LABEL_MAPS[{dataset}/{variant}] (checkpoint dataset_info)"
        elif hint:
            for key, (dataset, variant) in FILE_LABEL_MAPS.items():
                if f"aerd_{key}_" in os.path.basename(hint):
                    mapping = get_class_labels(dataset, variant)
                    origin = f"aerd LABEL_MAPS[{dataset}/{variant}] (file name)"
                    break
    if mapping is None:
        raise SystemExit("the checkpoint names no classes: give --label-map DATASET/VARIANT "
                         "(e.g. elephant-voices/call)")
    labels = [mapping.get(i) for i in range(n)]
    if None in labels or len(mapping) != n:
        raise SystemExit(f"labels from {origin} ({mapping}) do not fit the model's {n} classes")
    return labels, origin


# ----------------------------------------------------------------------------- faster graph

def weight_norm_hooks(module: torch.nn.Module) -> list:
    """The forward pre-hooks of torch's old-style weight norm on a module."""
    return [h for h in module._forward_pre_hooks.values() if type(h).__name__ == "WeightNorm"]


class BlockDftConv1d(torch.nn.Module):
    """The same grouped Conv1d (stride 1, zero padding), computed by
    overlap-save over blocks of 2K samples with real DFTs written as matrix
    products. BEATs' positional convolution (128 taps, 16 groups of 48
    channels) costs onnxruntime about 100 ms per 10 s window on one core as a
    direct convolution (4.7 GFLOP); this way it is about 0.8 GFLOP of dense
    products and 25 ms. The weight spectrum is computed in the graph from the
    convolution's own weight (its weight norm included), so onnxruntime folds
    it once at load and the file keeps the original initializers. Channels
    stay the innermost axis throughout, which keeps every transpose a copy of
    contiguous rows."""

    def __init__(self, conv: torch.nn.Conv1d):
        super().__init__()
        self.conv = conv
        (self.k,), (self.pad,), self.groups = conv.kernel_size, conv.padding, conv.groups
        n = 2 * self.k
        self.n, self.hop, self.bins = n, n - self.k + 1, n // 2 + 1
        step = 2 * np.pi / n
        f = np.arange(self.bins)
        ang = step * f[:, None] * np.arange(n)[None, :]
        # [cos; sin] rows per bin: a block's spectrum is P - iQ, a kernel's conjugate A + iB.
        self.register_buffer("block_dft", self._f32(np.concatenate([np.cos(ang), np.sin(ang)])),
                             persistent=False)
        self.register_buffer("kernel_dft", self._f32(np.concatenate(
            [np.cos(ang[:, :self.k]), np.sin(ang[:, :self.k])]).T), persistent=False)
        # real inverse DFT of a Hermitian spectrum, only for the hop outputs a block keeps
        weight = np.full(self.bins, 2.0)
        weight[0] = weight[-1] = 1.0
        ang_t = step * np.arange(self.hop)[:, None] * f[None, :]
        self.register_buffer("inverse_dft", self._f32(np.concatenate(
            [weight * np.cos(ang_t), -weight * np.sin(ang_t)], 1) / n), persistent=False)

    @staticmethod
    def _f32(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(a).float()

    @staticmethod
    def fits(conv) -> bool:
        return (isinstance(conv, torch.nn.Conv1d) and conv.stride == (1,)
                and conv.dilation == (1,) and conv.padding_mode == "zeros"
                and isinstance(conv.padding, tuple) and conv.bias is not None)

    def kernel_weight(self) -> torch.Tensor:
        """The effective weight: torch's (old-style) weight norm recomputes it
        in a forward pre-hook, which this module's forward does not run."""
        for hook in weight_norm_hooks(self.conv):
            v, g = getattr(self.conv, hook.name + "_v"), getattr(self.conv, hook.name + "_g")
            return torch._weight_norm(v, g, hook.dim)
        return self.conv.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, _, frames = x.shape
        groups, bins, hop = self.groups, self.bins, self.hop
        w = self.kernel_weight()
        c_out, c_in = w.shape[0], w.shape[1]
        g_out = c_out // groups
        out_frames = frames + 2 * self.pad - self.k + 1
        # kernel spectra per (bin, group): A, B as [bins, groups, c_in, g_out]
        ab = (w.reshape(c_out * c_in, self.k) @ self.kernel_dft).reshape(
            groups, g_out, c_in, 2, bins)
        a = ab[:, :, :, 0].permute(3, 0, 2, 1)
        b = ab[:, :, :, 1].permute(3, 0, 2, 1)
        padded = torch.nn.functional.pad(x.transpose(1, 2), (0, 0, self.pad, self.pad + self.n))
        starts = torch.arange(0, out_frames, hop)
        blocks = padded[:, starts[:, None] + torch.arange(self.n)[None, :]]  # [B, nb, n, C]
        rows = batch * starts.shape[0]
        spectra = (self.block_dft @ blocks).reshape(rows, 2, bins, groups, c_in)
        pq = spectra.permute(2, 3, 1, 0, 4).reshape(bins, groups, 2 * rows, c_in)
        pa, pb = pq @ a, pq @ b
        # (P - iQ)(A + iB) = (PA + QB) + i(PB - QA)
        real = pa[:, :, :rows] + pb[:, :, rows:]
        imag = pb[:, :, :rows] - pa[:, :, rows:]
        y = torch.stack([real, imag]).permute(3, 0, 1, 2, 4).reshape(rows, 2 * bins, c_out)
        y = (self.inverse_dft @ y).reshape(batch, -1, c_out)[:, :out_frames]
        return y.transpose(1, 2) + self.conv.bias[:, None]


def faster_copy(model: torch.nn.Module) -> tuple[torch.nn.Module, list[str]]:
    """A copy of the model for export whose positional convolution is
    computed faster in onnxruntime, to within float32 rounding of aerd's own;
    `verify` checks the graph against the unchanged model. Returns the copy
    and what changed."""
    import copy
    for module in model.modules():
        # torch's old-style weight norm leaves the last computed weight behind
        # as a non-leaf tensor, which deepcopy refuses; every forward
        # recomputes it, so a detached copy changes nothing.
        for hook in weight_norm_hooks(module):
            if hasattr(module, hook.name):
                setattr(module, hook.name, getattr(module, hook.name).detach())
    fast = copy.deepcopy(model)
    done = []
    for name, module in fast.named_modules():
        if isinstance(module, torch.nn.Sequential) and name.endswith("pos_conv") and \
                BlockDftConv1d.fits(module[0]):
            module[0] = BlockDftConv1d(module[0])
            done.append(f"{name}.0 as block DFT products")
    return fast, done


# ----------------------------------------------------------------------------- ONNX

def strip_metadata(path: str) -> None:
    """Drops the exporter's per-node metadata (Python stack traces with local
    paths): smaller files, and the same bytes from any checkout."""
    import onnx
    m = onnx.load(path)
    for graph in [m.graph] + [a.g for n in m.graph.node for a in n.attribute if a.g.node]:
        for node in graph.node:
            del node.metadata_props[:]
            node.doc_string = ""
    onnx.save(m, path)


def export_onnx(model: torch.nn.Module, path: str) -> None:
    """aerd's forward on normalised fbank frames, batch and time axes dynamic."""
    model.eval()
    example = torch.randn(2, WINDOW, N_MELS)
    batch = torch.export.Dim("batch", min=1, max=1024)
    frames = torch.export.Dim("frames", min=PATCH, max=1 << 20)
    prog = torch.onnx.export(
        model, (example,), dynamo=True, input_names=["fbank"], output_names=["logits"],
        dynamic_shapes={"x": {0: batch, 1: frames}}, optimize=True, verify=False,
        external_data=False, opset_version=OPSET,
    )
    prog.save(path, external_data=False)
    strip_metadata(path)


def drop_softmax_max_shift(path: str) -> int:
    """BEATs' attention computes softmax((s - max_row(s)) * 32 + bias): the
    row-max shift is a no-op for softmax (onnxruntime's Softmax is stable by
    itself), so `Sub(s, ReduceMax(s))` is replaced by `s`. That saves two
    passes over every [heads, tokens, tokens] score tensor, and lets
    onnxruntime fold the * 32 into the score MatMul. Only rewritten when the
    chain is exactly ReduceMax(last axis, keepdims) -> Sub -> [Mul by a
    scalar] -> [Add] -> Softmax(last axis); returns the number rewritten."""
    import onnx
    from onnx import numpy_helper
    m = onnx.load(path)
    g = m.graph
    consumers: dict[str, list] = {}
    for n in g.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    consts = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    for n in g.node:
        if n.op_type == "Constant" and n.attribute and n.attribute[0].name == "value":
            consts[n.output[0]] = numpy_helper.to_array(n.attribute[0].t)
    outputs = {o.name for o in g.output}

    def only(name):
        c = consumers.get(name, [])
        return c[0] if len(c) == 1 and name not in outputs else None

    def attr(node, key, default=None):
        return next((onnx.helper.get_attribute_value(a) for a in node.attribute if a.name == key),
                    default)

    dead = []
    for rm in g.node:
        if rm.op_type != "ReduceMax" or attr(rm, "keepdims", 1) != 1 or len(rm.input) < 2:
            continue
        axes = consts.get(rm.input[1])
        if axes is None or list(np.ravel(axes)) != [-1]:
            continue
        sub = only(rm.output[0])
        if sub is None or sub.op_type != "Sub" or list(sub.input) != [rm.input[0], rm.output[0]]:
            continue
        node, ok = only(sub.output[0]), False
        while node is not None:
            if node.op_type == "Softmax":
                ok = attr(node, "axis", -1) == -1
                break
            if node.op_type == "Mul":
                other = [i for i in node.input if i not in (sub.output[0],) and i in consts]
                if len(other) != 1 or consts[other[0]].size != 1:
                    break
            elif node.op_type != "Add":
                break
            node = only(node.output[0])
        if not ok:
            continue
        nxt = only(sub.output[0])
        for k, i in enumerate(nxt.input):
            if i == sub.output[0]:
                nxt.input[k] = rm.input[0]
        dead += [rm, sub]
    for n in dead:
        g.node.remove(n)
    onnx.checker.check_model(m)
    onnx.save(m, path)
    return len(dead) // 2


def residual_adds_as_sum(path: str, ops=("LayerNormalization",)) -> int:
    """Writes the residual `Add` in front of each LayerNormalization as `Sum`
    (the same operation, with the same broadcasting). onnxruntime fuses
    Add + LayerNormalization into SkipLayerNormalization, which measured
    about 4x slower on one core (1.9 ms against 0.5 ms for Sum +
    LayerNormalization on [496, 768], onnxruntime 1.31, x86-64)."""
    import onnx
    m = onnx.load(path)
    producer = {o: n for n in m.graph.node for o in n.output}
    done = 0
    for n in m.graph.node:
        if n.op_type in ops and n.domain in ("", "ai.onnx"):
            add = producer.get(n.input[0])
            if add is not None and add.op_type == "Add" and add.domain in ("", "ai.onnx"):
                add.op_type = "Sum"
                done += 1
    onnx.checker.check_model(m)
    onnx.save(m, path)
    return done


def pack_grid_initializers(path: str, min_numel: int = 4096) -> list[tuple[str, tuple, int]]:
    """Stores float initializers whose values all lie on an int4 grid
    (k * 2^e, k in [-8, 7]) as int4 + DequantizeLinear. Lossless: the
    DequantizeLinear output is bit-identical to the original float32 tensor,
    and every MatMul/Conv still runs in float32."""
    import ml_dtypes
    import onnx
    from onnx import helper, numpy_helper
    m = onnx.load(path)
    inits, dq_nodes, packed = [], [], []
    for init in m.graph.initializer:
        a = numpy_helper.to_array(init)
        if a.dtype != np.float32 or a.size < min_numel:
            inits.append(init)
            continue
        for e in range(-40, 20):
            step = np.float32(2.0 ** e)
            q = a / step
            if np.all(q == np.round(q)) and q.min() >= -8 and q.max() <= 7:
                break
        else:
            inits.append(init)
            continue
        assert np.array_equal(q.astype(ml_dtypes.int4).astype(np.float32) * step, a)
        qi = numpy_helper.from_array(q.astype(ml_dtypes.int4), init.name + "_int4")
        sc = numpy_helper.from_array(np.array(step, np.float32), init.name + "_step")
        inits += [qi, sc]
        dq_nodes.append(helper.make_node("DequantizeLinear", [qi.name, sc.name], [init.name],
                                         name=init.name + "_dequantize"))
        packed.append((init.name, tuple(a.shape), e))
    del m.graph.initializer[:]
    m.graph.initializer.extend(inits)
    nodes = dq_nodes + list(m.graph.node)
    del m.graph.node[:]
    m.graph.node.extend(nodes)
    onnx.checker.check_model(m)
    onnx.save(m, path)
    return packed


def quantize_int8(src: str, dst: str) -> None:
    """Dynamic int8 (weights int8 per channel, activations quantised at run
    time) of every MatMul, with onnxruntime.quantization.

    The weights use 7 of their 8 bits (reduce_range): x86 CPUs without
    AVX-512 VNNI multiply uint8 activations by int8 weights with an
    instruction whose int16 sums saturate, and full-range weights then cost
    accuracy. On the full-size random model's reference clip, an AMD EPYC
    (AVX2) machine gave max |p - aerd| 2.3e-2 with 8 bits and 3.0e-3 with 7
    (models/README.md, "Speed against aerd")."""
    from onnxruntime.quantization import QuantType, quantize_dynamic
    quantize_dynamic(src, dst, weight_type=QuantType.QInt8, per_channel=True,
                     reduce_range=True, op_types_to_quantize=["MatMul"])
    strip_metadata(dst)


def ort_session(path: str, threads: int = 1):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def verify(model: torch.nn.Module, path: str, lengths=(998, 500, 37, 16), tol: float = 1e-4,
           batches=(1, 2)) -> float:
    """Max |logits_onnx - logits_torch| over random fbank inputs."""
    sess = ort_session(path)
    assert [i.name for i in sess.get_inputs()] == ["fbank"], sess.get_inputs()
    assert [o.name for o in sess.get_outputs()] == ["logits"], sess.get_outputs()
    rng = np.random.default_rng(1)
    worst = 0.0
    for b in batches:
        for t in lengths:
            x = rng.standard_normal((b, t, N_MELS)).astype(np.float32)
            with torch.no_grad():
                ref = model(torch.from_numpy(x)).numpy()
            got = sess.run(["logits"], {"fbank": x})[0]
            assert got.shape == ref.shape == (b, t // PATCH, model.num_classes), (got.shape, ref.shape)
            err = float(np.max(np.abs(got - ref)))
            worst = max(worst, err)
            if err > tol:
                raise SystemExit(f"{path}: ONNX differs from aerd's forward at batch {b}, "
                                 f"{t} frames: {err:g} > {tol:g}")
    return worst


# ----------------------------------------------------------------------------- reference

def read_wav(path: str) -> np.ndarray:
    """16 kHz mono 16-bit WAV -> float32 samples / 32768, as rumbled reads them."""
    import soundfile as sf
    x, sr = sf.read(path, dtype="int16", always_2d=True)
    if sr != SR or x.shape[1] != 1:
        raise SystemExit(f"{path}: need 16 kHz mono (got {sr} Hz, {x.shape[1]} channels)")
    return x[:, 0].astype(np.float32) / 32768.0


def window_samples(start: int, frames: int) -> tuple[int, int]:
    """Samples [a, b) whose Kaldi fbank (snip_edges) is exactly fbank frames
    [start, start + frames) of the whole recording."""
    return 160 * start, 160 * (start + frames - 1) + 400


def aerd_reference(model, samples: np.ndarray, hop_outputs: int, window: int = WINDOW):
    """aerd's own `predict` over exactly rumbled's windows, averaged uniformly.

    Returns (probs [n_out, C] float64, windows [(start, frames)], per-window
    probabilities). Each window is the sample span whose fbank is that window's
    frames, so aerd computes its own features (torchaudio Kaldi fbank,
    normalisation) and graph on it; shorter last windows are run at their true
    length, as aerd does with a short clip."""
    n_frames = (len(samples) - 400) // 160 + 1 if len(samples) >= 400 else 0
    n_out = n_frames // PATCH
    wins = [w for w in windows(n_frames, window, hop_outputs) if w[1] >= PATCH]
    acc = np.zeros((n_out, model.num_classes), np.float64)
    cnt = np.zeros(n_out, np.int64)
    per_window = []
    for s, ln in wins:
        a, b = window_samples(s, ln)
        p = model.predict(torch.from_numpy(samples[a:b])[None], output="tensor")[0].numpy()
        assert p.shape == (ln // PATCH, model.num_classes), p.shape
        g0 = s // PATCH
        acc[g0:g0 + len(p)] += p
        cnt[g0:g0 + len(p)] += 1
        per_window.append(p)
    assert cnt.min() >= 1, "every output frame is covered"
    return acc / cnt[:, None], wins, per_window


def ort_stitched(sess, samples: np.ndarray, mean: float, std: float, hop_outputs: int,
                 window: int = WINDOW) -> np.ndarray:
    """The ONNX graph over rumbled's windows on torchaudio features (a Python
    stand-in for rumbled, to catch export problems before the Rust test)."""
    from common import fbank
    feats = (fbank(samples) - np.float32(mean)) / np.float32(2 * std)
    n_out = len(feats) // PATCH
    acc, cnt = None, np.zeros(n_out)
    for s, ln in windows(len(feats), window, hop_outputs):
        if ln < PATCH:
            continue
        lg = sess.run(["logits"], {"fbank": feats[None, s:s + ln]})[0][0]
        if acc is None:
            acc = np.zeros((n_out, lg.shape[1]))
        acc[s // PATCH:s // PATCH + len(lg)] += 1 / (1 + np.exp(-lg.astype(np.float64)))
        cnt[s // PATCH:s // PATCH + len(lg)] += 1
    return acc / cnt[:, None]


def write_reference(path: str, wav: str, model, labels, hop_outputs: int, note: str) -> np.ndarray:
    samples = read_wav(wav)
    probs, wins, _ = aerd_reference(model, samples, hop_outputs)
    with open(wav, "rb") as f:
        wav_sha = hashlib.sha256(f.read()).hexdigest()
    ref = {
        "what": "aerd's own PyTorch predict() per window over exactly rumbled's windows "
                "(window_frames fbank frames, hop hop_outputs x 16 frames, last window "
                "shorter on the regular schedule, each window the sample span whose Kaldi "
                "fbank is that window's frames), probabilities averaged uniformly per "
                "160 ms output frame",
        "note": note,
        "wav": os.path.relpath(os.path.abspath(wav), os.path.dirname(os.path.abspath(path))),
        "wav_sha256": wav_sha,
        "samples": int(len(samples)),
        "fbank_frames": int((len(samples) - 400) // 160 + 1),
        "window_frames": WINDOW,
        "hop_outputs": int(hop_outputs),
        "windows": [[int(s), int(n)] for s, n in wins],
        "labels": list(labels),
        "fbank_mean": float(model.fbank_mean),
        "fbank_std": float(model.fbank_std),
        "aerd": aerd_version(),
        "torch": torch.__version__,
        "probs": [[float(f"{v:.9g}") for v in row] for row in probs],
    }
    with open(path, "w") as f:
        json.dump(ref, f, indent=1)
        f.write("\n")
    return probs


# ----------------------------------------------------------------------------- main

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", help="an aerd checkpoint file (.pt)")
    src.add_argument("--weights", help="an aerd.AERD_Weights name (EV_CALL, EV_SUBCALL, "
                     "EV_BINARY, LDC_POOLE, LDC_BINARY): aerd downloads it")
    src.add_argument("--random-init", action="store_true",
                     help="a randomly initialised AERDClassifier (to test the path)")
    ap.add_argument("--fold", type=int, default=1, help="fold of --weights (1-based)")
    ap.add_argument("--config", default="full", choices=["full", "small"],
                    help="BEATs configuration of --random-init")
    ap.add_argument("--seed", type=int, default=0, help="seed of --random-init")
    ap.add_argument("--num-classes", type=int, default=5, help="classes of --random-init")
    ap.add_argument("--label-map", default=None,
                    help="aerd label map DATASET/VARIANT when the checkpoint names no classes "
                         "(e.g. elephant-voices/call); --random-init defaults to it too")
    ap.add_argument("--pack-grid", action="store_true",
                    help="with --random-init: round large weights to an int4 grid and store "
                         "them as int4 (lossless; for small committed test models)")
    ap.add_argument("--name", default=None)
    ap.add_argument("--version", default=None)
    ap.add_argument("--out-dir", default=HERE)
    ap.add_argument("--int8", action="store_true", help="also write <name>-int8 (dynamic int8)")
    ap.add_argument("--reference", metavar="WAV", default=None,
                    help="write aerd's per-frame probabilities for this 16 kHz WAV "
                         "(<out-dir>/<name>.reference.json)")
    ap.add_argument("--hop", type=int, default=13,
                    help="window hop in output frames for --reference (rumbled's hop_frames)")
    ap.add_argument("--tol", type=float, default=1e-4, help="max |onnx - torch| logit")
    ap.add_argument("--keep-graph", action="store_true",
                    help="export aerd's modules and graph as they are (no block-DFT "
                         "positional convolution, no softmax shift removal, no residual "
                         "Add -> Sum)")
    args = ap.parse_args(argv)
    torch.set_num_threads(int(os.environ.get("TORCH_THREADS", "1")))
    if args.pack_grid and not args.random_init:
        ap.error("--pack-grid changes weights: only for --random-init test models")

    meta, hint = {}, None
    if args.random_init:
        label_map = args.label_map or "elephant-voices/call"
        from aerd import get_class_labels
        dataset, _, variant = label_map.partition("/")
        mapping = get_class_labels(dataset, variant)
        if mapping is None or len(mapping) != args.num_classes:
            ap.error(f"--label-map {label_map} does not give {args.num_classes} classes")
        model = random_model(args.config, args.seed, args.num_classes, mapping)
        gridded = round_to_grid(model) if args.pack_grid else []
        name = args.name or f"aerd-random-{args.config}"
        version = args.version or "0.0.0"
        source = {"kind": "random-init", "config": args.config, "seed": args.seed,
                  "int4_grid_weights": gridded}
        trained_on = ("nothing: randomly initialised AERDClassifier "
                      f"(torch.manual_seed({args.seed}), BEATs config '{args.config}'"
                      + (", large weights rounded to an int4 grid" if gridded else "")
                      + "); outputs are meaningless, it exists to prove the export path")
    elif args.weights:
        import aerd
        try:
            which = aerd.AERD_Weights[args.weights]
        except KeyError:
            ap.error(f"--weights {args.weights}: one of {[w.name for w in aerd.AERD_Weights]}")
        model, _ = aerd.aerd(weights=which, fold=args.fold)
        model.eval()
        hint = which.get_url(args.fold)
        name = args.name or "aerd-{}-{}-ko{}".format(
            "ev" if which.meta["dataset"] == "elephant-voices" else "ldc",
            which.meta["variant"], args.fold)
        version = args.version or f"{which.tag_version}"
        source = {"kind": "aerd release", "weights": which.name, "fold": args.fold, "url": hint,
                  "dataset": which.meta["dataset"], "variant": which.meta["variant"]}
        trained_on = which.meta["description"]
    else:
        model, meta = load_checkpoint_file(args.checkpoint)
        hint = args.checkpoint
        stem = os.path.splitext(os.path.basename(args.checkpoint))[0]
        mt = re.match(r"aerd_(\w+?)_ko(\d+)_v(\d+)", stem)
        name = args.name or (f"aerd-{mt.group(1).replace('_', '-')}-ko{mt.group(2)}" if mt
                             else re.sub(r"[^A-Za-z0-9_.-]", "-", stem))
        version = args.version or (f"{mt.group(3)}.0.0" if mt else "1.0.0")
        source = {"kind": "checkpoint file", "file": os.path.basename(args.checkpoint),
                  "sha256": sha256_file(args.checkpoint)}
        if meta.get("dataset_info"):
            trained_on = "see dataset_info"
        elif mt and mt.group(1) in FILE_LABEL_MAPS:
            dataset, variant = FILE_LABEL_MAPS[mt.group(1)]
            trained_on = (f"aerd release checkpoint (by its file name): {dataset}, {variant} "
                          f"labels, cross-validation fold {mt.group(2)}")
        else:
            trained_on = "unknown (not recorded in the checkpoint)"

    if model.predictor_type not in PREDICTORS_PER_FRAME:
        raise SystemExit(f"predictor '{model.predictor_type}' does not give one output per "
                         f"160 ms frame; rumbled needs {' or '.join(PREDICTORS_PER_FRAME)}")
    labels, label_origin = resolve_labels(model, meta, args.label_map, hint)
    n_params = sum(p.numel() for p in model.parameters())

    os.makedirs(args.out_dir, exist_ok=True)
    onnx_path = os.path.join(args.out_dir, f"{name}.onnx")
    exported, rewritten = (model, []) if args.keep_graph else faster_copy(model)
    export_onnx(exported, onnx_path)
    simplified = 0 if args.keep_graph else drop_softmax_max_shift(onnx_path)
    unfused = 0 if args.keep_graph else residual_adds_as_sum(onnx_path)
    packed = pack_grid_initializers(onnx_path) if args.pack_grid else []
    worst = verify(model, onnx_path, tol=args.tol)

    prov = {
        "trained_on": trained_on,
        "source": source,
        "paper": "Geldenhuys & Niesler, Learning to rumble (Bioacoustics 2025, "
                 "doi:10.1080/09524622.2025.2487099)",
        "exported_by": "models/export_aerd.py",
        "aerd": aerd_version(),
        "torch": torch.__version__,
        "onnx_opset": OPSET,
        "parameters": n_params,
        "predictor": model.predictor_type,
        "labels_from": label_origin,
        "normalisation": "aerd checkpoint fbank_mean/fbank_std "
                         "(aerd's defaults when the checkpoint has none)",
        "max_abs_logit_diff_vs_aerd_forward": worst,
        "metrics": {},
        "license": "GPL-3.0-or-later (aerd code and weights; see the aerd package)",
    }
    if meta.get("dataset_info") is not None:
        prov["dataset_info"] = meta["dataset_info"]
    if meta.get("hyper_parameters") is not None:
        prov["hyper_parameters"] = {k: v for k, v in meta["hyper_parameters"].items()
                                    if isinstance(v, (int, float, str, bool))}
    if simplified or unfused:
        prov["graph"] = (f"softmax row-max shift removed in {simplified} attention layers "
                         "(softmax is shift-invariant; onnxruntime's Softmax is stable); "
                         f"{unfused} residual Add written as Sum (no SkipLayerNormalization)")
    if rewritten:
        prov["modules"] = ("computed differently, to within float32 rounding (checked by the "
                           "export against aerd's forward): " + "; ".join(rewritten))
    if packed:
        prov["storage"] = (f"{len(packed)} weight tensors stored as int4 + DequantizeLinear; "
                           "lossless (their values are on that grid), computed in float32")

    def manifest_for(path, model_name, extra=None):
        p = dict(prov, **(extra or {}))
        m = make_manifest(path, model_name, version, model.fbank_mean, model.fbank_std, p,
                          labels=labels, window_frames=WINDOW)
        m["background"] = "not-call" if "not-call" in labels else labels[0]
        write_manifest(os.path.join(args.out_dir, f"{model_name}.json"), m)
        return m

    m = manifest_for(onnx_path, name)
    print(f"wrote {onnx_path} ({os.path.getsize(onnx_path) / 1e6:.2f} MB, {n_params / 1e6:.2f} M "
          f"parameters, {simplified} softmax shifts dropped, {len(packed)} tensors int4-packed), "
          f"max |onnx - aerd| logit {worst:.2e}; labels {labels} ({label_origin}); "
          f"mean {model.fbank_mean} std {model.fbank_std}")

    if args.int8:
        q_path = os.path.join(args.out_dir, f"{name}-int8.onnx")
        quantize_int8(onnx_path, q_path)
        q_worst = verify(model, q_path, lengths=(998, 37), batches=(1,), tol=float("inf"))
        manifest_for(q_path, f"{name}-int8", {
            "quantization": "dynamic int8 (onnxruntime.quantization.quantize_dynamic, "
                            "MatMul weights int8 per channel, 7-bit range)",
            "max_abs_logit_diff_vs_aerd_forward": q_worst})
        print(f"wrote {q_path} ({os.path.getsize(q_path) / 1e6:.2f} MB), "
              f"max |int8 - aerd| logit {q_worst:.2e}")

    if args.reference:
        ref_path = os.path.join(args.out_dir, f"{name}.reference.json")
        note = (f"model {name} (sha256 {m['sha256'][:16]}...); the exported ONNX graph in "
                "rumbled must reproduce these within 1e-4")
        probs = write_reference(ref_path, args.reference, model, labels, args.hop, note)
        py = ort_stitched(ort_session(onnx_path), read_wav(args.reference), model.fbank_mean,
                          model.fbank_std, args.hop)
        print(f"wrote {ref_path}: {probs.shape[0]} frames; onnxruntime on torchaudio features, "
              f"stitched: max |p - aerd| {np.max(np.abs(py - probs)):.2e}; "
              f"probabilities span {probs.min():.4f}..{probs.max():.4f}")


if __name__ == "__main__":
    main()
