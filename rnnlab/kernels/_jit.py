"""The one place that holds numba's flags for every kernel, its disk cache and compile notices.

Kernels are compiled lazily (no eager signatures: those would compile at import) and cached to
disk. ``fastmath`` is a chosen subset: the full set implies no-NaN/no-Inf, which would let LLVM
fold away non-finite checks.

numba's ``cache=True`` keys a kernel's cache on its own file only, so an edit to a helper module
(``_math.py``, say) would leave stale machine code in use. The cache directory is therefore keyed
on a hash of every kernel source file: ``$RNNLAB_CACHE_DIR`` (default ``~/.cache/rnnlab``)
``/numba-<hash>``. Set ``RNNLAB_NO_CACHE=1`` to compile in memory only, as happens where that folder
cannot be written. A new folder's first use removes the folders of other sources unused for
:data:`CACHE_KEEP_DAYS` days.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import numba
from numba.core import config as numba_config
from numba.core import event
from numba.extending import register_jitable

#: fastmath flags: reassociation and contraction let reductions and FMAs vectorise; no 'nnan'/'ninf'.
FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}

CACHE = os.environ.get("RNNLAB_NO_CACHE", "").lower() not in ("1", "true", "yes")

_OPTIONS = dict(
    nogil=True,  # a training thread runs while the TUI stays responsive
    cache=CACHE,
    fastmath=FASTMATH,
    error_model="numpy",  # needed for vectorised division
    boundscheck=False,
)

_PUBLIC_KERNELS: set[Callable] = set()  # kernels decorated with jit(), named in compile notices
_KERNEL_DIR = Path(__file__).resolve().parent


def _source_hash() -> str:
    digest = hashlib.sha256()
    for path in sorted(_KERNEL_DIR.rglob("*.py")):
        if path.relative_to(_KERNEL_DIR).parts[0] == "cuda":  # GPU twins: not in numba's CPU cache
            continue
        digest.update(path.relative_to(_KERNEL_DIR).as_posix().encode())
        digest.update(path.read_bytes())
    digest.update(numba.__version__.encode())
    return digest.hexdigest()[:16]


def cache_dir() -> Path:
    """Where compiled kernels are cached: one folder per version of the kernel sources."""
    root = os.environ.get("RNNLAB_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "rnnlab"
    )
    # absolute: numba resolves a relative folder at each compile, against the working directory then
    return Path(root).expanduser().absolute() / f"numba-{_source_hash()}"


#: A cache folder of other kernel sources (another rnnlab version, an edit of a kernel) not used
#: for this many days is removed when a new one is first made: each took 20-40 MB, and nothing else
#: removed them.
CACHE_KEEP_DAYS = 30
_LAST_USED = ".last-used"  # touched in the cache folder by every process that uses it


def _last_used(folder: Path) -> float:
    """When ``folder`` (a ``numba-<hash>`` cache) was last used: its marker's time, else its newest file's."""
    try:
        return (folder / _LAST_USED).stat().st_mtime
    except OSError:
        return max((f.stat().st_mtime for f in folder.iterdir()), default=folder.stat().st_mtime)


def use_cache_dir(folder: Path, now: float | None = None) -> None:
    """Mark ``folder`` used; where it is new, remove its sibling ``numba-*`` folders unused for
    :data:`CACHE_KEEP_DAYS`. Never raises: a cache is an optimisation, and a read-only home or a
    folder another process removes meanwhile must not stop rnnlab."""
    import shutil
    import time

    now = time.time() if now is None else now
    try:
        fresh = not folder.exists()
        folder.mkdir(parents=True, exist_ok=True)
        (folder / _LAST_USED).touch()  # its time now, made or not
        if not fresh:
            return
        for sibling in folder.parent.glob("numba-*"):
            with contextlib.suppress(OSError):
                if sibling != folder and sibling.is_dir() and now - _last_used(sibling) > CACHE_KEEP_DAYS * 86400:
                    shutil.rmtree(sibling, ignore_errors=True)
    except OSError:
        pass


def writable(folder: Path) -> bool:
    """Whether a file can be made in ``folder`` (made if need be), as numba's cache locator tests it."""
    import tempfile

    try:
        folder.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=folder).close()
        return True
    except OSError:
        return False


#: Why kernels are not cached ("" where they are): said in the compile notices.
NOT_CACHED_WHY = "" if CACHE else "RNNLAB_NO_CACHE"
_CACHE_DIR = str(cache_dir()) if CACHE else None
if _CACHE_DIR is not None:
    use_cache_dir(Path(_CACHE_DIR))
    if not writable(Path(_CACHE_DIR)):
        # compiled in memory, as RNNLAB_NO_CACHE=1: numba would fall back to rnnlab's own __pycache__
        # (keyed on each file alone: stale machine code after an edit of a helper module), and where
        # that cannot be written either, refuse to compile at all (a read-only home and install)
        NOT_CACHED_WHY = f"{_CACHE_DIR} cannot be written"
        CACHE, _CACHE_DIR = False, None
        _OPTIONS["cache"] = False


@contextlib.contextmanager
def _cache_dir_for_decoration() -> Iterator[None]:
    # numba picks the cache locator when the dispatcher is created, from config.CACHE_DIR; set it
    # only for our own kernels and restore it, so other numba users in the process are unaffected.
    saved = numba_config.CACHE_DIR
    numba_config.CACHE_DIR = _CACHE_DIR or saved
    try:
        yield
    finally:
        numba_config.CACHE_DIR = saved


def jit(func=None, **overrides):
    """``numba.njit`` with rnnlab's flags; usable bare (``@jit``) or with overrides (``@jit(cache=False)``)."""
    options = {**_OPTIONS, **overrides}

    def decorate(f):
        _PUBLIC_KERNELS.add(f)
        with _cache_dir_for_decoration():
            return numba.njit(**options)(f)

    return decorate if func is None else decorate(func)


#: options for helpers compiled into the kernels that call them (no dispatcher, no cache of their own)
HELPER_OPTIONS = dict(fastmath=FASTMATH, error_model="numpy")


def helper(func=None, **overrides):
    """A jitable helper, compiled as part of each kernel that calls it (``numba.extending.register_jitable``)."""
    options = {**HELPER_OPTIONS, **overrides}
    if func is None:
        return lambda f: register_jitable(**options)(f)
    return register_jitable(**options)(func)


class _CompileListener(event.Listener):
    def __init__(self, callback: Callable[[str], None]) -> None:
        self.callback = callback
        self._said: set[tuple[str, str]] = set()  # (kernel, dtypes) already named

    def on_start(self, ev: event.Event) -> None:
        dispatcher = ev.data["dispatcher"]
        func = dispatcher.py_func
        if func not in _PUBLIC_KERNELS:  # inlined helpers compile as part of a kernel
            return
        dtypes = ", ".join(sorted({str(arg.dtype) for arg in ev.data["args"] if hasattr(arg, "dtype")})) or "scalar"
        # the same dtypes again: other array layouts or argument types, a compilation of its own
        again = " again, for other argument types" if (func.__name__, dtypes) in self._said else ""
        self._said.add((func.__name__, dtypes))
        cached = "cached after the first run" if CACHE else f"not cached ({NOT_CACHED_WHY})"
        self.callback(f"compiling {func.__name__} ({dtypes}){again}; {cached}")

    def on_end(self, ev: event.Event) -> None:
        pass


@contextlib.contextmanager
def compile_notices(callback: Callable[[str], None]) -> Iterator[None]:
    """Call ``callback(message)`` whenever an rnnlab kernel is compiled (not when loaded from cache)."""
    with event.install_listener("numba:compile", _CompileListener(callback)):
        yield
