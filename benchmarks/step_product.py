"""The per-step recurrent product alone: rnnlab's register-blocked tiles vs OpenBLAS, one thread.

Every step of a recurrent layer multiplies the batch's rows (or one thread's share) by the same
weight matrix: forward (B, H) @ W_hh^T (H, G*H), backward (B, G*H) @ W_hh (G*H, H). This times
``rnnlab.kernels._gemm.matmul_into`` over weights packed once (what the kernels do) against
``np.dot`` through numba (OpenBLAS, what they did before), each called in a compiled loop so no
Python sits between calls, interleaved, best of 7 rounds.

    python benchmarks/step_product.py
"""

from __future__ import annotations

import time

import numba
import numpy as np
from threadpoolctl import threadpool_limits

from rnnlab.kernels._gemm import matmul_into, pack_panels

# (rows, K, N): LSTM forward and backward products at the bench's hidden sizes, per thread
SHAPES = [(1, 16, 64), (1, 64, 256), (1, 256, 64), (2, 64, 256), (3, 64, 256), (8, 64, 256), (8, 256, 64),
          (16, 128, 512), (16, 512, 128), (16, 256, 1024), (16, 1024, 256), (32, 512, 2048), (32, 2048, 512)]


@numba.njit
def _tiles(a, wp, out, n):
    for _ in range(n):
        matmul_into(a, wp, out)


@numba.njit
def _blas(a, w, out, n):
    for _ in range(n):
        np.dot(a, w, out)


def main() -> None:
    rng = np.random.default_rng(0)
    print("| rows | K | N | tiles us | tiles GFMA/s | OpenBLAS us | OpenBLAS GFMA/s | OpenBLAS / tiles |")
    print("|---|---|---|---|---|---|---|---|")
    with threadpool_limits(1):
        for B, K, N in SHAPES:
            a = rng.standard_normal((B, K)).astype(np.float32)
            w = rng.standard_normal((K, N)).astype(np.float32)
            wp = pack_panels(w)
            out_tiles, out_blas = np.empty((B, N), np.float32), np.empty((B, N), np.float32)
            _tiles(a, wp, out_tiles, 1)
            _blas(a, w, out_blas, 1)
            assert np.allclose(out_tiles, out_blas, rtol=1e-4, atol=1e-5 * K)  # float32 sums of K terms
            calls = max(1, int(2e7 / (B * K * N)))
            best = {"tiles": np.inf, "blas": np.inf}
            for _ in range(7):
                for name, run in (("tiles", lambda: _tiles(a, wp, out_tiles, calls)),
                                  ("blas", lambda: _blas(a, w, out_blas, calls))):
                    start = time.perf_counter()
                    run()
                    best[name] = min(best[name], (time.perf_counter() - start) / calls)
            fma = B * K * N
            print(f"| {B} | {K} | {N} | {best['tiles'] * 1e6:.2f} | {fma / best['tiles'] / 1e9:.1f} | "
                  f"{best['blas'] * 1e6:.2f} | {fma / best['blas'] / 1e9:.1f} | {best['blas'] / best['tiles']:.2f} |")


if __name__ == "__main__":
    main()
