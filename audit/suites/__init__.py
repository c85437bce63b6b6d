"""Evaluation suites: the built-in ones, published benchmark files, and Hub datasets.

``load_suites`` takes what a user writes after ``--suite`` (``audit.suites.spec``):

- a built-in name: ``harmful``, ``benign``, ``capability``;
- a local file (``.csv``, ``.jsonl``, ``.json``, ``.parquet``, ``.txt``) whose format is
  recognised by its published name and columns (``SUITE_FORMATS``), or a HEx-PHI folder of
  ``category_N.csv`` files;
- a Hub dataset: ``org/name`` or ``hf:org/name[@revision][:path/in/repo.csv]``, fetched
  through huggingface_hub (``HubDatasetFetcher``) and pinned to a commit sha;
- any of the file forms behind options that say what the file means:
  ``FORMAT:``, ``KIND:`` (``harmful``, ``benign``, ``capability``), ``prompt=COLUMN:`` and
  ``contextual:`` (``xstest:harmful:xstest_prompts.csv``, ``benign:prompt=question:faq.csv``).

A file can hold several suites: XSTest's safe prompts are a benign suite and its unsafe
ones a harmful suite. ``load_suites`` returns all of them; ``load_suite`` the one asked for
(else the format's first), counting the others as left out. A file whose kind cannot be
told is an error that says how to state it.

Every suite records where it came from (``source``: ``builtin:harmful``,
``file:harmful_behaviors.csv``, ``hf:org/ds@<sha>:file.csv``), the dataset names a model
card may use for it (``aliases``) and the rows it left out. Errors are one-line
``SuiteError``\\ s naming the file.

>>> suite = load_suite("harmful")
>>> suite.kind, len(suite.categories)
('harmful', 11)
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

from audit.errors import SuiteError
from audit.records import Suite, SuiteKind
from audit.suites.build import Origin, build_suites, left_out_summary
from audit.suites.builtin import BUILTIN_SUITES, BuiltinSuite, load_builtin
from audit.suites.files import (
    HEXPHI_FILE,
    MAX_FILE_BYTES,
    MAX_HEXPHI_FILES,
    MAX_ROWS,
    SUPPORTED_SUFFIXES,
    Row,
    Table,
    read_hexphi_file,
    read_table,
)
from audit.suites.formats import (
    HEXPHI_CATEGORIES,
    SUITE_FORMATS,
    ReadOptions,
    SuiteFormat,
    detect_format,
    get_format,
)
from audit.suites.hub import HubDatasetFetcher, pick_data_files
from audit.suites.identity import distinct_suites
from audit.suites.spec import SPEC_HELP, SuiteSpec, parse_spec
from lineage.errors import InvalidReferenceError
from lineage.references import validate_filename, validate_repo_id, validate_revision
from lineage.vocabulary import SUITE_KINDS

__all__ = [
    "BUILTIN_SUITES",
    "MAX_FILE_BYTES",
    "MAX_ROWS",
    "SPEC_HELP",
    "SUITE_FORMATS",
    "BuiltinSuite",
    "HubDatasetFetcher",
    "SuiteFormat",
    "distinct_suites",
    "left_out_summary",
    "load_suite",
    "load_suites",
]

MAX_SPEC_CHARS = 4_096
_BARE_REPO_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*/[A-Za-z0-9_][A-Za-z0-9_.-]*")


def load_suites(
    spec: str,
    *,
    kind: SuiteKind | None = None,
    hub: HubDatasetFetcher | None = None,
    format: str | None = None,
    prompt_column: str | None = None,
    contextual: bool = False,
) -> list[Suite]:
    """Every suite ``spec`` names (see the module docstring for the forms).

    Keyword arguments say what options in the spec say (``kind="harmful"`` is
    ``harmful:FILE``); ``hub`` is the fetcher for Hub datasets (default: one honouring
    HF_ENDPOINT, HF_TOKEN, HF_HUB_OFFLINE and the Hub cache).
    """
    return _load(spec, kind, hub, format, prompt_column, contextual, every_split=True)


def load_suite(
    spec: str,
    *,
    kind: SuiteKind | None = None,
    hub: HubDatasetFetcher | None = None,
    format: str | None = None,
    prompt_column: str | None = None,
    contextual: bool = False,
) -> Suite:
    """The one suite ``spec`` names: the kind asked for, else the file's first (an XSTest
    file's safe prompts); the rows of other kinds are counted in ``left_out``."""
    (suite,) = _load(spec, kind, hub, format, prompt_column, contextual, every_split=False)
    return suite


def _load(
    spec: str,
    kind: SuiteKind | None,
    hub: HubDatasetFetcher | None,
    format: str | None,
    prompt_column: str | None,
    contextual: bool,
    *,
    every_split: bool,
) -> list[Suite]:
    text = _checked_spec(spec)
    if kind is not None and kind not in SUITE_KINDS:
        raise SuiteError(f"unknown suite kind {kind!r}; known: {', '.join(SUITE_KINDS)}")
    parsed = _merge(parse_spec(text), kind, format, prompt_column, contextual, text)
    fmt = get_format(parsed.format) if parsed.format else None
    target = parsed.target
    if fmt is None and target.lower() in BUILTIN_SUITES and not parsed.prompt_column:
        suite = load_builtin(target.lower())
        if parsed.kind is not None and parsed.kind != suite.kind:
            message = f"the built-in suite is a {suite.kind} suite, not {parsed.kind}"
            raise SuiteError(message, subject=target)
        return [suite]
    read = _Reader(fmt, parsed, every_split)
    if target.startswith("hf:"):
        return read.hub(target[3:], hub=hub, bare=False)
    path = Path(target).expanduser()
    if path.exists():
        return read.local(path)
    if _BARE_REPO_ID.fullmatch(target) and Path(target).suffix.lower() not in SUPPORTED_SUFFIXES:
        return read.hub(target, hub=hub, bare=True)
    raise SuiteError(
        "not a built-in suite (" + ", ".join(BUILTIN_SUITES) + "), an existing file or "
        f"folder, or a Hub dataset id (org/name or hf:org/name[:path]); forms: {SPEC_HELP}",
        subject=target,
    )


# -- spec --------------------------------------------------------------------------------


def _checked_spec(spec: str) -> str:
    if not isinstance(spec, str):
        raise SuiteError(f"a suite must be named by a string, not {type(spec).__name__}")
    text = spec.strip()
    if not text:
        raise SuiteError("empty suite name")
    if len(text) > MAX_SPEC_CHARS:
        raise SuiteError(f"suite name longer than {MAX_SPEC_CHARS} characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise SuiteError(f"suite name {text!r} contains control characters")
    return text


def _merge(
    parsed: SuiteSpec,
    kind: SuiteKind | None,
    format: str | None,
    prompt_column: str | None,
    contextual: bool,
    text: str,
) -> SuiteSpec:
    """The spec's options and the keyword arguments, which must not contradict each other."""
    if format is not None:
        get_format(format)
    for label, given, written in (
        ("kind", kind, parsed.kind),
        ("format", format and format.strip().lower(), parsed.format),
        ("prompt column", prompt_column, parsed.prompt_column),
    ):
        if given and written and given != written:
            raise SuiteError(f"{label} given twice: {given} and {written}", subject=text)
    return SuiteSpec(
        target=parsed.target,
        format=parsed.format or (format.strip().lower() if format else None),
        kind=parsed.kind or kind,
        prompt_column=parsed.prompt_column or prompt_column,
        contextual=parsed.contextual or contextual,
    )


# -- files, folders and Hub datasets -----------------------------------------------------


class _Reader:
    """Reads the target of one spec into suites."""

    def __init__(self, fmt: SuiteFormat | None, spec: SuiteSpec, every_split: bool):
        self.fmt = fmt
        self.spec = spec
        self.every_split = every_split
        self.options = ReadOptions(prompt_column=spec.prompt_column, contextual=spec.contextual)

    def local(self, path: Path) -> list[Suite]:
        if path.is_dir():
            if self.fmt is not None and self.fmt.name != "hexphi":
                message = f"a folder can only be read as hexphi, not {self.fmt.name}"
                raise SuiteError(message, subject=str(path))
            files = [(str(p), p, p.name) for p in _hexphi_files(path)]
            origin = Origin(f"file:{path.name}/", path.name, path.name)
            return self._build(files, origin, label=str(path))
        files = [(str(path), path, path.name)]
        origin = Origin(f"file:{path.name}", path.name, path.stem)
        return self._build(files, origin, label=str(path), stem_alias=path.stem)

    def hub(self, text: str, *, hub: HubDatasetFetcher | None, bare: bool) -> list[Suite]:
        repo_id, revision, filename = _parse_hub_spec(text)
        fetcher = hub or HubDatasetFetcher()
        try:
            sha = fetcher.resolve(repo_id, revision)
        except SuiteError as error:
            if not bare:
                raise
            hint = f"{error.reason} (and no local file or folder has that name)"
            raise SuiteError(hint, subject=error.subject) from error
        names = [filename] if filename else None
        if names is None:
            names = pick_data_files(fetcher.list_files(repo_id, sha), repo_id=repo_id)
        label = f"hf:{repo_id}@{sha[:12]}"
        files = [(f"{label}:{n}", fetcher.download(repo_id, n, sha), n) for n in names]
        origin = Origin(
            f"hf:{repo_id}@{sha}:{names[0] if len(names) == 1 else 'category_*.csv'}",
            names[0],
            repo_id.rsplit("/", 1)[-1],
            (repo_id, *_known_aliases(repo_id)),
        )
        return self._build(files, origin, label=label)

    def _build(
        self,
        files: list[tuple[str, Path, str]],
        origin: Origin,
        *,
        label: str,
        stem_alias: str | None = None,
    ) -> list[Suite]:
        table, fmt = _read_files(files, self.fmt, self.spec.prompt_column, label=label)
        if stem_alias and fmt.name not in ("generic", "hexphi"):
            # A card may name a standard file by its stem ("harmful_behaviors").
            origin = replace(origin, aliases=(*origin.aliases, stem_alias))
        return build_suites(
            table,
            fmt,
            origin,
            kind=self.spec.kind,
            options=self.options,
            every_split=self.every_split,
        )


def _hexphi_files(folder: Path) -> list[Path]:
    files = [p for p in folder.iterdir() if p.is_file() and HEXPHI_FILE.fullmatch(p.name)]
    if not files:
        raise SuiteError("no HEx-PHI category_N.csv files in the folder", subject=str(folder))
    if len(files) > MAX_HEXPHI_FILES:
        raise SuiteError(f"more than {MAX_HEXPHI_FILES} category files", subject=str(folder))
    return sorted(files, key=lambda p: int(HEXPHI_FILE.fullmatch(p.name)[1]))


def _read_files(
    files: list[tuple[str, Path, str]],
    fmt: SuiteFormat | None,
    prompt_column: str | None,
    *,
    label: str,
) -> tuple[Table, SuiteFormat]:
    """One data file read as ``fmt`` (detected when None), or HEx-PHI category files.

    ``files`` holds (name for messages, path to read, published path) of each file.
    """
    hexphi = SUITE_FORMATS["hexphi"]
    if len(files) > 1 and fmt not in (None, hexphi):
        raise SuiteError(f"several files can only be read as hexphi, not {fmt.name}", subject=label)
    first = Path(files[0][2]).name
    if len(files) > 1 or fmt is hexphi or (fmt is None and HEXPHI_FILE.fullmatch(first)):
        tables = [(Path(p).name, read_hexphi_file(path, name=shown)) for shown, path, p in files]
        return _hexphi_table(tables, label), hexphi
    ((shown, path, published),) = files
    table = read_table(path, name=shown)
    return table, fmt or detect_format(table, published, prompt_column=prompt_column)


def _hexphi_table(files: list[tuple[str, Table]], name: str) -> Table:
    """HEx-PHI rows with the category and an id (``hexphi-<category>-<n>``) added."""
    rows: list[Row] = []
    for filename, table in files:
        match = HEXPHI_FILE.fullmatch(filename)
        number = int(match[1]) if match else 0
        category = HEXPHI_CATEGORIES.get(number, f"category_{number}") if match else ""
        for n, row in enumerate(table.rows, start=1):
            ident = f"hexphi-{category or 'uncategorised'}-{n:02d}"
            cells = {"prompt": row.cells.get("prompt"), "category": category, "id": ident}
            rows.append(Row(row.line, cells))
    if len(rows) > MAX_ROWS:
        raise SuiteError(f"more than {MAX_ROWS} rows", subject=name)
    return Table(name, ("prompt", "category", "id"), tuple(rows))


def _parse_hub_spec(text: str) -> tuple[str, str | None, str | None]:
    """``org/name[@revision][:path]`` -> (repo id, revision, path), each validated."""
    repo_part, _, filename = text.partition(":")
    repo_id, at, revision = repo_part.partition("@")
    try:
        validate_repo_id(repo_id)
        if at:
            validate_revision(revision)
        if filename:
            validate_filename(filename)
    except InvalidReferenceError as error:
        raise SuiteError(error.reason, subject=f"hf:{text}") from error
    return repo_id, (revision if at else None), (filename or None)


def _known_aliases(repo_id: str) -> tuple[str, ...]:
    """A Hub copy of a known benchmark (``walledai/AdvBench``) carries that benchmark's names."""
    lowered = repo_id.lower()
    for fmt in SUITE_FORMATS.values():
        if lowered in fmt.aliases:
            return fmt.aliases
    return ()
