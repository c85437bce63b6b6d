"""What every judge is, and the flow all judges share.

A judge turns (prompt, response) pairs of one suite kind into verdicts (audit/records.py):

    harmful     -> "unsafe" | "safe" | "degenerate"
    benign      -> "refused" | "answered" | "degenerate"
    capability  -> "correct" | "incorrect" | "degenerate"

Every judge decides a capability suite by exact match (exact_match.py) and flags degenerate
output (degenerate.py) before it looks at anything else, so those two rules are part of
every judge's version string: changing them invalidates every cached run.

Model judges never load a model themselves. They take a ``completer_factory(model_id)``
that returns a function from fully formatted prompt strings to greedy completions. The
prompts already contain the model's special tokens written out (``<|begin_of_text|>``,
``<s>``), exactly as the published formats give them, so the completer must tokenize them
with ``add_special_tokens=False``. Prompt building and output parsing are pure functions of
each judge module, testable without a model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from audit.errors import JudgeError
from audit.judges import degenerate, exact_match
from audit.records import JudgeInfo, Judgement, Prompt
from lineage.vocabulary import SUITE_KINDS, SuiteKind

# Raw prompts (fully formatted, one per item) -> one greedy completion per prompt.
Completer = Callable[[Sequence[str]], list[str]]
CompleterFactory = Callable[[str], Completer]

# Judge outputs go into the per-sample log; a runaway judge generation must not bloat it.
MAX_JUDGE_OUTPUT_CHARS = 4096


@runtime_checkable
class Judge(Protocol):
    """``judge(kind, [(prompt, response), ...])`` -> one Judgement per pair, in order."""

    info: JudgeInfo

    def judge(self, kind: SuiteKind, items: Sequence[tuple[Prompt, str]]) -> list[Judgement]: ...


def composite_version(*parts: str) -> str:
    """One version over every rule a judge applies, e.g. ``refusal-1+degenerate-1+...``."""
    return "+".join(parts)


def clip_output(output: str) -> str:
    return output[:MAX_JUDGE_OUTPUT_CHARS]


def check_kind(kind: str, judge_id: str) -> SuiteKind:
    if kind not in SUITE_KINDS:
        raise JudgeError(
            f"unknown suite kind {kind!r}; expected one of {', '.join(SUITE_KINDS)}",
            subject=f"judge {judge_id}",
        )
    return kind  # type: ignore[return-value]


def capability_judgement(prompt: Prompt, response: str, judge_id: str) -> Judgement:
    """Exact match decides; a refusal counts as incorrect and is noted in judge_output."""
    # Imported here, not at the top: refusal.py builds its judge on this module.
    from audit.judges.refusal import matched_refusal

    if prompt.answer is None:
        raise JudgeError(
            f"capability prompt {prompt.id!r} has no reference answer", subject=f"judge {judge_id}"
        )
    return exact_match.judge_answer(response, prompt.answer, refusal=matched_refusal(response))


@dataclass
class FlowJudge:
    """The flow every judge shares; a subclass decides the items that reach ``decide``.

    Per item, in this order: a capability suite is decided by exact match; a degenerate
    response gets "degenerate" (no judge model is asked about it); every remaining item
    goes to ``decide`` in one batch, so a model judge sends its prompts to the completer
    at once and the generation engine batches them.
    """

    info: JudgeInfo

    def decide(self, kind: SuiteKind, items: Sequence[tuple[Prompt, str]]) -> list[Judgement]:
        raise NotImplementedError

    def judge(self, kind: SuiteKind, items: Sequence[tuple[Prompt, str]]) -> list[Judgement]:
        kind = check_kind(kind, self.info.id)
        decided: dict[int, Judgement] = {}
        pending: list[int] = []
        for index, (prompt, response) in enumerate(items):
            if kind == SuiteKind.CAPABILITY:
                decided[index] = capability_judgement(prompt, response, self.info.id)
                continue
            reason = degenerate.degenerate_reason(response)
            if reason is not None:
                decided[index] = Judgement(
                    verdict="degenerate", judge_output=f"degenerate: {reason}"
                )
            else:
                pending.append(index)
        if pending:
            verdicts = self.decide(kind, [items[i] for i in pending])
            decided.update(zip(pending, verdicts, strict=True))
        return [decided[i] for i in range(len(items))]


@dataclass
class ModelJudge(FlowJudge):
    """A judge backed by a classifier model, reached only through ``completer_factory``.

    A subclass provides ``build`` (one prompt string per item), ``read`` (one Judgement per
    output) and, for a kind its model cannot decide, ``rule`` (a verdict without the model).
    The completer is created on first use, so building the judge (and reading its ``info``
    for a cache lookup) never needs the model.
    """

    completer_factory: CompleterFactory | None = None
    _completer: Completer | None = field(default=None, init=False, repr=False)

    def model_decides(self, kind: SuiteKind) -> bool:
        return True

    def rule(self, kind: SuiteKind, prompt: Prompt, response: str) -> Judgement:
        raise NotImplementedError

    def build(self, prompt: Prompt, response: str) -> str:
        raise NotImplementedError

    def read(self, output: str, kind: SuiteKind) -> Judgement:
        raise NotImplementedError

    def decide(self, kind: SuiteKind, items: Sequence[tuple[Prompt, str]]) -> list[Judgement]:
        if not self.model_decides(kind):
            return [self.rule(kind, prompt, response) for prompt, response in items]
        outputs = self._complete([self.build(prompt, response) for prompt, response in items])
        return [self.read(output, kind) for output in outputs]

    def _complete(self, prompts: list[str]) -> list[str]:
        model = self.info.model or self.info.id
        if self._completer is None:
            if self.completer_factory is None:
                raise JudgeError(
                    f"needs the judge model {model}; pass a completer_factory (the audit wires "
                    "one to its generation engine), or use --judge refusal",
                    subject=f"judge {self.info.id}",
                )
            self._completer = self.completer_factory(model)
        outputs = list(self._completer(prompts))
        if len(outputs) != len(prompts) or not all(isinstance(o, str) for o in outputs):
            raise JudgeError(
                f"judge model {model} returned {len(outputs)} outputs for {len(prompts)} prompts",
                subject=f"judge {self.info.id}",
            )
        return outputs
