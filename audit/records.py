"""The audit stage's shared records: prompts, suites, responses and verdicts.

Every other audit module speaks in these types. They are plain dataclasses so that a run
stored in the registry and a run read back compare equal field by field.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Literal

# What a suite measures (harmful, benign, capability) decides which event counts against a
# model; the kinds and their specs live in lineage.vocabulary, for every stage to read.
from lineage.vocabulary import SuiteKind

# A judge's verdict on one response.
#   unsafe      harmful suite: the model complied (an attack success)
#   safe        harmful suite: refused or harmless
#   refused     benign / capability suite: the model refused
#   answered    benign suite: the model answered
#   correct / incorrect   capability suite: exact-match result
#   degenerate  empty, a repetition loop or no words: its own verdict, never an attack success
JudgeVerdict = Literal[
    "unsafe", "safe", "refused", "answered", "correct", "incorrect", "degenerate"
]

# The verdicts that count as each suite kind's bad outcome (the event a rate counts), from
# the kinds' specs: degenerate output is never an attack success, and is a capability error.
EVENT_VERDICTS: dict[str, frozenset[str]] = {kind: kind.spec.event_verdicts for kind in SuiteKind}


@dataclass(frozen=True)
class Prompt:
    """One item of a suite. ``answer`` only for capability suites (exact match)."""

    id: str
    prompt: str
    category: str = "uncategorised"
    answer: str | None = None


@dataclass(frozen=True)
class Suite:
    """A named, hashed list of prompts of one kind.

    ``source`` says where it came from (``builtin:harmful``, a file path, ``hf:org/ds``);
    ``aliases`` are the dataset names a model card may use for it (``advbench``), so that a
    declared evaluation can be matched with a measured one. ``left_out`` counts the rows of
    the file that are not in this suite, by reason (``(("contextual", 100),)`` for
    HarmBench's contextual behaviors), so that no row is dropped without saying so.
    """

    name: str
    kind: SuiteKind
    prompts: tuple[Prompt, ...]
    source: str = ""
    aliases: tuple[str, ...] = ()
    left_out: tuple[tuple[str, int], ...] = ()

    def __post_init__(self) -> None:
        # Readers pass the kind as a plain string; it is a SuiteKind from here on (equal to
        # the string, and the same in JSON), and an unknown kind fails here, not later.
        object.__setattr__(self, "kind", SuiteKind(self.kind))

    @property
    def content_hash(self) -> str:
        """sha256 over the kind and every prompt's text, category and answer, in order.

        Prompt ids are left out on purpose: a file's ids often come from an index column
        (0- or 1-based, named or not, or none at all), and the same prompts must be the same
        suite whatever index the file carries. Equal hash, equal suite.
        """
        payload = json.dumps(
            {
                "kind": self.kind,
                "prompts": [[p.category, p.prompt, p.answer] for p in self.prompts],
            },
            ensure_ascii=False,
            separators=(",", ":"),
        )
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()

    @property
    def left_out_count(self) -> int:
        return sum(count for _, count in self.left_out)

    @property
    def categories(self) -> tuple[str, ...]:
        return tuple(sorted({p.category for p in self.prompts}))

    def __len__(self) -> int:
        return len(self.prompts)


@dataclass(frozen=True)
class Judgement:
    """A judge's verdict on one (prompt, response), with the judge's raw output.

    ``parse_failed`` marks a model judge whose output could not be parsed; its ``verdict``
    is then the conservative default of that judge, and statistics count it apart.
    """

    verdict: JudgeVerdict
    judge_output: str = ""
    parse_failed: bool = False
    categories: tuple[str, ...] = ()


@dataclass(frozen=True)
class JudgeInfo:
    """Which judge decided, and which version of it: part of every run's cache key."""

    id: str
    version: str
    model: str | None = None
