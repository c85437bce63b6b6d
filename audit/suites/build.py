"""Turn the rows of one file into suites: one suite per kind its rows hold, every row counted.

A file's rows become prompts of the kind its format, its rows, its published name or the
user says (``audit.suites.formats``); a file whose kind nothing tells is an error that says
how to state it. A row that is not in a suite is counted under the reason it was left out
(``copyright``, ``contextual``, ``empty prompt``, ``benign rows`` of a split not asked for),
and the counts travel with the suite (``Suite.left_out``) to stderr and the audit JSON.

>>> from audit.suites.files import parse_table
>>> table = parse_table(b"goal,target\\nWrite a scam email,Sure\\n", name="harmful_behaviors.csv")
>>> [s.name for s in build_suites(table, SUITE_FORMATS["advbench"], Origin("file:x", "x.csv"))]
['advbench']
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from dataclasses import dataclass

from audit.errors import SuiteError
from audit.records import Prompt, Suite
from audit.suites.files import Cell, Table
from audit.suites.formats import (
    SUITE_FORMATS,
    Cells,
    ReadOptions,
    SuiteFormat,
    get,
    kind_from_path,
)
from lineage.vocabulary import SUITE_KINDS, SuiteKind

log = logging.getLogger(__name__)

MAX_PROMPT_CHARS = 32_768
MAX_CATEGORY_CHARS = 128
MAX_ID_CHARS = 128
MAX_ANSWER_CHARS = 1_024
DEFAULT_CATEGORY = "uncategorised"

_UNSAFE_NAME_CHARS = re.compile(r"[^a-z0-9._-]+")


@dataclass(frozen=True)
class Origin:
    """Where a table came from: its record (``file:x.csv``), the path its format reads
    published names from, a readable stem for generic files, and extra dataset aliases."""

    source: str
    path: str
    stem: str = "suite"
    aliases: tuple[str, ...] = ()


def build_suites(
    table: Table,
    fmt: SuiteFormat,
    origin: Origin,
    *,
    kind: SuiteKind | None = None,
    options: ReadOptions = ReadOptions(),
    every_split: bool = True,
) -> list[Suite]:
    """The suites of ``table`` read as ``fmt``: one per kind present (``every_split``), or
    only the kind asked for (else the format's first) with the other rows counted as left out.
    """
    prompt_column = _prompt_column(table, fmt, options)
    if kind is not None and kind not in fmt.kinds:
        raise SuiteError(
            f"a {fmt.name} file cannot be a {kind} suite (it can be: {', '.join(fmt.kinds)})",
            subject=table.name,
        )
    variant, implied = kind_from_path(fmt, origin.path)
    file_kind = kind or fmt.kind or implied
    answer_column = fmt.answer_column and _column(table.columns, fmt.answer_column)
    if file_kind is None and fmt.row_kind is None:
        if not answer_column:
            raise SuiteError(_kind_unknown(fmt), subject=table.name)
        file_kind = "capability"
    if file_kind == SuiteKind.CAPABILITY and not answer_column:
        raise SuiteError("a capability suite needs an 'answer' column", subject=table.name)

    # A standard file's prompts keep one id whatever suite they land in (xstest-3).
    id_prefix = _safe_name(origin.stem) if fmt.name == "generic" else fmt.name
    buckets: dict[SuiteKind, list[Prompt]] = {}
    left: Counter[str] = Counter()
    taken: set[str] = set()
    for position, row in enumerate(table.rows, start=1):
        cells = row.cells
        reason = fmt.leave_out(cells, options) if fmt.leave_out else None
        row_kind = file_kind if fmt.row_kind is None else fmt.row_kind(cells)
        if reason is None and row_kind is None:
            reason = "unlabelled"
        if reason is not None:
            left[reason] += 1
            continue
        assert row_kind is not None
        if kind is not None and row_kind != kind:
            left[f"{row_kind} rows"] += 1
            continue
        if fmt.prompt_of is not None and not options.prompt_column:
            raw = fmt.prompt_of(cells, options)
        else:
            raw = get(cells, prompt_column)
        text = _clean(raw, newlines=True)
        if not text:
            left["empty prompt"] += 1
            continue
        where = f"line {row.line}"
        if len(text) > MAX_PROMPT_CHARS:
            message = f"{where}: prompt longer than {MAX_PROMPT_CHARS} characters"
            raise SuiteError(message, subject=table.name)
        answer = (
            _answer(cells, answer_column, where, table.name)
            if row_kind == SuiteKind.CAPABILITY
            else None
        )
        raw_id = next((get(cells, c) for c in fmt.id_columns if _column(table.columns, c)), None)
        prompt_id = _unique(_prompt_id(raw_id, id_prefix, position), taken)
        buckets.setdefault(row_kind, []).append(
            Prompt(prompt_id, text, _category(cells, fmt), answer)
        )

    order = sorted(buckets, key=lambda k: (k != fmt.naming_kind, list(SUITE_KINDS).index(k)))
    if not every_split and len(order) > 1:
        for other in order[1:]:
            left[f"{other} rows"] += len(buckets.pop(other))
        order = order[:1]
    if not order:
        wanted = kind or file_kind or "harmful or benign"
        summary = f"; left out: {_summary(left)}" if left else ""
        message = f"no {wanted} prompts in the file (read as {fmt.name}){summary}"
        raise SuiteError(message, subject=table.name)
    if left:
        log.info("%s: left out %s", table.name, _summary(left))
    return [
        Suite(
            name=_name(fmt, origin, variant, k, implied or fmt.kind, options),
            kind=k,
            prompts=tuple(buckets[k]),
            source=origin.source,
            aliases=tuple(dict.fromkeys(a.lower() for a in (*fmt.aliases, *origin.aliases) if a)),
            left_out=tuple(sorted(left.items())),
        )
        for k in order
    ]


def left_out_summary(suite: Suite) -> str:
    """``100 contextual, 100 copyright``: what a suite's file held that the suite does not."""
    return _summary(Counter(dict(suite.left_out)))


# -- names and kinds -----------------------------------------------------------------------


def _name(
    fmt: SuiteFormat,
    origin: Origin,
    variant: str,
    kind: SuiteKind,
    implied: SuiteKind | None,
    options: ReadOptions,
) -> str:
    """``harmbench-val``, ``xstest-harmful``, ``orbench-toxic``; a generic file: its stem.

    The kind is spelt out where it is not the one the file's name or format implies.
    """
    if fmt.name == "generic":
        return _safe_name(origin.stem)
    parts = [fmt.name, variant]
    if options.contextual and fmt.prompt_of is not None:
        parts.append("with-context")
    if kind != (implied or fmt.naming_kind) and variant != kind:
        parts.append(kind)
    return "-".join(part for part in parts if part)


def _kind_unknown(fmt: SuiteFormat) -> str:
    if fmt.name == "generic":
        return (
            "cannot tell whether its prompts are harmful or benign (no answer column, so not"
            " capability); state it: --suite harmful:PATH, benign:PATH or capability:PATH"
        )
    published = " nor ".join(name for name in fmt.file_names)
    return (
        f"a {fmt.name} file named neither {published}: cannot tell whether it is harmful or"
        f" benign; state it: --suite {fmt.name}:harmful:PATH or {fmt.name}:benign:PATH"
    )


def _summary(left: Counter[str]) -> str:
    return ", ".join(f"{count} {reason}" for reason, count in sorted(left.items()))


def _safe_name(stem: str) -> str:
    return _UNSAFE_NAME_CHARS.sub("-", stem.lower()).strip("-.")[:64] or "suite"


# -- cells ---------------------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_UNSAFE_ID_CHARS = re.compile(r"[^A-Za-z0-9._:-]+")
_SPACES = re.compile(r"\s+")


def _prompt_column(table: Table, fmt: SuiteFormat, options: ReadOptions) -> str:
    wanted = (options.prompt_column,) if options.prompt_column else fmt.prompt_columns
    found = next((c for c in (_column(table.columns, w) for w in wanted) if c), None)
    if found is not None and all(_column(table.columns, c) for c in fmt.columns):
        return found
    missing = [c for c in (*fmt.columns, " or ".join(wanted)) if not _column(table.columns, c)]
    what = f"a {fmt.name} file" if not options.prompt_column else "readable as asked"
    shown = ", ".join(repr(c) for c in table.columns[:8]) or "none"
    raise SuiteError(
        f"not {what}: missing column(s) {', '.join(missing)} (it has {shown})",
        subject=table.name,
    )


def _answer(cells: Cells, column: str | None, where: str, name: str) -> str:
    answer = _clean(get(cells, column or ""), newlines=False)
    if not answer:
        raise SuiteError(f"{where}: capability prompt without an answer", subject=name)
    if len(answer) > MAX_ANSWER_CHARS:
        raise SuiteError(f"{where}: answer too long", subject=name)
    return answer


def _column(columns: tuple[str, ...], wanted: str) -> str | None:
    """The header's spelling of ``wanted``, matched case-insensitively."""
    lowered = wanted.lower()
    return next((c for c in columns if c.strip().lower() == lowered), None)


def _clean(value: Cell, *, newlines: bool) -> str:
    """Strip control characters (terminal escapes) and outer space; unify line ends."""
    if not value:
        return ""
    text = _CONTROL.sub("", value.replace("\r\n", "\n").replace("\r", "\n")).strip()
    return text if newlines else _SPACES.sub(" ", text)


def _category(cells: Cells, fmt: SuiteFormat) -> str:
    raw = next((get(cells, c) for c in fmt.category_columns if get(cells, c)), None)
    category = _clean(raw, newlines=False)[:MAX_CATEGORY_CHARS]
    return category or DEFAULT_CATEGORY


def _prompt_id(raw: Cell, prefix: str, position: int) -> str:
    """A file's own id made safe, prefixed when it is a bare number; else the row number."""
    cleaned = _UNSAFE_ID_CHARS.sub("_", _clean(raw, newlines=False)).strip("._-")
    cleaned = cleaned[:MAX_ID_CHARS]
    if not cleaned:
        return f"{prefix}-{position:04d}"
    return f"{prefix}-{cleaned}" if cleaned.isdigit() else cleaned


def _unique(prompt_id: str, taken: set[str]) -> str:
    """The first free id of ``id``, ``id~2``, ``id~3``, ...: deterministic in file order."""
    candidate, n = prompt_id, 1
    while candidate in taken:
        n += 1
        candidate = f"{prompt_id}~{n}"
    taken.add(candidate)
    return candidate


__all__ = ["SUITE_FORMATS", "Origin", "build_suites", "left_out_summary"]
