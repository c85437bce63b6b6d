"""Generation backends: how a model is loaded and answers a suite's prompts.

Two plug-ins keyed by name (``BACKENDS``), chosen by ``--backend auto|transformers|vllm``:

- ``transformers``: ``audit.generation.load_model`` and its batched greedy ``generate``;
- ``vllm``: a ``vllm.LLM`` engine that gets the whole suite at once (its scheduler
  batches), the same chat-formatted prompts tokenized by the same tokenizer (token ids, so
  nothing is re-tokenized), greedy decoding (``temperature=0``) and the same
  ``max_new_tokens``. A PEFT LoRA adapter is served with vLLM's LoRA support on its base.

What a backend changes in the text is part of the generation key (``key_fields``): runs of
two backends, or two versions of one, never share a cache entry. The transformers backend
adds nothing to the key, so runs recorded before backends existed stay valid.

``resolve_backend("auto", ...)`` picks vLLM when it is installed and supports every model to
evaluate, else transformers, once per audit: a child and its parents always run on one
backend.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from audit.errors import GenerationError, ModelLoadError
from audit.generation import (
    GenerationSettings,
    LoadedModel,
    environment_record,
    generate,
    load_model,
    load_tokenizer,
)
from lineage.plugins import PluginRegistry

AUTO = "auto"


class GenerationBackend(Protocol):
    name: str

    def key_fields(self) -> dict[str, Any]:
        """What this backend adds to the generation key ({} for transformers)."""
        ...

    def load(
        self,
        folder: Path,
        settings: GenerationSettings,
        *,
        label: str,
        adapter_folder: Path | None = None,
    ) -> LoadedModel: ...

    def generate(
        self, loaded: LoadedModel, texts: Sequence[str], settings: GenerationSettings
    ) -> list[str]: ...

    def environment(self, loaded: LoadedModel, settings: GenerationSettings) -> dict[str, Any]: ...


@dataclass(frozen=True)
class BackendPlugin:
    name: str
    build: Callable[[], GenerationBackend]
    available: Callable[[], bool]
    supports: Callable[[Path], bool]  # whether a model folder (its config.json) can run there


BACKENDS: PluginRegistry[BackendPlugin] = PluginRegistry("generation backend")


class TransformersBackend:
    """Today's code path: transformers' ``generate``, batched longest first."""

    name = "transformers"

    def key_fields(self) -> dict[str, Any]:
        return {}

    def load(
        self,
        folder: Path,
        settings: GenerationSettings,
        *,
        label: str,
        adapter_folder: Path | None = None,
    ) -> LoadedModel:
        return load_model(folder, settings, label=label, adapter_folder=adapter_folder)

    def generate(
        self, loaded: LoadedModel, texts: Sequence[str], settings: GenerationSettings
    ) -> list[str]:
        return generate(loaded, texts, settings)

    def environment(self, loaded: LoadedModel, settings: GenerationSettings) -> dict[str, Any]:
        return {**environment_record(loaded, settings.batch_size), "backend": self.name}


class VllmBackend:
    """A vLLM engine per model; the whole suite in one call."""

    name = "vllm"

    def __init__(self) -> None:
        import vllm

        self.version = vllm.__version__

    def key_fields(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "backend_version": self.version,
            "backend_settings": {"enforce_eager": True, "seed": 0, "temperature": 0.0},
        }

    def load(
        self,
        folder: Path,
        settings: GenerationSettings,
        *,
        label: str,
        adapter_folder: Path | None = None,
    ) -> LoadedModel:
        # The engine in this process: no spawned engine-core process to bootstrap from a CLI,
        # a test or a Ray worker, and its memory freed with the model.
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        from vllm import LLM

        device = settings.resolved_device()
        dtype = settings.resolved_dtype(device)
        tokenizer_folder = adapter_folder if _has_tokenizer(adapter_folder) else folder
        tokenizer = load_tokenizer(
            tokenizer_folder, label, trust_remote_code=settings.trust_remote_code
        )
        engine_options: dict[str, Any] = {}
        adapter_note = None
        if adapter_folder is not None:
            rank = _adapter_rank(adapter_folder, label)
            engine_options = {"enable_lora": True, "max_lora_rank": max(8, rank), "max_loras": 1}
            adapter_note = f"{adapter_folder} (vLLM LoRA on its base)"
        try:
            engine = LLM(
                model=str(folder),
                tokenizer=str(tokenizer_folder),
                dtype=dtype,
                seed=0,
                enforce_eager=True,
                trust_remote_code=settings.trust_remote_code,
                load_format="safetensors",
                max_model_len=_max_model_len(folder),
                **engine_options,
            )
        except Exception as error:  # vLLM raises many kinds for an unsupported model
            raise ModelLoadError(
                f"vLLM cannot serve it: {_first_line(error)}", subject=label
            ) from error
        loaded = LoadedModel(engine, tokenizer, device, dtype, label, adapter=adapter_note)
        if adapter_folder is not None:
            from vllm.lora.request import LoRARequest

            loaded.notes.append("lora")
            loaded.model = (engine, LoRARequest("adapter", 1, str(adapter_folder)))
        else:
            loaded.model = (engine, None)
        return loaded

    def generate(
        self, loaded: LoadedModel, texts: Sequence[str], settings: GenerationSettings
    ) -> list[str]:
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        engine, lora = loaded.model
        # The same ids transformers is given: the template already wrote the BOS token.
        prompts = [
            TokensPrompt(
                prompt_token_ids=loaded.tokenizer(text, add_special_tokens=False).input_ids
            )
            for text in texts
        ]
        params = SamplingParams(
            temperature=0.0, max_tokens=settings.max_new_tokens, skip_special_tokens=True
        )
        try:
            outputs = engine.generate(prompts, params, use_tqdm=False, lora_request=lora)
        except Exception as error:
            raise GenerationError(
                f"vLLM failed: {_first_line(error)}", subject=loaded.label
            ) from error
        return [output.outputs[0].text.strip() for output in outputs]

    def environment(self, loaded: LoadedModel, settings: GenerationSettings) -> dict[str, Any]:
        record = environment_record(loaded, settings.batch_size)
        record["batch_size"] = None  # vLLM's scheduler batches the whole suite
        return {**record, "backend": self.name, "vllm": self.version}


def _vllm_available() -> bool:
    try:
        import vllm  # noqa: F401
    except ImportError:
        return False
    return True


def _vllm_supports(folder: Path) -> bool:
    """Whether vLLM has an implementation of the model's architecture."""
    try:
        from vllm import ModelRegistry

        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        architectures = config.get("architectures") or []
        supported = set(ModelRegistry.get_supported_archs())
    except Exception:
        return False
    return bool(architectures) and all(name in supported for name in architectures)


def resolve_backend(name: str, model_folders: Sequence[Path] = ()) -> GenerationBackend:
    """The backend ``name`` asks for; ``auto``: vLLM when installed and able to run every
    one of ``model_folders``, else transformers."""
    if name == AUTO:
        vllm = BACKENDS.get("vllm")
        if vllm.available() and all(vllm.supports(folder) for folder in model_folders):
            return vllm.build()
        return BACKENDS.get("transformers").build()
    plugin = BACKENDS.get(name)
    if not plugin.available():
        raise GenerationError(
            f"--backend {name} is not installed here: pip install 'lineage-audit[{name}]'"
        )
    return plugin.build()


def _adapter_rank(adapter_folder: Path, label: str) -> int:
    try:
        config = json.loads((adapter_folder / "adapter_config.json").read_text(encoding="utf-8"))
        return int(config.get("r") or 8)
    except (OSError, ValueError, TypeError) as error:
        raise ModelLoadError(f"adapter_config.json unreadable: {error}", subject=label) from error


def _max_model_len(folder: Path) -> int | None:
    """The model's context, capped so a small engine does not reserve a huge KV cache."""
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    positions = config.get("max_position_embeddings")
    return min(int(positions), 4096) if isinstance(positions, int) else None


def _has_tokenizer(folder: Path | None) -> bool:
    return folder is not None and any(
        (folder / name).is_file() for name in ("tokenizer.json", "tokenizer_config.json")
    )


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


BACKENDS.add(
    "transformers",
    BackendPlugin("transformers", TransformersBackend, lambda: True, lambda folder: True),
)
BACKENDS.add("vllm", BackendPlugin("vllm", VllmBackend, _vllm_available, _vllm_supports))
