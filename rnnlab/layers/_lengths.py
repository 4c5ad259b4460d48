"""Sequences of different lengths in one padded batch: what torch's packed sequences compute.

A recurrent layer given ``lengths`` runs each sequence b over its first ``lengths[b]`` steps only:
its final state is the state after its own last step, its outputs beyond it are zeros, and the
reverse direction of a bidirectional layer starts at its own last step (torch's
``pack_padded_sequence`` -> layer -> ``pad_packed_sequence``).

The kernels run whole (T, B) blocks, and need not do less: a step never reads a later one, so
running a sequence past its end leaves its first ``lengths[b]`` steps as they were. Each direction
runs in one call over the padded batch (the reverse direction over each sequence reversed within
its own length, which starts every sequence at step 0 as the forward direction does); the final
state is read at each sequence's last step and the kernels' outputs beyond it are zeroed.

Backward runs in one call too, given no gradient past any sequence's end: dy zeroed there, and a
sequence's dh_n added to dy at its last step (where its h_n was read: what the recurrence would
carry into that step is zero). The zeroed outputs make every padded step's share of the weights'
gradients exactly zero. An LSTM's dc_n has no such entry point (dy reaches c only through the
output gate), so a nonzero dc_n on a sequence that ends early takes the general path: the time
axis cut where sequences end, each segment's kernel call over the sequences still running.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._params import as_array


def check_lengths(lengths: Any, T: int, B: int, what: str = "lengths") -> np.ndarray:
    """``lengths`` as (B,) int64 with every 1 <= length <= T (None: all T); ``what`` names the
    argument in the messages (Seq2Seq's ``src_lengths``)."""
    if lengths is None:
        return np.full(B, T, dtype=np.int64)
    arr = as_array(what, lengths)
    if arr.shape != (B,):
        raise ValueError(f"{what} has shape {arr.shape}, expected ({B},): one length per sequence")
    if arr.dtype.kind not in "iu":
        raise ValueError(f"{what} must be integers, got dtype {arr.dtype}")
    bad = np.flatnonzero((arr < 1) | (arr > T))
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"{what}[{i}] = {int(arr[i])} is out of range: every length must be between 1 and T={T}")
    return arr.astype(np.int64)


class Lengths:
    """A batch's lengths and what the layers do with them (see the module docstring)."""

    def __init__(self, lengths: np.ndarray, steps: int) -> None:
        self.lengths = lengths
        self.steps = steps
        self.batch = np.arange(len(lengths))
        t = np.arange(steps)[:, None]
        self.padding = t >= lengths  # (T, B): the steps past each sequence's end
        self.short = lengths < steps  # the sequences that end early
        # (T, B, 1) time indices of the reversal within each length: position t of sequence b reads
        # position lengths[b] - 1 - t; the padding reads itself
        self._reversal = np.where(self.padding, t, lengths - 1 - t)[:, :, None]

    def reverse(self, sequences: np.ndarray) -> np.ndarray:
        """Each sequence of ``sequences`` (T, B, F) reversed within its own length (a copy)."""
        return np.take_along_axis(sequences, self._reversal, axis=0)

    def last(self, states: np.ndarray) -> np.ndarray:
        """Each sequence's state after its own last step, from a kernel's states (T+1, B, H)."""
        return states[self.lengths, self.batch]

    def zero_padding(self, saved: tuple[np.ndarray, ...]) -> None:
        """Zero a forward's kernel outputs past each sequence's end, in place: states (T+1, B, H)
        from row lengths[b] + 1, per-step arrays (T, B, H) and gates (G, T, B, H) from step lengths[b]."""
        T = self.steps
        for a in saved:
            if a.ndim == 4:  # gates first: G may equal T + 1
                a[:, self.padding] = 0
            elif a.shape[0] == T + 1:
                a[1:][self.padding] = 0
            else:
                a[self.padding] = 0

    def gradient_in(self, d_seq: np.ndarray, dh_n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """dy for one backward call over the padded batch, and the dh_n to hand it: dy zeroed past
        each sequence's end, an early-ending sequence's dh_n added at its last step instead."""
        dy = np.where(self.padding[:, :, None], 0, d_seq).astype(d_seq.dtype)
        dy[self.lengths[self.short] - 1, self.batch[self.short]] += dh_n[self.short]
        dh_last = dh_n.copy()
        dh_last[self.short] = 0
        return dy, dh_last

    def segments(self, every: int = 0) -> list[tuple[int, int, np.ndarray]]:
        """``(t0, t1, running)``: over steps t0..t1-1 the sequences ``running`` (indices) run.

        ``every`` > 0 also cuts the time axis at its multiples (truncated BPTT's cuts), so that no
        segment spans one: the kernels count truncate's steps from a segment's start.
        """
        longest = int(self.lengths.max())
        cuts = {0, *self.lengths.tolist()}
        if every:
            cuts.update(range(every, longest, every))
        cuts = sorted(cuts)
        return [(t0, t1, np.flatnonzero(self.lengths > t0)) for t0, t1 in zip(cuts, cuts[1:])]


def segment_of(saved: tuple[np.ndarray, ...], t0: int, t1: int, running: np.ndarray) -> tuple[np.ndarray, ...]:
    """The part of a forward's kernel outputs that a segment covers, as the arrays the kernels take:
    states (T+1, B, H) rows t0..t1 (row t0 the segment's initial state), per-step arrays (T, B, H)
    and gates (G, T, B, H) steps t0..t1-1, of the sequences ``running``."""
    T = saved[0].shape[0] - 1  # hs
    return tuple(np.ascontiguousarray(a[:, t0:t1][:, :, running] if a.ndim == 4 else  # gates first
                                      a[t0 : t1 + 1, running] if a.shape[0] == T + 1 else a[t0:t1, running])
                 for a in saved)
