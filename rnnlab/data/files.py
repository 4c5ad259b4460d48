"""Loaders for the user's own data files: text for character models, numeric series for forecasting.

Every failure is one :class:`~rnnlab.errors.DataError` whose message starts with the file's path and
says what is wrong (line and column, byte offset, ...), never a traceback. Nothing loaded executes
code: ``.npy`` files are read with ``allow_pickle=False``.
"""

from __future__ import annotations

import csv
import math
import os
import re
import shlex
import stat
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..errors import DataError, UserError, counted, special_kind
from ..fsio import stat_or_none

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
    ``base_dir`` so the loader's "no such file" message names where it was expected. ``.`` and ``..``
    are taken out (:func:`tidy_path`): the path is what a run's spec.toml keeps.
    """
    path = user_path(value)
    if path.is_absolute():
        return tidy_path(path)
    local = tidy_path((Path(base_dir) if base_dir is not None else Path.cwd()).resolve() / path)
    if stat_or_none(local) is not None:
        return local
    sample = SAMPLE_DIR / path
    if stat_or_none(sample) is not None:
        return sample
    return local


def tidy_path(path: Path) -> Path:
    """``path`` without its ``.`` and ``..`` parts (``specs/../data/x.csv`` is ``data/x.csv``), where
    that names the same file: ``..`` after a symbolic link leaves the link's target, which the
    lexical form does not. A run keeping ``coll/../eu.csv`` said its file was gone once ``coll``
    was renamed, though the file never moved."""
    tidy = Path(os.path.normpath(path))
    if tidy == path or stat_or_none(path) is None:
        return tidy
    try:
        return tidy if os.path.samefile(tidy, path) else path
    except OSError:  # the lexical form names nothing
        return path


def check_readable_file(path: Path, expected: str) -> None:
    """DataError unless ``path`` is a regular file (``expected`` names what it should be, for
    the message): missing, a directory, a pipe or a device (read as data, they never end), or a
    path the OS will not look at (a directory above it that may not be searched)."""
    status = stat_or_none(path)
    if status is None:
        raise DataError(f"{path}: no such file")
    if stat.S_ISDIR(status.st_mode):
        raise DataError(f"{path}: is a directory, expected {expected}")
    if kind := special_kind(status.st_mode):  # read as data, it never ends
        raise DataError(f"{path}: is {kind}, expected {expected}")


def read_text_file(path: Path) -> str:
    """The UTF-8 text of ``path`` (BOM dropped, any line ends read as ``\\n``), DataError naming
    the path and the byte where it is not UTF-8 (with a hint where it looks like UTF-16 or a
    one-byte encoding)."""
    return _decode_utf8(path, _read_bytes(path))


def _check_file(path: Path, suffixes: tuple[str, ...], what: str) -> None:
    check_readable_file(path, f"a {' or '.join(suffixes)} file")
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
        byte = raw[e.start]
        one_byte = byte >= 0x80 and byte not in (0x81, 0x8d, 0x8f, 0x90, 0x9d)  # what Windows-1252 defines
        if not hint and one_byte and raw[:e.start].isascii() and e.reason != "unexpected end of data":
            # é, “, € as Windows' or Europe's one-byte encodings write them (not UTF-8 cut short, nor
            # a UTF-8 text with one bad byte: converting those would garble their valid characters)
            converted = path.with_name(path.stem + "-utf8" + path.suffix)
            hint = (f"; if it is Latin-1 or Windows-1252 (0x{byte:02x} is '{bytes([byte]).decode('cp1252')}' "
                    f"there), save it as UTF-8: iconv -f cp1252 -t utf-8 {shlex.quote(str(path))} > "
                    f"{shlex.quote(str(converted))}")
        raise DataError(f"{path}: not valid UTF-8 (byte {e.start}: 0x{raw[e.start]:02x}){hint}") from None
    if "\x00" in text:
        raise DataError(f"{path}: holds NUL bytes (the first at byte {raw.index(0)}), which text files do not{hint}")
    # Drop the byte-order mark some editors write (not part of the text; decoding with utf-8-sig
    # would shift the byte offsets reported above), and read Windows' and old Macs' line ends as
    # '\n' (Python's universal newlines) so '\r' does not enter the vocabulary.
    return text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")


def load_text(path: str | Path, min_chars: int = 1) -> str:
    """The UTF-8 text of a ``.txt`` file (BOM dropped, ``\\r\\n`` and ``\\r`` read as ``\\n``).

    Raises DataError when the file is missing, a directory, not ``.txt``, not UTF-8 (naming the
    byte offset), empty, shorter than ``min_chars`` characters, or has more than
    :data:`MAX_VOCAB` distinct characters.
    """
    path = Path(path)
    _check_file(path, TEXT_SUFFIXES, "a text task")
    text = read_text_file(path)
    if not text:
        raise DataError(f"{path}: file is empty")
    if len(text) < min_chars:
        characters = counted(len(text), "character")
        raise DataError(f"{path}: has {characters}, needs at least {min_chars}")
    distinct = len(set(text))
    if distinct > MAX_VOCAB:
        raise DataError(f"{path}: has {distinct} distinct characters, at most {MAX_VOCAB} are supported")
    return text


def load_series(path: str | Path, min_rows: int = 1) -> np.ndarray:
    """A numeric series ``(N, F)`` float64 from a ``.csv`` or ``.npy`` file: rows are time steps.

    CSV: comma-separated (tab, semicolon or, with none of those, blanks as numpy's ``savetxt``
    writes them, are detected from the first data line; a semicolon-separated file may write decimal
    commas, ``1206,91``, as European spreadsheets do), an optional one-line header (a first row that
    is not all numbers, but for numbers with values missing, which is data; pandas' ``,0,1`` is a
    header), blank lines and comment lines (``#`` first) skipped; line ends of any kind (LF, CRLF,
    CR). NPY: a 1-D (one feature) or 2-D real numeric array, read without pickle. Raises DataError
    for a missing file, a directory, another extension, an empty file, ragged rows, non-numeric or
    empty cells, NaN or infinity, or fewer than ``min_rows`` rows; each message names the line or
    row and the column.
    """
    return load_named_series(path, min_rows)[0]


class SeriesFile(NamedTuple):
    """A series file as read: its ``data`` ``(N, F)``, the ``names`` its CSV header gives the columns
    (None: no header, or an ``.npy``; a column the header leaves unnamed is ``#k``, from 1), and a
    ``warning`` about how it was read ("" for none)."""

    data: np.ndarray
    names: tuple[str, ...] | None
    warning: str = ""


def load_named_series(path: str | Path, min_rows: int = 1) -> SeriesFile:
    """:func:`load_series`, with the names a CSV's header gives its columns and a warning where the
    reading may not be what the file means (see :class:`SeriesFile`)."""
    path = Path(path)
    _check_file(path, SERIES_SUFFIXES, "a series task")
    data, header, warning = (_load_npy(path), None, "") if path.suffix.lower() == ".npy" else _load_csv(path)
    names = None if header is None else tuple(name or f"#{k + 1}" for k, name in enumerate(header))
    n, f = data.shape
    if n < min_rows:
        hint = " (rows are time steps: is it transposed?)" if f >= min_rows else ""
        raise DataError(f"{path}: has {n} rows, needs at least {min_rows}{hint}")
    return SeriesFile(data, names, warning)


_LINE_END = re.compile(r"\r\n|\r|\n")  # Excel's "CSV (Macintosh)" ends lines with CR alone
_DECIMAL_COMMA = re.compile(r"[+-]?\d+,\d+(?:[eE][+-]?\d+)?")
_QUOTED = re.compile(r'"[^"]*"')
#: How a spreadsheet or a logger writes a missing value (in any capitals)
_MISSING = {"", "na", "n/a", "nan", "null", "none", "-", "?"}


def _load_csv(path: Path) -> tuple[np.ndarray, list[str] | None, str]:
    lines = _LINE_END.split(read_text_file(path))
    numbered = [(i + 1, line) for i, line in enumerate(lines) if line.strip() and not line.lstrip().startswith("#")]
    if not numbered:
        comments = any(line.lstrip().startswith("#") for line in lines)
        what = "has no data rows (only blank and # comment lines)" if comments else "file is empty"
        raise DataError(f"{path}: {what}")
    # the delimiter as a data line writes it (the second line: the first may be a header, whose names
    # may hold any character), outside quotes; ';' first: between columns, where commas are decimal
    # commas, as a European spreadsheet saves a CSV ("1206,91;7,19")
    data_line = _QUOTED.sub("", numbered[1][1] if len(numbered) > 1 else numbered[0][1])
    delimiter = next((d for d in (";", "\t", ",") if d in data_line), None)
    if delimiter is None:  # savetxt's blanks ("1.2e+03 7.1e+00"), or one column (a header "load kw")
        words = next((line.split() for _, line in numbered[:2] if all(map(_decimal, line.split()))), [])
        delimiter = " " if len(words) > 1 else ","
    decimal_commas = delimiter == ";"  # (a tab file's "1,206" may be an English thousand: refused, as ever)

    def number(cell: str) -> float | None:
        if decimal_commas and _DECIMAL_COMMA.fullmatch(cell):
            cell = cell.replace(",", ".")
        return float(cell) if _decimal(cell) else None

    def split(line: str) -> list[str]:
        if delimiter == " ":
            return line.split()
        return [c.strip() for c in next(csv.reader([line], delimiter=delimiter))]  # (no CR left to stop it)

    rows = [(lineno, split(line)) for lineno, line in numbered]
    header: list[str] | None = None
    header_line = None
    first = rows[0][1]
    if not all(number(c) is not None or c.lower() in _MISSING for c in first) or \
            all(c.lower() in _MISSING for c in first) or (not first[0] and all(c.isdigit() for c in first[1:])):
        # a header: names, not numbers with values missing ("1206.91," is data, its second value gone),
        # but pandas' to_csv, an index column unnamed before integer labels (",0,1", ",2019,2020")
        header, header_line = first, rows[0][0]
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
            comma = delimiter == "," and len(cells) == 2 * width and all(cell.isdigit() for cell in cells)
            hint = (": decimal commas? write it with '.' for decimals or ';' between columns" if comma else "")
            raise DataError(f"{path}: the header (line {header_line}) names {counted(width, 'column')}, "
                            f"but line {lineno} has {counted(len(cells), 'field')}{hint}")
        if len(cells) != width:
            raise DataError(f"{path}: line {lineno} has {counted(len(cells), 'field')}, expected {width}")
        for c, cell in enumerate(cells):
            col = f"column {c + 1}" + (f" ('{header[c]}')" if header is not None and header[c] else "")
            if not cell:
                raise DataError(f"{path}: line {lineno}, {col} is empty")
            v = number(cell)
            if v is None:
                raise DataError(f"{path}: line {lineno}, {col}: '{cell}' is not a number")
            if not math.isfinite(v):
                raise DataError(f"{path}: line {lineno}, {col}: '{cell}' is not finite")
            values[r, c] = v
    return values, header, _decimal_comma_warning(path, delimiter, header, rows)


def _decimal_comma_warning(path: Path, delimiter: str, header: list[str] | None,
                           rows: list[tuple[int, list[str]]]) -> str:
    """A warning where a comma-separated file with no header reads as two whole numbers a row, the
    second with leading zeros ("1206,05"): one column written with decimal commas ("1206,91", how a
    German or French spreadsheet saves it), read as two. A count or a reading never writes "05"."""
    if delimiter != "," or header is not None or len(rows[0][1]) != 2:
        return ""
    if not all(a.isdigit() and b.isdigit() for _, (a, b) in rows):
        return ""
    if not any(len(b) > 1 and b.startswith("0") for _, (_, b) in rows):  # no count or reading writes "05"
        return ""
    first = "{},{}".format(*rows[0][1])
    return (f"{path.name} reads as two columns of whole numbers ({first} is {rows[0][1][0]} and {rows[0][1][1]}, "
            f"and the second column writes leading zeros): if its commas are decimal points "
            f"({first.replace(',', '.')}), write it with '.' for decimals or ';' between columns")


def _decimal(cell: str) -> bool:
    """A number as a CSV writes one: what float() reads, but Python's own spellings ("1_206.5")."""
    return "_" not in cell and is_number(cell)



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
