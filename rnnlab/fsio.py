"""Files on disk, as every part of rnnlab reads and writes them: atomic writes (a reader sees the
old file or the new one, never half of one) and looking at a path, each failure one line naming
the path (:mod:`rnnlab.errors`)."""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from .errors import DataError, TargetExistsError, UserError, WriteFailed


def stat_or_none(path: str | os.PathLike, error: type[UserError] = DataError) -> os.stat_result | None:
    """``path``'s ``os.stat``, or None if nothing is there; ``error`` (``cannot read PATH: reason``)
    where the OS will not say, as for a directory above it that may not be looked in, which
    ``Path.exists`` and ``Path.is_dir`` raise as a PermissionError."""
    try:
        return os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        raise error(f"cannot read {path}: {exc.strerror or exc}") from None
    except ValueError:  # a NUL in the name: no file can have it
        return None


def file_above(path: str | os.PathLike) -> Path | None:
    """The nearest folder of ``path`` that is there, where it is a file, not a directory (``good.toml``
    of ``good.toml/x.npz``): what a write under it names ("no such directory ... good.toml" and the OS's
    bare "Not a directory" said neither that it is there nor what it is). None where it is a directory,
    or the OS will not say."""
    for parent in Path(path).parents:
        try:
            mode = os.stat(parent).st_mode
        except (FileNotFoundError, NotADirectoryError):  # (not there, or a file above it: look further up)
            continue
        except (OSError, ValueError):
            return None
        return None if stat.S_ISDIR(mode) else parent
    return None


def not_a_directory(path: str | os.PathLike) -> str | None:
    """"good.toml is a file, not a directory" where :func:`file_above` finds one for ``path``, else None."""
    above = file_above(path)
    return None if above is None else f"{above} is a file, not a directory"


def os_error_reason(path: str | os.PathLike, exc: OSError) -> str:
    """Why ``exc`` failed on ``path``, in words: the OS's, or where a file stands in the path, which one
    ("good.toml is a file, not a directory" for the OS's bare "Not a directory")."""
    return exc.errno == errno.ENOTDIR and not_a_directory(path) or exc.strerror or str(exc)


#: Why a write fails when the path the user chose is the problem (bad input, exit 2); any other
#: reason (a full disk, a quota, an I/O error) is a failure of the system (exit 1).
INPUT_ERRNOS = frozenset({errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.EACCES, errno.EPERM, errno.EROFS,
                           errno.ENAMETOOLONG, errno.ELOOP, errno.EEXIST})
#: The write failures that more room on the disk (or under the quota) mends.
NO_ROOM_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


CREATE_MODE = 0o666 & ~_umask()  # read once at import: os.umask can only be read by setting it


@contextlib.contextmanager
def atomic_file(path: Path, *, replace: bool = True) -> Iterator[BinaryIO]:
    """A binary handle whose contents replace ``path`` only once fully written and synced, so
    readers see the old file or the new one, never half of one. An OSError leaves as one line
    naming ``path`` and the reason (:func:`write_error`: a :class:`UserError` for no such directory
    or no permission, a :class:`WriteFailed` for a full disk or an I/O error).
    ``replace=False``: a :class:`TargetExistsError` if ``path`` exists when the file is put in place
    (checked and done in one step, so a file created meanwhile is not replaced either)."""
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise write_error(path, exc) from None
    try:
        os.chmod(tmp, CREATE_MODE)  # mkstemp makes it 0600; a saved file gets what open() would give
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        if replace:
            os.replace(tmp, path)
        else:
            _put_new(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):  # (a directory made read-only meanwhile: the write's error is said)
            Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise write_error(path, exc) from None
        raise


def _put_new(tmp: str, path: Path) -> None:
    """Give the finished ``tmp`` the name ``path`` unless that exists: a hard link fails on an
    existing name in the same step that creates it."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise TargetExistsError(path) from None
    except OSError:  # a file system without hard links: check, then rename
        if path.exists() or path.is_symlink():
            raise TargetExistsError(path) from None
        os.replace(tmp, path)
    else:
        os.unlink(tmp)


def write_error(path: Path, exc: OSError) -> UserError | WriteFailed:
    """A failed write of ``path`` as one line: bad input (UserError, exit 2) when the path itself is
    the problem, else a failure (WriteFailed, exit 1): a full disk is not the user's input."""
    if exc.errno in INPUT_ERRNOS:
        return UserError(f"cannot write {path}: {os_error_reason(path, exc)}")
    return WriteFailed(exc.errno, exc.strerror or str(exc), str(path))


def atomic_write_bytes(path: Path, data: bytes) -> None:
    with atomic_file(path) as handle:
        handle.write(data)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))
