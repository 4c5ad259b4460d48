"""Is a CUDA GPU usable from here, and if not, why: the one place that decides it.

Nothing here imports ``numba.cuda`` until a function is called, so importing this module (or
``rnnlab.kernels.cuda``) costs nothing on a machine without a GPU. The reasons read as one line:

- ``numba-cuda is not installed (pip install -e '.[cuda]')``: the NVIDIA-maintained CUDA target
  is missing (numba's own deprecated built-in ``numba.cuda`` is not used);
- ``no CUDA device found (...)``: no NVIDIA driver library, or a driver that sees no GPU;
- ``CUDA driver error: ...``: a driver that fails to initialise (version mismatch, busy device);
- ``CUDA toolkit error: ...``: a GPU, but no NVVM/NVRTC to compile kernels for it (the
  ``numba-cuda[cu12]``/``[cu13]`` extras, or a system CUDA toolkit, provide them);
- ``numba-cuda cannot compile kernels with these versions: ...``: the compiler is there but
  numba-cuda fails inside (seen on an H200 image whose numba-cuda 0.30.4 calls ``numpy.row_stack``,
  gone in numpy 2.5: the ``[cuda]`` extra pins numpy < 2.5, and the message says so); the message
  names the three versions.

With ``NUMBA_ENABLE_CUDASIM=1`` set before numba is imported, numba-cuda's simulator runs the
kernels on the CPU (slowly): :func:`cuda_available` then says so and returns True, and
:func:`require_cuda` repairs the simulator's shared memory and speeds its launches up (it sets a
short switch interval while a simulated kernel runs: :mod:`._simulator`).
"""

from __future__ import annotations

import importlib.util
import re
from types import ModuleType

from ...errors import UserError

NOT_INSTALLED = "numba-cuda is not installed (pip install -e '.[cuda]')"
NO_DEVICE = "no CUDA device found"
DRIVER_ERROR = "CUDA driver error"
TOOLKIT_ERROR = "CUDA toolkit error"
INCOMPATIBLE = "numba-cuda cannot compile kernels with these versions"
SIMULATOR = "CUDA simulator (NUMBA_ENABLE_CUDASIM=1): kernels run on the CPU, slowly"


class CudaUnavailableError(UserError):
    """``device="cuda"`` was asked for, but no usable GPU is there; the message says why."""


def _one_line(exc: BaseException) -> str:
    text = re.sub(r"\s+", " ", str(exc)).strip(" :")
    return text or type(exc).__name__


def numba_cuda_installed() -> bool:
    """Whether the numba-cuda package (which provides ``numba.cuda``) is installed; imports nothing."""
    return importlib.util.find_spec("numba_cuda") is not None


def simulator_enabled() -> bool:
    """Whether numba runs CUDA kernels in its simulator (``NUMBA_ENABLE_CUDASIM=1`` at numba's import)."""
    from numba.core import config

    return bool(config.ENABLE_CUDASIM)


def cuda_available() -> tuple[bool, str]:
    """``(True, what runs the kernels)`` or ``(False, why not)``; the reason is one line.

    Imports ``numba.cuda`` (and so initialises the CUDA driver) only when numba-cuda is installed.
    """
    if not numba_cuda_installed():
        return False, NOT_INSTALLED
    try:
        from numba import cuda
    except Exception as exc:  # a broken install: missing cuda-bindings, an ABI mismatch, ...
        return False, f"numba-cuda failed to import: {_one_line(exc)}"
    if simulator_enabled():
        return True, SIMULATOR
    try:
        devices = cuda.list_devices()
        count = len(devices)
    except Exception as exc:  # CudaSupportError (an ImportError), CudaDriverError, ...
        message = _one_line(exc).removeprefix("Error at driver init").strip(" :")
        if "cannot be found" in message or "NO_DEVICE" in message:
            return False, f"{NO_DEVICE} ({message})"
        return False, f"{DRIVER_ERROR}: {message}"
    if count == 0:
        return False, NO_DEVICE
    try:
        name = devices[0].name
        name = name.decode() if isinstance(name, bytes) else str(name)
        cc = tuple(devices[0].compute_capability)
    except Exception:
        name, cc = "device 0", None
    problem = _toolkit_problem(cuda, cc)
    if problem:
        return False, problem
    return True, f"CUDA device 0: {name}"


_TOOLKIT_OK: set = set()  # compute capabilities a trivial kernel compiled for, in this process


def _toolkit_problem(cuda: ModuleType, cc) -> str | None:
    """Why a kernel cannot be compiled for compute capability ``cc``, as the one-line reason, or
    None. A trivial kernel is compiled once per process (~0.1-1 s)."""
    if cc is None or cc in _TOOLKIT_OK:
        return None
    from numba import types

    try:
        cuda.compile_ptx(lambda a: None, (types.float32[::1],), cc=cc)
    except (AttributeError, NameError, TypeError) as exc:  # numba-cuda broken by a numpy/numba it doesn't know
        fix = "; numpy 2.4 works: pip install 'numpy<2.5'" if "row_stack" in str(exc) else ""
        return f"{INCOMPATIBLE}: {_one_line(exc)} ({_versions()}){fix}"
    except Exception as exc:  # DynamicLibNotFoundError (a RuntimeError), NvvmSupportError, ...: NVVM/NVRTC
        return f"{TOOLKIT_ERROR}: {_one_line(exc)} (pip install 'numba-cuda[cu12]' or 'numba-cuda[cu13]')"
    _TOOLKIT_OK.add(cc)
    return None


def _versions() -> str:
    """'numba-cuda X, numba Y, numpy Z': what a version mismatch is between."""
    from importlib.metadata import PackageNotFoundError, version

    found = []
    for dist in ("numba-cuda", "numba", "numpy"):
        try:
            found.append(f"{dist} {version(dist)}")
        except PackageNotFoundError:
            found.append(f"{dist} not installed")
    return ", ".join(found)


def require_cuda() -> ModuleType:
    """Return the ``numba.cuda`` module, or raise :class:`CudaUnavailableError` naming why it can't be used."""
    ok, reason = cuda_available()
    if not ok:
        raise CudaUnavailableError(f"device 'cuda' is not available: {reason}")
    from numba import cuda

    if simulator_enabled():  # its shared arrays race, its barriers crawl: see _simulator
        from ._simulator import repair_simulator

        repair_simulator()
    return cuda
