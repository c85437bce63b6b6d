"""What a user writes after ``--suite``: options, then the file, folder, Hub dataset or name.

    [FORMAT:][KIND:][prompt=COLUMN:][contextual:]TARGET

Options come first, separated by ``:``, in any order: a format name (``xstest``), a kind
(``harmful``, ``benign``, ``capability``), ``prompt=COLUMN`` (the column that holds the
prompt) and ``contextual`` (HarmBench: include the contextual behaviors, their context
prepended). The first segment that is none of these starts the target, so ``hf:org/ds:x.csv``
and ``C:/data/x.csv`` stay whole.

>>> parse_spec("xstest:harmful:data/xstest_prompts.csv")
SuiteSpec(target='data/xstest_prompts.csv', format='xstest', kind='harmful', prompt_column=None, contextual=False)
>>> parse_spec("benign:prompt=question:hf:org/ds").target
'hf:org/ds'
"""  # noqa: E501

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from audit.errors import SuiteError
from audit.records import SuiteKind
from audit.suites.formats import SUITE_FORMATS
from lineage.vocabulary import SUITE_KINDS

SPEC_HELP = (
    "[FORMAT:][KIND:][prompt=COLUMN:][contextual:]FILE|FOLDER|HUB_ID|NAME; KIND is harmful,"
    " benign or capability; FORMAT one of " + ", ".join(SUITE_FORMATS)
)
_OPTION_WORDS = ("contextual",)


@dataclass(frozen=True)
class SuiteSpec:
    target: str
    format: str | None = None
    kind: SuiteKind | None = None
    prompt_column: str | None = None
    contextual: bool = False


def parse_spec(text: str) -> SuiteSpec:
    """Split the leading options off ``text``; an existing path is never split."""
    spec = SuiteSpec(target=text)
    if ":" not in text or Path(text).expanduser().exists():
        return spec
    segments = text.split(":")
    used = 0
    for segment in segments[:-1]:
        option = _option(segment, spec, text)
        if option is None:
            break
        spec, used = option, used + 1
    target = ":".join(segments[used:])
    if not target.strip():
        raise SuiteError(f"nothing to read after the options; expected {SPEC_HELP}", subject=text)
    return replace(spec, target=target)


def _option(segment: str, spec: SuiteSpec, text: str) -> SuiteSpec | None:
    word = segment.strip().lower()
    if word in SUITE_FORMATS:
        if spec.format is not None:
            raise SuiteError("two formats given", subject=text)
        return replace(spec, format=word)
    if word in SUITE_KINDS:
        if spec.kind is not None:
            raise SuiteError("two kinds given", subject=text)
        return replace(spec, kind=word)  # type: ignore[arg-type]
    if word.startswith("prompt="):
        column = segment.split("=", 1)[1].strip()
        if not column:
            raise SuiteError("prompt= needs a column name", subject=text)
        return replace(spec, prompt_column=column)
    if word in _OPTION_WORDS:
        return replace(spec, contextual=True)
    return None
