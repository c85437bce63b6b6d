"""Judges: turn (prompt, response) pairs into verdicts, behind a registry keyed by name.

    judge = get_judge("refusal")
    verdicts = judge.judge("harmful", [(prompt, response), ...])
    judge.info  # JudgeInfo(id, version, model): part of every run's cache key

    judge = get_judge("wildguard", completer_factory=make_completer)  # model judges

Each judge is one ``JudgeSpec`` in ``JUDGES`` (a ``PluginRegistry``): how to build it, the
classifier model it needs (if any) and how many tokens that model may generate. Every judge
decides capability suites by normalised exact match and flags degenerate output first (see
base.py). ``completer_factory(model_id)`` returns a function from fully formatted prompts
(special tokens written out: tokenize with ``add_special_tokens=False``) to greedy
completions of at most ``JUDGE_MODELS[model_id]`` new tokens; it is called on the first
item that needs the model, never at import or construction.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from audit.errors import JudgeError
from audit.judges import llama_guard, wildguard
from audit.judges.base import Completer, CompleterFactory, Judge
from audit.judges.refusal import refusal_judge
from lineage.errors import did_you_mean
from lineage.plugins import PluginRegistry

JudgeBuilder = Callable[[CompleterFactory | None], Judge]


@dataclass(frozen=True)
class JudgeSpec:
    """One judge: its name, how to build it, and the classifier model it needs (if any)."""

    name: str
    build: JudgeBuilder
    description: str
    model: str | None = None  # the judge model's Hub id; None: no model (rules only)
    max_new_tokens: int | None = None  # greedy tokens its completer should allow

    @property
    def needs_model(self) -> bool:
        return self.model is not None


def _unknown_judge(kind: str, name: str, known: Sequence[str]) -> JudgeError:
    listed = ", ".join(sorted(known))
    hint = did_you_mean(name, known)
    return JudgeError(f"unknown {kind}; known judges: {listed}{hint}", subject=f"judge {name!r}")


JUDGES: PluginRegistry[JudgeSpec] = PluginRegistry("judge", unknown=_unknown_judge)


def _register(spec: JudgeSpec) -> None:
    JUDGES.add(spec.name, spec)


_register(
    JudgeSpec(
        "refusal",
        lambda _factory: refusal_judge(),
        "refusal keywords and degenerate-output rules; no model",
    )
)


def _llama_guard(size: str) -> JudgeSpec:
    return JudgeSpec(
        f"llama-guard-3-{size}",
        lambda factory: llama_guard.llama_guard_judge(size, completer_factory=factory),
        f"Llama Guard 3 {size.upper()} safety classifier",
        model=llama_guard.MODEL_IDS[size],
        max_new_tokens=llama_guard.MAX_NEW_TOKENS,
    )


_register(_llama_guard("1b"))
_register(_llama_guard("8b"))
_register(
    JudgeSpec(
        "wildguard",
        lambda factory: wildguard.wildguard_judge(completer_factory=factory),
        "WildGuard safety and refusal classifier",
        model=wildguard.MODEL_ID,
        max_new_tokens=wildguard.MAX_NEW_TOKENS,
    )
)

# Judge model id -> max_new_tokens its completer should allow (greedy decoding), from JUDGES.
JUDGE_MODELS: dict[str, int] = {
    spec.model: spec.max_new_tokens
    for spec in JUDGES.values()
    if spec.model is not None and spec.max_new_tokens is not None
}


def get_judge(name: str, *, completer_factory: CompleterFactory | None = None) -> Judge:
    """The judge registered as ``name``; an unknown name raises a JudgeError that lists the
    known judges and suggests the closest."""
    return JUDGES.get(name).build(completer_factory)


__all__ = [
    "JUDGES",
    "JUDGE_MODELS",
    "Completer",
    "CompleterFactory",
    "Judge",
    "JudgeSpec",
    "get_judge",
]
