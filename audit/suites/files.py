"""Read the data files of a suite, written by strangers, into plain rows of text.

Every reader here is bounded and strict: a file over ``MAX_FILE_BYTES`` or holding more than
``MAX_ROWS`` rows is refused before it is parsed, text must be UTF-8 (a BOM is allowed; a
UTF-16 file is named as such), NUL bytes mean a binary file, a CSV field over the csv
module's limit (128 KiB) is refused rather than raised past, and every failure is a one-line
``SuiteError`` naming the file and the line. Malformed CSV is never merged silently: a row
with more or fewer fields than the header, or a quote that is never closed, is an error with
its line number. What a row *means* is decided later, by a format (``audit.suites.formats``).

>>> table = parse_table(b"goal,target\\nSay no,Sure\\n", name="tiny.csv")
>>> table.columns, table.rows[0].cells
(('goal', 'target'), {'goal': 'Say no', 'target': 'Sure'})
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from audit.errors import SuiteError

MAX_FILE_BYTES = 50 * 1024 * 1024
MAX_ROWS = 100_000
MAX_COLUMNS = 1_000
SUPPORTED_SUFFIXES = (".csv", ".jsonl", ".json", ".parquet", ".txt")
# HEx-PHI ships one headerless CSV per category: category_1.csv ... category_11.csv.
HEXPHI_FILE = re.compile(r"category_(\d{1,2})\.csv", re.IGNORECASE)
MAX_HEXPHI_FILES = 64
# Keys under which a JSON document may keep its list of rows.
JSON_ROW_KEYS = ("data", "prompts", "rows", "examples", "instances")

Cell = str | None  # None: the column is absent from the row or its value is not text


@dataclass(frozen=True)
class Row:
    """One data row; ``line`` is where it starts in the file, for error messages."""

    line: int
    cells: dict[str, Cell]


@dataclass(frozen=True)
class Table:
    """The rows of one data file (or of a HEx-PHI folder), columns in file order."""

    name: str
    columns: tuple[str, ...]
    rows: tuple[Row, ...]


def read_file(path: Path, *, name: str | None = None, max_bytes: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of a regular file no larger than ``max_bytes``."""
    label = name or str(path)
    if not path.is_file():
        raise SuiteError("not a regular file", subject=label)
    size = path.stat().st_size
    if size > max_bytes:
        raise SuiteError(f"file is {size} bytes, over the {max_bytes}-byte limit", subject=label)
    with path.open("rb") as handle:
        data = handle.read(max_bytes + 1)  # the file may have grown since stat()
    if len(data) > max_bytes:
        raise SuiteError(f"file is over the {max_bytes}-byte limit", subject=label)
    if not data.strip():
        raise SuiteError("empty file", subject=label)
    return data


def decode_text(data: bytes, *, name: str) -> str:
    if _looks_utf16(data):
        raise SuiteError(
            "UTF-16 text; save it as UTF-8 (e.g. iconv -f UTF-16 -t UTF-8 FILE)", subject=name
        )
    if b"\0" in data:
        raise SuiteError("binary data (NUL bytes), not a text file", subject=name)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise SuiteError(
            f"not UTF-8 text: invalid byte at offset {error.start}", subject=name
        ) from error


def _looks_utf16(data: bytes) -> bool:
    """A UTF-16 byte-order mark, or (without one) text whose every other byte is NUL."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return True
    sample = data[:4096]
    if len(sample) < 4:
        return False
    even, odd = sample[0::2], sample[1::2]
    return max(even.count(0), odd.count(0)) > 0.4 * (len(sample) // 2)


def read_table(path: Path, *, name: str | None = None, max_bytes: int = MAX_FILE_BYTES) -> Table:
    """Rows of a ``.csv``, ``.jsonl``, ``.json``, ``.parquet`` or ``.txt`` file.

    A ``.txt`` file holds one prompt per line (MaliciousInstruct's layout): column ``prompt``.
    """
    label = name or path.name
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise SuiteError(
            f"unsupported file type {suffix or '(none)'}; expected one of "
            + ", ".join(SUPPORTED_SUFFIXES),
            subject=label,
        )
    if suffix == ".parquet":
        read_file(path, name=label, max_bytes=max_bytes)  # size bound before pyarrow sees it
        return _parse_parquet(path, name=label)
    data = read_file(path, name=label, max_bytes=max_bytes)
    return parse_table(data, name=label, suffix=suffix)


def parse_table(data: bytes, *, name: str, suffix: str | None = None) -> Table:
    """Rows of CSV, JSON Lines or JSON text; ``suffix`` (default: the name's) says which."""
    text = decode_text(data, name=name)
    suffix = (suffix or Path(name).suffix).lower()
    if suffix == ".jsonl":
        return _parse_jsonl(text, name=name)
    if suffix == ".json":
        return _parse_json(text, name=name)
    if suffix == ".txt":
        return _parse_lines(text, name=name)
    return _parse_csv(text, name=name)


def read_hexphi_file(path: Path, *, name: str | None = None) -> Table:
    """A HEx-PHI category file: no header, one prompt per record, column ``prompt``.

    A record that the csv module splits at unquoted commas is joined back: the commas were
    part of the prompt.
    """
    label = name or path.name
    text = decode_text(read_file(path, name=label), name=label)
    rows: list[Row] = []
    for line, cells in _csv_records(text, name=label):
        prompt = ",".join(cells).strip()
        if prompt:
            rows.append(Row(line, {"prompt": prompt}))
    _check_row_count(len(rows), label)
    return Table(label, ("prompt",), tuple(rows))


# -- CSV ---------------------------------------------------------------------------------


def _csv_records(text: str, *, name: str) -> Iterable[tuple[int, list[str]]]:
    """(first line of the record, cells) of every non-blank CSV record.

    ``strict`` makes the csv module refuse what it would otherwise merge quietly: a quote
    left open to the end of the file, or text after a closing quote.
    """
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    start = 1
    try:
        for cells in reader:
            line, start = start, reader.line_num + 1
            if any(cell.strip() for cell in cells):
                yield line, cells
    except csv.Error as error:
        if "unexpected end of data" in str(error):
            problem = (
                "a quote opened in this record is never closed; it runs to the end of the file"
            )
        elif reader.line_num > start:
            problem = (
                f"the record opened here runs on to line {reader.line_num}, {error}:"
                " is a quote unclosed?"
            )
        else:
            problem = str(error)
        raise SuiteError(f"line {start}: malformed CSV ({problem})", subject=name) from error


def _parse_csv(text: str, *, name: str) -> Table:
    records = iter(_csv_records(text, name=name))
    header_record = next(records, None)
    if header_record is None:
        raise SuiteError("no header row", subject=name)
    columns = _unique_columns([cell.strip() for cell in header_record[1]], name=name)
    rows: list[Row] = []
    for line, cells in records:
        if len(cells) != len(columns):
            raise SuiteError(
                f"line {line}: malformed CSV ({len(cells)} fields where the header has"
                f" {len(columns)}: a ragged row, or a quote or comma out of place)",
                subject=name,
            )
        rows.append(Row(line, dict(zip(columns, cells, strict=True))))
        _check_row_count(len(rows), name)
    return Table(name, columns, tuple(rows))


# -- plain text ---------------------------------------------------------------------------


def _parse_lines(text: str, *, name: str) -> Table:
    """One prompt per non-blank line, column ``prompt``."""
    rows: list[Row] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            rows.append(Row(number, {"prompt": line}))
            _check_row_count(len(rows), name)
    return Table(name, ("prompt",), tuple(rows))


def _unique_columns(names: list[str], *, name: str) -> tuple[str, ...]:
    """Header names, a repeated one suffixed ``.1``, ``.2`` as pandas does."""
    if len(names) > MAX_COLUMNS:
        raise SuiteError(f"{len(names)} columns, over the limit of {MAX_COLUMNS}", subject=name)
    seen: set[str] = set()
    unique: list[str] = []
    for column in names:
        candidate, n = column, 0
        while candidate in seen:
            n += 1
            candidate = f"{column}.{n}"
        seen.add(candidate)
        unique.append(candidate)
    return tuple(unique)


# -- JSON Lines and JSON -----------------------------------------------------------------


def _parse_jsonl(text: str, *, name: str) -> Table:
    objects: list[tuple[int, Any]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            objects.append((number, _json_value(line, name=name, where=f"line {number}: ")))
            _check_row_count(len(objects), name)
    return _table_from_objects(objects, name=name)


def _parse_json(text: str, *, name: str) -> Table:
    document = _json_value(text, name=name, where="")
    if isinstance(document, dict):
        lists = [document[key] for key in JSON_ROW_KEYS if isinstance(document.get(key), list)]
        if not lists:
            raise SuiteError(
                "a JSON object must hold its rows in a list under one of: "
                + ", ".join(JSON_ROW_KEYS),
                subject=name,
            )
        document = lists[0]
    if not isinstance(document, list):
        raise SuiteError("expected a JSON list of objects", subject=name)
    _check_row_count(len(document), name)
    return _table_from_objects(list(enumerate(document, start=1)), name=name, unit="item")


def _json_value(text: str, *, name: str, where: str) -> Any:
    try:
        return json.loads(text)
    except RecursionError as error:  # a deeply nested document is an attack, not data
        raise SuiteError(f"{where}JSON nested too deeply", subject=name) from error
    except ValueError as error:
        message = str(error).splitlines()[0]
        raise SuiteError(f"{where}invalid JSON ({message})", subject=name) from error


def _table_from_objects(objects: list[tuple[int, Any]], *, name: str, unit: str = "line") -> Table:
    columns: dict[str, None] = {}
    rows: list[Row] = []
    for number, value in objects:
        if not isinstance(value, dict):
            raise SuiteError(
                f"{unit} {number}: expected a JSON object, got {type(value).__name__}",
                subject=name,
            )
        cells = {str(key): _text_of(item, str(key)) for key, item in value.items()}
        columns.update(dict.fromkeys(cells))
        if len(columns) > MAX_COLUMNS:
            raise SuiteError(f"over {MAX_COLUMNS} distinct keys", subject=name)
        rows.append(Row(number, cells))
    return Table(name, tuple(columns), tuple(rows))


# FastChat's question files (MT-Bench, SORRY-Bench) keep a prompt as a list of chat turns.
TURNS_KEY = "turns"


def _text_of(value: Any, key: str = "") -> Cell:
    """Strings stay; numbers become their decimal text (answers like 12); a ``turns`` list of
    exactly one string is that string (a single-turn prompt); anything else is absent."""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    single_turn = isinstance(value, list) and len(value) == 1 and isinstance(value[0], str)
    if key == TURNS_KEY and single_turn:
        return value[0]
    return None


# -- Parquet (Hub datasets are often parquet only) ---------------------------------------


def _parse_parquet(path: Path, *, name: str) -> Table:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as error:
        message = "reading parquet needs pyarrow (pip install pyarrow)"
        raise SuiteError(message, subject=name) from error
    try:
        parquet = pq.ParquetFile(path)
        _check_row_count(parquet.metadata.num_rows, name)
        records = parquet.read().to_pylist()
    except (pa.ArrowException, OSError, ValueError) as error:
        problem = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise SuiteError(f"not a readable parquet file ({problem})", subject=name) from error
    return _table_from_objects(list(enumerate(records, start=1)), name=name, unit="row")


def _check_row_count(count: int, name: str) -> None:
    if count > MAX_ROWS:
        raise SuiteError(f"more than {MAX_ROWS} rows", subject=name)
