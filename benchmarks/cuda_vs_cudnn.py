"""rnnlab's CUDA kernels against PyTorch's cuDNN on the same GPU: ``rnnlab bench --device cuda``
with every option of :mod:`rnnlab.bench_cuda` (``--compare-launch``, ``--allow-tf32``, ...).

    python benchmarks/cuda_vs_cudnn.py --help
"""

import sys

from rnnlab.bench_cuda import main

if __name__ == "__main__":
    sys.exit(main())
