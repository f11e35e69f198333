"""The default rumbled edge model: a small sequence-to-sequence time-patch transformer.

Input  fbank  float32 [batch, frames, 128], already normalised as (fbank - mean) / (2 * std)
Output logits float32 [batch, floor(frames / 16), n_classes]; sigmoid gives per-class
       multi-label probabilities for each 160 ms output frame.

Output frame g sees fbank frames [16 g, 16 g + 16) through its own patch
embedding and every other patch of the same window through self-attention;
trailing frames that do not fill a whole patch are ignored.

Architecture (AST-style, configured seq2seq as in "Learning to rumble"):
  * patch embedding: one 16-frame x 128-bin time patch -> d (a Conv1d with
    kernel = stride = 16, i.e. a linear map of the whole flattened patch);
  * sinusoidal positional encoding computed for however many patches arrive
    (any window length works), plus a depth-wise conv over neighbouring patches
    (conditional positional encoding, also length-agnostic);
  * `layers` pre-norm transformer encoder layers (d, `heads` heads, GELU MLP);
  * a linear head per patch -> n_classes logits.
Written with plain matmuls (no nn.MultiheadAttention fast path) so that the
ONNX export is simple and identical to eager PyTorch.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

PATCH = 16
N_MELS = 128
LABELS = ["not-call", "rumble", "roar", "cry", "trumpet"]


class EncoderLayer(nn.Module):
    def __init__(self, d: int, heads: int, ff: int, dropout: float):
        super().__init__()
        assert d % heads == 0
        self.heads = heads
        self.dh = d // heads
        self.ln1 = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.ln2 = nn.LayerNorm(d)
        self.ff1 = nn.Linear(d, ff)
        self.ff2 = nn.Linear(ff, d)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        h = self.ln1(x)
        qkv = self.qkv(h).reshape(b, n, 3, self.heads, self.dh).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]  # [b, heads, n, dh]
        att = torch.matmul(q, k.transpose(-1, -2)) * (1.0 / math.sqrt(self.dh))
        att = torch.softmax(att, dim=-1)
        att = self.drop(att)
        o = torch.matmul(att, v).permute(0, 2, 1, 3).reshape(b, n, d)
        x = x + self.drop(self.proj(o))
        h = self.ln2(x)
        x = x + self.drop(self.ff2(self.drop(F.gelu(self.ff1(h)))))
        return x


class EdgeAST(nn.Module):
    def __init__(self, d: int = 128, layers: int = 3, heads: int = 4, ff: int = 256,
                 n_classes: int = len(LABELS), dropout: float = 0.1, n_mels: int = N_MELS):
        super().__init__()
        self.config = dict(d=d, layers=layers, heads=heads, ff=ff, n_classes=n_classes,
                           dropout=dropout, n_mels=n_mels)
        self.d = d
        self.patch = nn.Conv1d(n_mels, d, kernel_size=PATCH, stride=PATCH)
        self.cpe = nn.Conv1d(d, d, kernel_size=3, padding=1, groups=d)
        self.blocks = nn.ModuleList(EncoderLayer(d, heads, ff, dropout) for _ in range(layers))
        self.ln = nn.LayerNorm(d)
        self.head = nn.Linear(d, n_classes)
        inv = torch.exp(torch.arange(0, d, 2, dtype=torch.float32) * (-math.log(10000.0) / d))
        self.register_buffer("inv_freq", inv, persistent=False)

    def forward(self, fbank: torch.Tensor) -> torch.Tensor:
        x = self.patch(fbank.transpose(1, 2))  # [b, d, n]
        x = x + self.cpe(x)
        x = x.transpose(1, 2)  # [b, n, d]
        n = x.shape[1]
        pos = torch.arange(n, device=x.device, dtype=torch.float32)[:, None] * self.inv_freq[None, :]
        pe = torch.stack([torch.sin(pos), torch.cos(pos)], dim=-1).reshape(n, self.d)
        x = x + pe[None]
        for blk in self.blocks:
            x = blk(x)
        return self.head(self.ln(x))


def build(config: dict | None = None) -> EdgeAST:
    return EdgeAST(**(config or {}))
