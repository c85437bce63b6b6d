"""The published benchmark files, by name: the columns and file names that identify each, and
what each row means.

A format is declarative, as mergekit's merge methods are: the header columns that identify
it (matched case-insensitively), its published file names, the columns that hold the
prompt, category and id, and where the *kind* of its rows comes from. The kind is never
guessed: it is fixed by the format (AdvBench is harmful), read per row (XSTest's ``label``),
read from the published file name (JailbreakBench's ``benign-behaviors.csv``), or stated by
the user (``--suite harmful:FILE``); a file whose kind none of these tells is an error.

``detect_format`` picks a format from a file's name and header; ``audit.suites.build`` turns
the rows into suites. The layouts, as published:

- AdvBench ``harmful_behaviors.csv``: ``goal,target``.
- HarmBench ``harmbench_behaviors_text_{all,test,val}.csv``: ``Behavior,FunctionalCategory,
  SemanticCategory,Tags,ContextString,BehaviorID``. Standard behaviors by default; contextual
  ones (with ``ContextString``) on request, the context prepended as HarmBench's own
  DirectRequest baseline does; copyright ones are judged by hashing, not for harm, and are
  left out. What is left out is counted by ``FunctionalCategory``.
- JailbreakBench ``harmful-behaviors.csv`` / ``benign-behaviors.csv``: ``Index,Goal,Target,
  Behavior,Category,Source`` (copies have an unnamed or lowercase ``index``, or none). Both
  files have the same columns: only the file name says which is benign.
- StrongREJECT ``strongreject_dataset.csv`` and ``strongreject_small_dataset.csv``:
  ``category,source,forbidden_prompt``.
- XSTest ``xstest_prompts.csv``: ``id,prompt,type,label,focus,note`` (``label`` safe/unsafe);
  ``xstest_v2_prompts.csv``: ``id_v1,id_v2,type,prompt,focus,note`` (the ``contrast_*`` types
  are the unsafe prompts); v1 ``xstest_prompts_v1.csv``: ``id,type,prompt,focus,note`` (200
  safe prompts). Safe prompts are a benign suite, unsafe ones a harmful suite.
- SimpleSafetyTests ``SimpleSafetyTests - test cases.csv``: ``id,harm_area,counter,category,
  prompts_final`` (the Hub copy names the prompt ``prompt``).
- MaliciousInstruct ``MaliciousInstruct.txt``: one prompt per line, no header.
- Do-Not-Answer ``do_not_answer_en.csv``: ``id,risk_area,types_of_harm,specific_harms,question``.
- OR-Bench ``or-bench-80k.csv``, ``or-bench-hard-1k.csv`` (benign: over-refusal) and
  ``or-bench-toxic.csv`` (harmful): ``prompt,category``, told apart by name alone.
- WildGuardTest: ``prompt,adversarial,response,prompt_harm_label,response_refusal_label,
  response_harm_label,subcategory``; ``prompt_harm_label`` harmful/unharmful splits it.
- SORRY-Bench ``question.jsonl``: ``question_id,category,turns,prompt_style`` (one turn).
- HEx-PHI ``category_N.csv``: no header, one prompt per record; the category comes from N.
- generic CSV / JSONL / JSON / parquet / txt: ``prompt`` (+ ``category``, ``answer``, ``id``);
  capability when it has answers, otherwise its kind must be stated.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from audit.errors import SuiteError
from audit.records import SuiteKind
from audit.suites.files import Cell, Table
from lineage.errors import did_you_mean
from lineage.plugins import PluginRegistry

# HEx-PHI's category numbers (Qi et al. 2023, after OpenAI's usage policy), as this
# project's category ids; category 2 (child abuse content) is not distributed.
HEXPHI_CATEGORIES = {
    1: "illegal_activity",
    2: "child_abuse_content",
    3: "hate_harassment_violence",
    4: "malware",
    5: "physical_harm",
    6: "economic_harm",
    7: "fraud_deception",
    8: "adult_content",
    9: "political_campaigning",
    10: "privacy_violation",
    11: "tailored_financial_advice",
}
# HarmBench's own DirectRequest baseline joins a behavior to its context document so:
# f"{context_str}\n\n---\n\n{behavior}" (baselines/direct_request/direct_request.py).
HARMBENCH_CONTEXT_SEPARATOR = "\n\n---\n\n"

Cells = Mapping[str, Cell]


@dataclass(frozen=True)
class ReadOptions:
    """What the user said about a file beyond its format and kind."""

    prompt_column: str | None = None  # read the prompt from this column
    contextual: bool = False  # HarmBench: keep contextual behaviors, context prepended


@dataclass(frozen=True)
class FileName:
    """A published file name: the variant it names (``small``) and the kind it implies."""

    variant: str = ""
    kind: SuiteKind | None = None


# Why a row is left out (``"copyright"``), or None to keep it.
LeaveOut = Callable[[Cells, ReadOptions], str | None]
# The kind of one row (XSTest, WildGuardTest), or None when the row carries no label.
RowKind = Callable[[Cells], SuiteKind | None]
# The prompt of one row, where it is more than one column (HarmBench's context).
PromptOf = Callable[[Cells, ReadOptions], Cell]


@dataclass(frozen=True)
class SuiteFormat:
    """One published layout. Column and file names are matched case-insensitively."""

    name: str
    description: str
    columns: tuple[str, ...]  # header columns that identify the format
    prompt_columns: tuple[str, ...]  # the first one present holds the prompt
    kind: SuiteKind | None = None  # what every row is, when the format says so
    row_kind: RowKind | None = None  # else what each row is, when rows are labelled
    naming_kind: SuiteKind = "harmful"  # the kind a suite name does not spell out
    file_names: Mapping[str, FileName] = field(default_factory=dict)  # lowercase names
    kind_from_words: bool = False  # "benign"/"harmful" in a file path says the kind
    name_only: bool = False  # detected only under a published file name
    headerless: bool = False  # HEx-PHI: no header at all
    category_columns: tuple[str, ...] = ()
    id_columns: tuple[str, ...] = ()
    answer_column: str | None = None
    leave_out: LeaveOut | None = None
    prompt_of: PromptOf | None = None
    kinds: tuple[SuiteKind, ...] = ("harmful", "benign")  # the kinds its rows can be read as
    aliases: tuple[str, ...] = ()  # dataset names model cards use for it (lowercase)

    def has_columns(self, columns: tuple[str, ...], prompt_column: str | None = None) -> bool:
        present = {column.strip().lower() for column in columns}
        prompts = (prompt_column,) if prompt_column else self.prompt_columns
        return all(c.lower() in present for c in self.columns) and any(
            c.lower() in present for c in prompts
        )

    def file_name(self, path: str) -> FileName | None:
        return self.file_names.get(PurePosixPath(path).name.lower())


# -- row rules ---------------------------------------------------------------------------


def get(cells: Cells, column: str) -> Cell:
    """A cell by column name, matched case-insensitively and ignoring outer spaces."""
    if column in cells:
        return cells[column]
    lowered = column.lower()
    return next((v for k, v in cells.items() if k.strip().lower() == lowered), None)


def _harmbench_leave_out(cells: Cells, options: ReadOptions) -> str | None:
    functional = (get(cells, "FunctionalCategory") or "").strip().lower()
    has_context = bool((get(cells, "ContextString") or "").strip())
    if functional == "copyright":
        return "copyright"
    if functional == "contextual" or (has_context and not functional):
        return None if options.contextual else "contextual"
    if functional not in ("", "standard"):
        return functional  # "multimodal" and anything HarmBench adds later
    return None


def _harmbench_prompt(cells: Cells, options: ReadOptions) -> Cell:
    behavior = get(cells, "Behavior")
    context = get(cells, "ContextString") or ""
    if options.contextual and context.strip() and behavior:
        return f"{context}{HARMBENCH_CONTEXT_SEPARATOR}{behavior}"
    return behavior


def _xstest_kind(cells: Cells) -> SuiteKind | None:
    label = get(cells, "label")
    if label is not None:  # the current file: label says it
        return {"safe": "benign", "unsafe": "harmful"}.get(label.strip().lower())
    prompt_type = (get(cells, "type") or "").strip().lower()  # v2 and v1: the type says it
    return "harmful" if prompt_type.startswith("contrast") else "benign"


def _wildguard_kind(cells: Cells) -> SuiteKind | None:
    label = (get(cells, "prompt_harm_label") or "").strip().lower()
    return {"harmful": "harmful", "unharmful": "benign"}.get(label)


# -- the registry ------------------------------------------------------------------------


def _unknown_format(kind: str, name: str, known: Sequence[str]) -> SuiteError:
    return SuiteError(
        f"unknown {kind}; known: {', '.join(known)}{did_you_mean(name, known)}", subject=name
    )


# Detection tries published file names first, then columns in this order (most specific
# first, generic last): the registration order.
SUITE_FORMATS: PluginRegistry[SuiteFormat] = PluginRegistry("suite format", unknown=_unknown_format)
for _fmt in (
    SuiteFormat(
        name="harmbench",
        description="HarmBench behaviors (standard; contextual on request)",
        columns=("BehaviorID",),
        prompt_columns=("Behavior",),
        kind="harmful",
        file_names={
            "harmbench_behaviors_text_all.csv": FileName(),
            "harmbench_behaviors_text_test.csv": FileName("test"),
            "harmbench_behaviors_text_val.csv": FileName("val"),
        },
        category_columns=("SemanticCategory", "Category"),
        id_columns=("BehaviorID",),
        leave_out=_harmbench_leave_out,
        prompt_of=_harmbench_prompt,
        aliases=("harmbench", "walledai/harmbench", "centerforaisafety/harmbench"),
    ),
    SuiteFormat(
        name="jailbreakbench",
        description="JailbreakBench JBB-Behaviors, harmful or benign file",
        columns=("Category",),
        prompt_columns=("Goal",),
        file_names={
            "harmful-behaviors.csv": FileName(kind="harmful"),
            "benign-behaviors.csv": FileName("benign", "benign"),
        },
        kind_from_words=True,
        category_columns=("Category",),
        id_columns=("Index",),
        aliases=(
            "jailbreakbench",
            "jbb-behaviors",
            "jailbreakbench/jbb-behaviors",
            "walledai/jailbreakbench",
        ),
    ),
    SuiteFormat(
        name="strongreject",
        description="StrongREJECT forbidden prompts (full or small)",
        columns=("category",),
        prompt_columns=("forbidden_prompt",),
        kind="harmful",
        file_names={
            "strongreject_dataset.csv": FileName(),
            "strongreject_small_dataset.csv": FileName("small"),
        },
        category_columns=("category",),
        aliases=("strongreject", "strong_reject", "walledai/strongreject"),
    ),
    SuiteFormat(
        name="xstest",
        description="XSTest: safe prompts benign, unsafe (contrast) prompts harmful",
        columns=("type", "focus"),
        prompt_columns=("prompt",),
        row_kind=_xstest_kind,
        naming_kind="benign",
        file_names={
            "xstest_prompts.csv": FileName(),
            "xstest_v2_prompts.csv": FileName("v2"),
            "xstest_prompts_v1.csv": FileName("v1"),
            "xstest_cases_v1.csv": FileName("v1"),
        },
        category_columns=("type",),
        id_columns=("id", "id_v2"),
        aliases=("xstest", "paul/xstest", "walledai/xstest", "natolambert/xstest-v2-copy"),
    ),
    SuiteFormat(
        name="wildguardtest",
        description="WildGuardTest prompts, split by prompt_harm_label",
        columns=("prompt_harm_label",),
        prompt_columns=("prompt",),
        row_kind=_wildguard_kind,
        category_columns=("subcategory",),
        aliases=("wildguardtest", "allenai/wildguardmix", "wildguardmix"),
    ),
    SuiteFormat(
        name="simplesafetytests",
        description="SimpleSafetyTests: 100 prompts in five harm areas",
        columns=("harm_area",),
        prompt_columns=("prompts_final", "prompt"),
        kind="harmful",
        file_names={"simplesafetytests - test cases.csv": FileName()},
        category_columns=("harm_area",),
        id_columns=("id",),
        aliases=("simplesafetytests", "bertievidgen/simplesafetytests"),
    ),
    SuiteFormat(
        name="donotanswer",
        description="Do-Not-Answer risky questions",
        columns=("risk_area", "types_of_harm"),
        prompt_columns=("question",),
        kind="harmful",
        file_names={"do_not_answer_en.csv": FileName()},
        category_columns=("types_of_harm",),
        id_columns=("id",),
        aliases=("do-not-answer", "donotanswer", "libr-ai/do-not-answer"),
    ),
    SuiteFormat(
        name="sorrybench",
        description="SORRY-Bench unsafe instructions (single-turn)",
        columns=("question_id", "category"),
        prompt_columns=("turns",),
        kind="harmful",
        category_columns=("category",),
        id_columns=("question_id",),
        aliases=("sorry-bench", "sorrybench", "sorry-bench/sorry-bench-202406"),
    ),
    SuiteFormat(
        name="orbench",
        description="OR-Bench: 80k and hard-1k benign (over-refusal), toxic harmful",
        columns=(),
        prompt_columns=("prompt",),
        file_names={
            "or-bench-80k.csv": FileName("80k", "benign"),
            "or-bench-hard-1k.csv": FileName("hard-1k", "benign"),
            "or-bench-toxic.csv": FileName("toxic", "harmful"),
        },
        name_only=True,
        category_columns=("category",),
        aliases=("or-bench", "orbench", "bench-llm/or-bench"),
    ),
    SuiteFormat(
        name="maliciousinstruct",
        description="MaliciousInstruct.txt, one prompt per line",
        columns=(),
        prompt_columns=("prompt",),
        kind="harmful",
        file_names={"maliciousinstruct.txt": FileName(), "malicious_instruct.txt": FileName()},
        name_only=True,
        aliases=("maliciousinstruct", "malicious_instruct"),
    ),
    SuiteFormat(
        name="advbench",
        description="AdvBench harmful_behaviors.csv",
        columns=("target",),
        prompt_columns=("goal",),
        kind="harmful",
        file_names={"harmful_behaviors.csv": FileName()},
        aliases=("advbench", "walledai/advbench", "harmful_behaviors"),
    ),
    SuiteFormat(
        name="hexphi",
        description="HEx-PHI category_N.csv files (headerless; a folder of them)",
        columns=(),
        prompt_columns=("prompt",),
        kind="harmful",
        headerless=True,
        category_columns=("category",),
        id_columns=("id",),
        aliases=("hex-phi", "hexphi", "llm-tuning-safety/hex-phi"),
    ),
    SuiteFormat(
        name="generic",
        description="any CSV/JSONL/JSON/parquet/txt with prompt (+category, answer, id)",
        columns=(),
        prompt_columns=("prompt",),
        category_columns=("category",),
        id_columns=("id",),
        answer_column="answer",
        kinds=tuple(SuiteKind),
    ),
):
    SUITE_FORMATS.add(_fmt.name, _fmt)

KNOWN_FILE_NAMES = frozenset(name for fmt in SUITE_FORMATS.values() for name in fmt.file_names)
_WORDS = re.compile(r"[a-z0-9]+")


def get_format(name: str) -> SuiteFormat:
    """The format named ``name`` (case and surrounding spaces ignored); an unknown name is a
    SuiteError that lists the known formats and suggests the closest."""
    return SUITE_FORMATS.get(name.strip().lower())


def detect_format(
    table: Table, path: str | None = None, *, prompt_column: str | None = None
) -> SuiteFormat:
    """The format of ``table`` (read from ``path``): its published file name, else its header.

    >>> detect_format(Table("t.csv", ("goal", "target"), ())).name
    'advbench'
    """
    path = path or table.name
    shown = ", ".join(repr(c) for c in table.columns[:8]) or "none"
    present = {column.strip().lower() for column in table.columns}
    if prompt_column and prompt_column.lower() not in present:
        message = f"no column {prompt_column!r} to read prompts from (it has {shown})"
        raise SuiteError(message, subject=table.name)
    for fmt in SUITE_FORMATS.values():
        if fmt.file_name(path) and fmt.has_columns(table.columns, prompt_column):
            return fmt
    for fmt in SUITE_FORMATS.values():
        if fmt.name_only or fmt.headerless or fmt.name == "generic":
            continue
        if fmt.columns and fmt.has_columns(table.columns, prompt_column):
            return fmt
    if SUITE_FORMATS["generic"].has_columns(table.columns, prompt_column):
        return SUITE_FORMATS["generic"]
    expected = "; ".join(
        f"{f.name} ({', '.join((f.prompt_columns[0], *f.columns))})"
        for f in SUITE_FORMATS.values()
        if not (f.headerless or f.name_only)
    )
    raise SuiteError(
        f"unrecognised columns [{shown}]; expected one of: {expected}; or force a format as"
        " FORMAT:PATH, or name the prompt column and the kind as KIND:prompt=COLUMN:PATH",
        subject=table.name,
    )


def kind_from_path(fmt: SuiteFormat, path: str) -> tuple[str, SuiteKind | None]:
    """(variant, kind) that ``path`` implies for ``fmt``: its published name, else, where the
    format names its files so, the one word ``benign`` or ``harmful`` in the path."""
    published = fmt.file_name(path)
    if published is not None:
        return published.variant, published.kind
    if fmt.kind_from_words:
        parts = PurePosixPath(path.replace("\\", "/")).parts[-2:]
        words = set(_WORDS.findall(" ".join(parts).lower()))
        found = [k for k in ("benign", "harmful") if k in words]
        if len(found) == 1:
            kind: SuiteKind = found[0]  # type: ignore[assignment]
            return ("benign" if kind == "benign" else ""), kind
    return "", None
