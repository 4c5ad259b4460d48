"""Regenerate the PyTorch golden files in ``tests/golden/*.npz``.

Run from the repository root (needs PyTorch; the tests that read the files do not)::

    python scripts/make_golden.py              # writes tests/golden/
    python scripts/make_golden.py --out DIR    # somewhere else

Each case builds ``torch.nn.RNN/LSTM/GRU(batch_first=False)`` with seeded random
weights, random ``x``, ``h0`` (``c0``) and random cotangents ``dy``, ``dh_n``
(``dc_n``), runs the forward pass and back-propagates the scalar
``L = sum(y*dy) + sum(h_n*dh_n) + sum(c_n*dc_n)``.

Saved arrays per file (``np.load(path, allow_pickle=False)``):
``meta`` (0-d unicode JSON: mode, num_layers, bidirectional, nonlinearity, bias,
dtype, truncate, T, B, I, H, torch_version), ``param.<name>`` for each
``state_dict`` entry, ``x``, ``h0``, ``c0``, ``dy``, ``dh_n``, ``dc_n``, ``y``,
``h_n``, ``c_n``, ``lengths`` (packed cases), ``grad.<name>`` for every parameter, ``grad.input``,
``grad.h0``, ``grad.c0`` (the ``c`` entries for LSTM only).

Packed cases (``_packed``, two bidirectional layers) give each sequence its own length, drawn
in 1..T (saved as ``lengths``, and ``meta["lengths"]`` true): torch runs
``pack_padded_sequence(x, lengths, enforce_sorted=False)`` through the module and
``pad_packed_sequence(total_length=T)``, so y is zero beyond each length and h_n, c_n are each
sequence's state after its own last step.

Truncated cases (``_trunc3``, unidirectional) run the sequence in chunks of
``truncate`` steps through the same module, feeding each chunk the previous
chunk's final state *detached*; y is the concatenation of the chunk outputs and
h_n / c_n the final state of the last chunk.

Seeds come from the case name without its dtype, so the float32 and float64
twins of a case share shapes and (rounded) values.  Exits 2 if torch is missing.
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

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "tests" / "golden"

#: (mode, nonlinearity) -> file-name stem
CELLS = {("RNN", "tanh"): "rnn_tanh", ("RNN", "relu"): "rnn_relu",
         ("LSTM", "tanh"): "lstm", ("GRU", "tanh"): "gru"}
#: (num_layers, bidirectional, truncate, bias)
LAYOUTS = [(1, False, None, True), (2, False, None, True), (1, True, None, True),
           (2, True, None, True), (2, False, 3, True)]
EXTRA = [("LSTM", "tanh", 1, False, None, False), ("GRU", "tanh", 2, True, None, False)]
#: Cells run as packed sequences of different lengths (two bidirectional layers)
PACKED = [("RNN", "tanh"), ("LSTM", "tanh"), ("GRU", "tanh")]
DTYPES = ("float32", "float64")


def case_list():
    """All cases as dicts: name stem (without dtype) plus the configuration."""
    cases = []
    configs = [(m, nl, *lay, False) for (m, nl) in CELLS for lay in LAYOUTS] + [(*e, False) for e in EXTRA]
    configs += [(m, nl, 2, True, None, True, True) for (m, nl) in PACKED]
    for mode, nl, L, bi, trunc, bias, packed in configs:
        stem = f"{CELLS[(mode, nl)]}_l{L}" + ("_bi" if bi else "") \
            + (f"_trunc{trunc}" if trunc else "") + ("" if bias else "_nobias") + ("_packed" if packed else "")
        cases.append(dict(stem=stem, mode=mode, nonlinearity=nl, num_layers=L,
                          bidirectional=bi, truncate=trunc, bias=bias, packed=packed))
    return cases


def run_case(case, dtype):
    """Build, run and differentiate one case; return the dict of arrays to save."""
    rng = np.random.default_rng(zlib.crc32(case["stem"].encode()))
    T = int(rng.integers(5, 9)) if not case["truncate"] else 7 + int(rng.integers(0, 2))
    B, I, H = (int(v) for v in rng.integers([2, 3, 3], [5, 7, 6]))
    mode, L, bi = case["mode"], case["num_layers"], case["bidirectional"]
    D = 2 if bi else 1
    tdt = {"float32": torch.float32, "float64": torch.float64}[dtype]

    kwargs = dict(num_layers=L, bidirectional=bi, bias=case["bias"], batch_first=False)
    if mode == "RNN":
        kwargs["nonlinearity"] = case["nonlinearity"]
    module = getattr(torch.nn, mode)(I, H, **kwargs).to(tdt)

    # torch's default init, uniform(-1/sqrt(H), 1/sqrt(H)), drawn in float64 by NumPy;
    # halved for ReLU so T steps of W_hh products stay tame.
    bound = (0.5 if case["nonlinearity"] == "relu" else 1.0) / np.sqrt(H)
    with torch.no_grad():
        for name, p in module.named_parameters():
            p.copy_(torch.from_numpy(rng.uniform(-bound, bound, tuple(p.shape))))

    def draw(*shape):
        return torch.from_numpy(rng.standard_normal(shape)).to(tdt)

    x, h0, c0 = draw(T, B, I), draw(L * D, B, H), draw(L * D, B, H)
    dy, dh_n, dc_n = draw(T, B, D * H), draw(L * D, B, H), draw(L * D, B, H)
    lstm = mode == "LSTM"
    for t in (x, h0, c0):
        t.requires_grad_(True)
    # drawn last, so that the other cases' draws stay what they were before packed cases existed
    lengths = rng.integers(1, T + 1, size=B) if case["packed"] else None

    k = case["truncate"] or T
    ys, state = [], ((h0, c0) if lstm else h0)
    if lengths is not None:
        packed = torch.nn.utils.rnn.pack_padded_sequence(x, torch.from_numpy(lengths), enforce_sorted=False)
        out, state = module(packed, state)
        ys.append(torch.nn.utils.rnn.pad_packed_sequence(out, total_length=T)[0])
    for start in range(0, T if lengths is None else 0, k):
        if start > 0:  # truncated BPTT: the carried state is cut from the graph
            state = tuple(s.detach() for s in state) if lstm else state.detach()
        y_chunk, state = module(x[start:start + k], state)
        ys.append(y_chunk)
    y = torch.cat(ys, dim=0)
    h_n, c_n = state if lstm else (state, None)

    loss = (y * dy).sum() + (h_n * dh_n).sum()
    if lstm:
        loss = loss + (c_n * dc_n).sum()
    loss.backward()

    meta = dict(mode=mode, num_layers=L, bidirectional=bi, nonlinearity=case["nonlinearity"],
                bias=case["bias"], dtype=dtype, truncate=case["truncate"], T=T, B=B, I=I, H=H,
                lengths=lengths is not None, torch_version=torch.__version__)
    out = {"meta": np.array(json.dumps(meta))}
    npy = lambda t: t.detach().cpu().numpy().copy()  # noqa: E731
    for name, p in module.state_dict().items():
        out[f"param.{name}"] = npy(p)
    out.update(x=npy(x), h0=npy(h0), dy=npy(dy), dh_n=npy(dh_n), y=npy(y), h_n=npy(h_n))
    if lengths is not None:
        out["lengths"] = lengths.astype(np.int64)
    if lstm:
        out.update(c0=npy(c0), dc_n=npy(dc_n), c_n=npy(c_n))
    for name, p in module.named_parameters():
        out[f"grad.{name}"] = npy(p.grad)
    out["grad.input"] = npy(x.grad)
    out["grad.h0"] = npy(h0.grad)
    if lstm:
        out["grad.c0"] = npy(c0.grad)
    return out


def save_atomic(path: Path, arrays: dict) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez_compressed(f, **arrays)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder")
    args = ap.parse_args(argv)
    if torch is None:
        print("make_golden.py: PyTorch is not importable; install torch to regenerate "
              "the golden files", file=sys.stderr)
        return 2

    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    total = 0
    for case in case_list():
        for dtype in DTYPES:
            path = args.out / f"{case['stem']}_{dtype}.npz"
            save_atomic(path, run_case(case, dtype))
            total += path.stat().st_size
            print(path, file=sys.stderr)
    print(f"{2 * len(case_list())} files, {total / 1024:.1f} KiB in {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
