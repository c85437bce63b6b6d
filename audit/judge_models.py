"""Judge models (Llama Guard 3, WildGuard) run through the same generation engine, on the
backend of the audit (``settings.backend``: transformers or vLLM).

A model judge hands over fully formatted prompts (its published format, special tokens
written out), so they are tokenised without adding special tokens and decoded greedily.
Judge weights come from the Hub through its cache, safetensors only, like audited models.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from audit.backends import resolve_backend
from audit.errors import JudgeError
from audit.generation import MODEL_FILE_PATTERNS, GenerationSettings
from audit.judges import JUDGE_MODELS
from lineage.errors import LineageError
from lineage.sources.hub import HubSource

DEFAULT_JUDGE_MAX_NEW_TOKENS = 64

Completer = Callable[[Sequence[str]], list[str]]


def hub_completer_factory(
    settings: GenerationSettings, source: HubSource | None = None
) -> Callable[[str], Completer]:
    """``factory(model_id)`` loads the judge once, at its first use, and returns a completer."""

    def factory(model_id: str) -> Completer:
        # Each judge's own budget (Llama Guard 64, WildGuard 128, as their tools decode).
        judge_settings = replace(
            settings,
            max_new_tokens=JUDGE_MODELS.get(model_id, DEFAULT_JUDGE_MAX_NEW_TOKENS),
            trust_remote_code=False,
            allow_pickle=False,
        )
        hub = source or HubSource()
        try:
            folder = hub.model_folder(model_id, "main", MODEL_FILE_PATTERNS)
        except LineageError as error:
            raise JudgeError(
                f"cannot fetch the judge model: {error.reason}", subject=model_id
            ) from error
        # auto: the judge's own architecture decides (it is not one of the compared models)
        backend = resolve_backend(judge_settings.backend, [folder])
        loaded = backend.load(folder, judge_settings, label=model_id)

        def complete(prompts: Sequence[str]) -> list[str]:
            # Formatted prompts: both backends tokenize them without adding special tokens.
            return backend.generate(loaded, list(prompts), judge_settings)

        return complete

    return factory
