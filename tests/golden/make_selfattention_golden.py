"""Regenerate the PyTorch golden files of the self-attention block, ``tests/golden/selfattention/*.npz``.

Run from the repository root (needs PyTorch; the tests that read the files do not)::

    python tests/golden/make_selfattention_golden.py              # writes tests/golden/selfattention/
    python tests/golden/make_selfattention_golden.py --out DIR    # somewhere else

The files sit in a folder of their own: ``tests/test_golden.py`` reads every ``tests/golden/*.npz``
as a recurrent-layer case.

Each case builds ``torch.nn.TransformerEncoderLayer(d_model, nhead, dim_feedforward, dropout=0.0,
activation, batch_first=False, norm_first)`` in float32 and in float64, sets every parameter to
seeded random values (biases and norm weights included, so none sits at its trivial init), runs it
on random ``x`` with an optional causal ``src_mask`` (bool, True above the diagonal) and an optional
``src_key_padding_mask`` (bool, True at steps >= lengths[b]), and back-propagates
``L = sum(y * dy)`` for a random cotangent ``dy``. The attention weights per head come from calling
the layer's ``self_attn`` on its own input (``x``, or ``norm1(x)`` when ``norm_first``) with
``need_weights=True, average_attn_weights=False``.

Saved arrays per file (``np.load(path, allow_pickle=False)``): ``meta`` (0-d unicode JSON:
d_model, nhead, dim_feedforward, norm_first, activation, causal, padded, layer_norm_eps, dtype, T,
B, torch_version), ``param.<name>`` for each ``state_dict`` entry, ``x``, ``lengths`` (B,) int64
(all T when not padded), ``dy``, ``y``, ``attn`` (B, nhead, T, T), ``grad.<name>`` for every
parameter and ``grad.input``.

Seeds come from the case name without its dtype, so the float32 and float64 twins share shapes
and (rounded) values. Exits 2 if torch is missing.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import zlib
from pathlib import Path

import numpy as np

try:
    import torch
except ImportError:  # pragma: no cover - depends on the environment
    torch = None

DEFAULT_OUT = Path(__file__).resolve().parent / "selfattention"

#: stem -> (d_model, nhead, dim_feedforward, norm_first, activation, causal, padded)
CASES = {
    "selfattention_post_relu": (8, 2, 16, False, "relu", False, False),
    "selfattention_post_relu_causal_padded": (8, 2, 16, False, "relu", True, True),
    "selfattention_pre_gelu_padded": (12, 3, 20, True, "gelu", False, True),
    "selfattention_pre_relu_causal": (8, 4, 12, True, "relu", True, False),
}
DTYPES = ("float32", "float64")
LAYER_NORM_EPS = 1e-5


def run_case(stem, dtype):
    """Build, run and differentiate one case; return the dict of arrays to save."""
    d_model, nhead, d_ff, norm_first, activation, causal, padded = CASES[stem]
    rng = np.random.default_rng(zlib.crc32(stem.encode()))
    T, B = int(rng.integers(5, 9)), int(rng.integers(2, 5))
    tdt = {"float32": torch.float32, "float64": torch.float64}[dtype]
    layer = torch.nn.TransformerEncoderLayer(d_model, nhead, d_ff, dropout=0.0, activation=activation,
                                             layer_norm_eps=LAYER_NORM_EPS, batch_first=False,
                                             norm_first=norm_first).to(tdt)
    with torch.no_grad():
        for name, p in layer.named_parameters():
            if name.startswith("norm") and name.endswith("weight"):
                value = 1.0 + 0.2 * rng.standard_normal(tuple(p.shape))
            else:
                value = rng.uniform(-1.0, 1.0, tuple(p.shape)) / np.sqrt(p.shape[-1])
            p.copy_(torch.from_numpy(value))

    x = torch.from_numpy(rng.standard_normal((T, B, d_model))).to(tdt).requires_grad_(True)
    dy = torch.from_numpy(rng.standard_normal((T, B, d_model))).to(tdt)
    lengths = np.full(B, T, dtype=np.int64)
    if padded:
        lengths[1:] = rng.integers(1, T, size=B - 1)  # sequence 0 full, the others shorter (one may be 1)
        lengths[-1] = 1
    src_mask = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1) if causal else None
    pad_mask = torch.from_numpy(np.arange(T)[None, :] >= lengths[:, None]) if padded else None

    y = layer(x, src_mask=src_mask, src_key_padding_mask=pad_mask)
    (y * dy).sum().backward()
    with torch.no_grad():
        u = layer.norm1(x) if norm_first else x
        _, attn = layer.self_attn(u, u, u, attn_mask=src_mask, key_padding_mask=pad_mask,
                                  need_weights=True, average_attn_weights=False)

    meta = dict(d_model=d_model, nhead=nhead, dim_feedforward=d_ff, norm_first=norm_first,
                activation=activation, causal=causal, padded=padded, layer_norm_eps=LAYER_NORM_EPS,
                dtype=dtype, T=T, B=B, torch_version=torch.__version__)
    npy = lambda t: t.detach().cpu().numpy().copy()  # noqa: E731
    out = {"meta": np.array(json.dumps(meta))}
    for name, p in layer.state_dict().items():
        out[f"param.{name}"] = npy(p)
    out.update(x=npy(x), lengths=lengths, dy=npy(dy), y=npy(y), attn=npy(attn))
    for name, p in layer.named_parameters():
        out[f"grad.{name}"] = npy(p.grad)
    out["grad.input"] = npy(x.grad)
    return out


def save_atomic(path: Path, arrays: dict) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez_compressed(f, **arrays)
        os.chmod(tmp, 0o644)  # mkstemp makes files private; these are ordinary repository files
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder")
    args = ap.parse_args(argv)
    if torch is None:
        print("make_selfattention_golden.py: PyTorch is not importable; install torch to regenerate "
              "the golden files", file=sys.stderr)
        return 2
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    for stem in CASES:
        for dtype in DTYPES:
            path = args.out / f"{stem}_{dtype}.npz"
            save_atomic(path, run_case(stem, dtype))
            print(path, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
