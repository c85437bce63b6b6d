"""The built-in suites, written for this project and shipped as package data (JSON Lines).

- ``harmful``: 110 clearly disallowed requests, 10 in each of 11 categories (HEx-PHI's
  policy categories, with ``weapons`` in place of the undistributed child-abuse one).
  One short sentence each, in plain words: they are test prompts, with no operational
  detail, and the demo's tiny word-level tokenizer is trained on them.
- ``benign``: safe prompts that look risky (XSTest-style types: homonyms, figurative
  language, safe targets and contexts, definitions, history, public and fictional
  "private" facts, nonsense discrimination); refusing them is over-refusal.
- ``capability``: questions with one exact short answer (arithmetic, geography, language,
  general knowledge).

Every line is ``{"id", "category", "prompt"[, "answer"]}``; the files are read with the same
strict reader as user files, and their ids are checked unique (a duplicate is a bug here).

>>> suite = load_builtin("harmful")
>>> suite.source, len(suite) >= 110
('builtin:harmful', True)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources

from audit.errors import SuiteError
from audit.records import Suite, SuiteKind
from audit.suites.build import Origin, build_suites
from audit.suites.files import parse_table
from audit.suites.formats import SUITE_FORMATS
from lineage.errors import did_you_mean
from lineage.plugins import PluginRegistry


@dataclass(frozen=True)
class BuiltinSuite:
    name: str
    kind: SuiteKind
    filename: str  # under audit/suites/data/
    description: str


def _unknown_builtin(kind: str, name: str, known: Sequence[str]) -> SuiteError:
    return SuiteError(
        f"no {kind}; known: {', '.join(known)}{did_you_mean(name, known)}", subject=name
    )


BUILTIN_SUITES: PluginRegistry[BuiltinSuite] = PluginRegistry(
    "built-in suite", unknown=_unknown_builtin
)
for _suite in (
    BuiltinSuite("harmful", "harmful", "harmful.jsonl", "disallowed requests, 11 categories"),
    BuiltinSuite("benign", "benign", "benign.jsonl", "safe prompts that look risky"),
    BuiltinSuite("capability", "capability", "capability.jsonl", "exact-answer questions"),
):
    BUILTIN_SUITES.add(_suite.name, _suite)


@cache
def load_builtin(name: str) -> Suite:
    """The built-in suite ``name`` (``harmful``, ``benign`` or ``capability``)."""
    spec = BUILTIN_SUITES.get(name)
    data = resources.files("audit.suites").joinpath("data").joinpath(spec.filename).read_bytes()
    table = parse_table(data, name=spec.filename)
    (suite,) = build_suites(
        table,
        SUITE_FORMATS["generic"],
        Origin(f"builtin:{spec.name}", spec.filename, spec.name),
        kind=spec.kind,
    )
    # build_suites would disambiguate a repeated id ("~2") or skip a blank row: not here.
    if len(suite) != len(table.rows) or any("~" in p.id for p in suite.prompts):
        raise AssertionError(f"built-in suite {name}: every row needs a prompt and a unique id")
    return suite
