"""A kernel's result must not depend on where the allocator put its arrays.

The kernels compile with fastmath's reassociation, so LLVM vectorises reductions. When a loop
both stores to an array and accumulates a scalar, LLVM guards the vector loop with a run-time
address check and falls back to the scalar loop (another summation order) when an input starts
just before the stored array, although the two don't overlap. Sums then changed with the heap
layout: a resumed self-attention training run differed from a straight one in ~8% of processes
(tests/test_experiments.py::test_attention_on_a_text_stream_resumes_bit_for_bit_with_nothing_carried).
The arrays that decide it are often allocated inside the kernels, out of a test's reach, so the
rule is checked on the source: no innermost loop of a kernel both stores and reduces; reduce
in a loop of its own (``rnnlab.kernels._common.sum_of``).
"""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
from numba import njit

from rnnlab.kernels._common import sum_of
from rnnlab.kernels._jit import FASTMATH

KERNELS = Path(__file__).resolve().parent.parent / "rnnlab" / "kernels"


def _accumulated_names(loop: ast.AST) -> set[str]:
    """Scalars the loop accumulates: ``x += ...`` or ``x = x + ...`` on a plain name."""
    names = set()
    for node in ast.walk(loop):
        if isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name = node.targets[0].id
            if any(isinstance(n, ast.Name) and n.id == name for n in ast.walk(node.value)):
                names.add(name)
    return names


def _stores_to_an_array(loop: ast.AST) -> bool:
    for node in ast.walk(loop):
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AugAssign):
            targets = [node.target]
        else:
            continue
        if any(isinstance(t, ast.Subscript) for t in targets):
            return True
    return False


def _store_and_reduce_loops(source: str) -> list[int]:
    lines = []
    for loop in ast.walk(ast.parse(source)):
        if not isinstance(loop, (ast.For, ast.While)):
            continue
        if any(isinstance(n, (ast.For, ast.While)) and n is not loop for n in ast.walk(loop)):
            continue  # only innermost loops are vectorised
        if _accumulated_names(loop) and _stores_to_an_array(loop):
            lines.append(loop.lineno)
    return lines


def test_no_kernel_loop_both_stores_and_reduces():
    found = {path.name: lines for path in sorted(KERNELS.glob("*.py"))
             if (lines := _store_and_reduce_loops(path.read_text()))}
    assert found == {}, f"loops that store and reduce (split them, see sum_of): {found}"


def test_the_check_sees_the_pattern_it_forbids():
    """The pattern as it stood in layer_norm_backward before the fix, and the fixed form."""
    before = ("for j in range(d):\n"
              "    g[j] = dy[j] * gamma[j]\n"
              "    mean_g += g[j]\n"
              "    mean_gh = mean_gh + g[j] * hat[j]\n")
    after = ("for j in range(d):\n"
             "    g[j] = dy[j] * gamma[j]\n"
             "for j in range(d):\n"
             "    mean_g += g[j]\n")
    assert _store_and_reduce_loops(before) == [1]
    assert _store_and_reduce_loops(after) == []


def test_the_fallback_is_real_and_sum_of_avoids_it():
    """What the rule prevents, shown on numba itself: one loop storing g and summing it gives
    two different float32 sums for the same values, depending only on where the input sits;
    storing first and summing with sum_of gives one."""

    @njit(fastmath=FASTMATH)
    def store_and_sum(g, a):
        total = np.float32(0.0)
        for j in range(a.shape[0]):
            g[j] = a[j] * np.float32(1.5)
            total += g[j]
        return total

    @njit(fastmath=FASTMATH)
    def store_then_sum(g, a):
        for j in range(a.shape[0]):
            g[j] = a[j] * np.float32(1.5)
        return sum_of(g, a.shape[0])

    n = 24
    values = np.random.default_rng(3).standard_normal(n).astype(np.float32)
    sums = {store_and_sum: set(), store_then_sum: set()}
    for gap in [*range(-64, -n + 1), *range(n, 64)]:  # the input starts `gap` elements after g
        for func, seen in sums.items():
            buf = np.zeros(400, np.float32)
            g, a = buf[200:200 + n], buf[200 + gap:200 + gap + n]
            a[:] = values
            seen.add(float(func(g, a)))
    # LLVM 20 (numba 0.62 on) vectorises the first loop behind a runtime alias check, with a scalar
    # fallback: two sums. LLVM 14-15 (numba 0.60-0.61, which rnnlab supports) keep it scalar: one.
    from llvmlite.binding import llvm_version_info

    assert len(sums[store_and_sum]) == (2 if llvm_version_info >= (20,) else 1)
    assert len(sums[store_then_sum]) == 1
