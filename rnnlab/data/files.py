"""Loaders for the user's own data files: text for character models, numeric series for forecasting.

Every failure is one :class:`~rnnlab.errors.DataError` whose message starts with the file's path and
says what is wrong (line and column, byte offset, ...), never a traceback. Nothing loaded executes
code: ``.npy`` files are read with ``allow_pickle=False``.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from ..errors import DataError, UserError

#: Packaged example files; relative paths that are not found next to the spec are looked up here.
SAMPLE_DIR = Path(__file__).resolve().parent.parent / "sample_data"

#: File types each loader accepts (lower-case suffixes).
TEXT_SUFFIXES = (".txt",)
SERIES_SUFFIXES = (".csv", ".npy")
#: The largest magnitude a float32 model reads as a number (beyond it: infinity).
FLOAT32_MAX = float(np.finfo(np.float32).max)

#: A character model's vocabulary is at most this many distinct characters.
MAX_VOCAB = 256


def user_path(value: str | Path) -> Path:
    """``value`` as a Path with a leading ``~`` or ``~user`` expanded; a UserError (not Python's
    RuntimeError) when that home directory is unknown."""
    try:
        return Path(value).expanduser()
    except RuntimeError:  # "Could not determine home directory."
        home = Path(value).parts[0]
        who = "this user (HOME is not set)" if home == "~" else f"{home} (no such user)"
        raise UserError(f"{value}: no home directory for {who}") from None


def resolve_path(value: str | Path, base_dir: str | Path | None = None) -> Path:
    """Absolute path for a path given in a spec.

    Relative paths resolve against ``base_dir`` (the spec file's directory; the current directory
    when None) and, when nothing exists there, against the packaged ``rnnlab/sample_data/`` so that
    presets can say ``path = "tiny-shakespeare.txt"``. A path found nowhere resolves against
    ``base_dir`` so the loader's "no such file" message names where it was expected.
    """
    path = user_path(value)
    if path.is_absolute():
        return path
    local = (Path(base_dir) if base_dir is not None else Path.cwd()).resolve() / path
    if local.exists():
        return local
    sample = SAMPLE_DIR / path
    if sample.exists():
        return sample
    return local


def _check_file(path: Path, suffixes: tuple[str, ...], what: str) -> None:
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if path.is_dir():
        raise DataError(f"{path}: is a directory, expected a {' or '.join(suffixes)} file")
    if path.suffix.lower() not in suffixes:
        got = f"'{path.suffix}'" if path.suffix else "no extension"
        raise DataError(f"{path}: unsupported file type ({got}); {what} reads {' or '.join(suffixes)} files")


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror or e})") from None


def _looks_like_utf16(raw: bytes) -> bool:
    """UTF-16 (Windows' "Unicode"), the usual other encoding of text: a byte-order mark, or, without
    one, the NUL beside each ASCII character (every one in English, the spaces and punctuation in
    Russian or Chinese), all at even or all at odd bytes: a binary file, an executable or an
    archive, has its NULs at both or none."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return True
    head = raw[:4096]
    pairs = len(head) // 2
    even, odd = head[0:2 * pairs:2].count(0), head[1:2 * pairs:2].count(0)
    return pairs >= 2 and max(even, odd) >= max(2, 0.05 * pairs) and min(even, odd) <= 0.02 * pairs


def _decode_utf8(path: Path, raw: bytes) -> str:
    hint = "; it looks like UTF-16: save it as UTF-8" if _looks_like_utf16(raw) else ""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not valid UTF-8 (byte {e.start}: 0x{raw[e.start]:02x}){hint}") from None
    if "\x00" in text:
        raise DataError(f"{path}: holds NUL bytes (the first at byte {raw.index(0)}), which text files do not{hint}")
    # Drop the byte-order mark some editors write (not part of the text; decoding with utf-8-sig
    # would shift the byte offsets reported above), and read Windows line ends as '\n' so '\r'
    # does not enter the vocabulary.
    return text.removeprefix("\ufeff").replace("\r\n", "\n")


def load_text(path: str | Path, min_chars: int = 1) -> str:
    """The UTF-8 text of a ``.txt`` file (BOM dropped, ``\\r\\n`` read as ``\\n``).

    Raises DataError when the file is missing, a directory, not ``.txt``, not UTF-8 (naming the
    byte offset), empty, shorter than ``min_chars`` characters, or has more than
    :data:`MAX_VOCAB` distinct characters.
    """
    path = Path(path)
    _check_file(path, TEXT_SUFFIXES, "a text task")
    text = _decode_utf8(path, _read_bytes(path))
    if not text:
        raise DataError(f"{path}: file is empty")
    if len(text) < min_chars:
        characters = f"{len(text)} character{'' if len(text) == 1 else 's'}"
        raise DataError(f"{path}: has {characters}, needs at least {min_chars}")
    distinct = len(set(text))
    if distinct > MAX_VOCAB:
        raise DataError(f"{path}: has {distinct} distinct characters, at most {MAX_VOCAB} are supported")
    return text


def load_series(path: str | Path, min_rows: int = 1) -> np.ndarray:
    """A numeric series ``(N, F)`` float64 from a ``.csv`` or ``.npy`` file: rows are time steps.

    CSV: comma-separated (tab or semicolon are detected from the first line), an optional one-line
    header (a first row that is not all numbers), blank lines and comment lines (``#`` first)
    skipped. NPY: a 1-D (one feature) or 2-D real numeric array, read without pickle. Raises
    DataError for a missing file, a directory, another extension, an empty file, ragged rows,
    non-numeric cells, NaN or infinity, or fewer than ``min_rows`` rows; each message names the
    line or row and the column.
    """
    return load_named_series(path, min_rows)[0]


def load_named_series(path: str | Path, min_rows: int = 1) -> tuple[np.ndarray, tuple[str, ...] | None]:
    """:func:`load_series`, with the names a CSV's header gives its columns (None: no header, or
    an ``.npy``; a column the header leaves unnamed is ``#k``, from 1)."""
    path = Path(path)
    _check_file(path, SERIES_SUFFIXES, "a series task")
    data, header = (_load_npy(path), None) if path.suffix.lower() == ".npy" else _load_csv(path)
    names = None if header is None else tuple(name or f"#{k + 1}" for k, name in enumerate(header))
    n, f = data.shape
    if n < min_rows:
        hint = " (rows are time steps: is it transposed?)" if f >= min_rows else ""
        raise DataError(f"{path}: has {n} rows, needs at least {min_rows}{hint}")
    return data, names


def _load_csv(path: Path) -> tuple[np.ndarray, list[str] | None]:
    lines = _decode_utf8(path, _read_bytes(path)).split("\n")
    numbered = [(i + 1, line) for i, line in enumerate(lines) if line.strip() and not line.lstrip().startswith("#")]
    if not numbered:
        comments = any(line.lstrip().startswith("#") for line in lines)
        what = "has no data rows (only blank and # comment lines)" if comments else "file is empty"
        raise DataError(f"{path}: {what}")
    first = numbered[0][1]
    delimiter = next((d for d in (",", "\t", ";") if d in first), ",")

    def split(line: str) -> list[str]:
        return [c.strip() for c in next(csv.reader([line], delimiter=delimiter))]

    rows = [(lineno, split(line)) for lineno, line in numbered]
    header: list[str] | None = None
    header_line = None
    if not all(is_number(c) for c in rows[0][1]):
        header, header_line = rows[0][1], rows[0][0]
        rows = rows[1:]
        if not rows:
            raise DataError(f"{path}: has a header line but no data rows")
    else:  # numpy's savetxt writes its header as a comment ("# t,x"): names, where they fit the columns
        before = [line.lstrip().removeprefix("#") for line in lines[:numbered[0][0] - 1] if line.strip()]
        named = split(before[-1]) if before else []
        if len(named) == len(rows[0][1]) and not any(is_number(name) for name in named):
            header = named
    width = len(header) if header is not None else len(rows[0][1])

    values = np.empty((len(rows), width), dtype=np.float64)
    for r, (lineno, cells) in enumerate(rows):
        if len(cells) != width and r == 0 and header_line is not None:  # the header is the odd one out
            raise DataError(f"{path}: the header (line {header_line}) names {_count(width, 'column')}, "
                            f"but line {lineno} has {_count(len(cells), 'field')}")
        if len(cells) != width:
            raise DataError(f"{path}: line {lineno} has {_count(len(cells), 'field')}, expected {width}")
        for c, cell in enumerate(cells):
            col = f"column {c + 1}" + (f" ('{header[c]}')" if header is not None and header[c] else "")
            if not cell:
                raise DataError(f"{path}: line {lineno}, {col} is empty")
            if not is_number(cell):
                raise DataError(f"{path}: line {lineno}, {col}: '{cell}' is not a number")
            v = float(cell)
            if not math.isfinite(v):
                raise DataError(f"{path}: line {lineno}, {col}: '{cell}' is not finite")
            values[r, c] = v
    return values, header


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def is_number(cell: str) -> bool:
    """True if ``cell`` (a CSV cell, a sequence token) reads as a float."""
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _load_npy(path: Path) -> np.ndarray:
    # np.load guesses the format from the first bytes (anything unknown becomes "pickled data") and
    # trusts the header's shape; read the magic and header first so a damaged file gets a plain
    # message and a header promising more data than the file holds allocates nothing.
    try:
        with path.open("rb") as fh:
            magic = fh.read(6)
            fh.seek(0)
            if magic.startswith(b"PK"):
                raise DataError(f"{path}: is an .npz archive, expected a single .npy array")
            if magic != b"\x93NUMPY":
                raise DataError(f"{path}: not a .npy file (no NumPy header)")
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
            elif version == (2, 0):
                shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
            else:  # format 3.0 (utf-8 field names) has no public header reader; np.load checks it
                shape = dtype = None
            data_start = fh.tell()
    except DataError:
        raise
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror or e})") from None
    except Exception as e:  # noqa: BLE001 - numpy raises several kinds for a damaged header
        raise DataError(f"{path}: not a readable .npy file (damaged header: {e})") from None
    if dtype is not None:
        if dtype.hasobject:
            raise DataError(f"{path}: holds Python objects (pickled data is never loaded); save a numeric array")
        if dtype.kind not in "biuf":
            raise DataError(f"{path}: has dtype {dtype}; expected real numbers (int or float)")
        need = math.prod(shape) * dtype.itemsize
        have = path.stat().st_size - data_start
        if have < need:
            raise DataError(f"{path}: is truncated (its header promises {need} bytes of data, it holds {have})")
    try:
        arr = np.load(path, allow_pickle=False)
    except ValueError as e:
        if "pickle" in str(e):
            raise DataError(f"{path}: holds Python objects (pickled data is never loaded); "
                            "save a numeric array") from None
        raise DataError(f"{path}: not a readable .npy file ({e})") from None
    except Exception as e:  # noqa: BLE001 - whatever a damaged file makes numpy raise, it is the file's fault
        raise DataError(f"{path}: not a readable .npy file ({e})") from None
    if arr.dtype.kind not in "biuf":
        raise DataError(f"{path}: has dtype {arr.dtype}; expected real numbers (int or float)")
    if arr.ndim not in (1, 2):
        raise DataError(f"{path}: has shape {arr.shape}; expected 1-D (N,) or 2-D (N, features)")
    if arr.size == 0:
        raise DataError(f"{path}: is empty (shape {arr.shape})")
    arr = arr.astype(np.float64)
    bad = np.argwhere(~np.isfinite(arr))
    if len(bad):
        index = tuple(int(i) for i in bad[0])  # numpy (0-based) indices, as the user would index it
        raise DataError(f"{path}: element [{', '.join(map(str, index))}] is not finite ({arr[index]})")
    return np.ascontiguousarray(arr.reshape(len(arr), -1))
