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

``choose_backend("auto", folders)`` picks vLLM when it is installed and has an implementation
of every model's architecture (its config.json), else transformers, once per audit or sweep
over all its models: a child and its parents always run on one backend.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from audit.adapter_merge import AdapterMergeError, save_merged_adapter
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
VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)  # vLLM's choices of max_lora_rank


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
        """An engine for ``folder``; with ``adapter_folder`` (PEFT), the adapter is served
        with vLLM's LoRA support on that base, or merged into it first where that support
        cannot serve it: the environment's ``adapter`` field says which, and why."""
        # The engine in this process: no spawned engine-core process to bootstrap from a CLI,
        # a test or a Ray worker, and its memory freed with the model.
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        device = settings.resolved_device()
        dtype = settings.resolved_dtype(device)
        tokenizer_folder = adapter_folder if _has_tokenizer(adapter_folder) else folder
        tokenizer = load_tokenizer(
            tokenizer_folder, label, trust_remote_code=settings.trust_remote_code
        )

        def loaded(engine: Any, lora: Any, note: str | None) -> LoadedModel:
            return LoadedModel((engine, lora), tokenizer, device, dtype, label, adapter=note)

        if adapter_folder is None:
            engine = self._engine(folder, tokenizer_folder, settings, dtype, label)
            return loaded(engine, None, None)
        refusal = lora_refusal(folder, adapter_folder)
        if refusal is None:
            from vllm.lora.request import LoRARequest

            rank = _adapter_rank(adapter_folder, label)
            engine = self._engine(
                folder,
                tokenizer_folder,
                settings,
                dtype,
                label,
                enable_lora=True,
                max_lora_rank=min(r for r in VLLM_LORA_RANKS if r >= rank),
                max_loras=1,
            )
            request = LoRARequest("adapter", 1, str(adapter_folder))
            refusal = _first_request_refusal(engine, request, tokenizer)
            if refusal is None:
                return loaded(engine, request, f"{adapter_folder} (vLLM LoRA on its base)")
            del engine
        with tempfile.TemporaryDirectory(prefix="lineage-vllm-merged-") as merged:
            try:
                save_merged_adapter(folder, adapter_folder, Path(merged))
            except AdapterMergeError as error:
                raise ModelLoadError(
                    f"vLLM's LoRA support cannot serve the adapter ({refusal}), and PEFT"
                    f" cannot merge it into its base: {error}",
                    subject=label,
                ) from error
            # The engine holds the weights in memory once built: the folder can go.
            engine = self._engine(Path(merged), tokenizer_folder, settings, dtype, label)
        note = f"{adapter_folder} (merged into its base first: vLLM's LoRA support {refusal})"
        return loaded(engine, None, note)

    def _engine(
        self,
        folder: Path,
        tokenizer_folder: Path,
        settings: GenerationSettings,
        dtype: str,
        label: str,
        **options: Any,
    ) -> Any:
        from vllm import LLM

        try:
            return LLM(
                model=str(folder),
                tokenizer=str(tokenizer_folder),
                dtype=dtype,
                seed=0,
                enforce_eager=True,
                trust_remote_code=settings.trust_remote_code,
                load_format="safetensors",
                max_model_len=_max_model_len(folder),
                **options,
            )
        except Exception as error:  # vLLM raises many kinds for an unsupported model
            raise ModelLoadError(
                f"vLLM cannot serve it: {_first_line(error)}", subject=label
            ) from error

    def generate(
        self, loaded: LoadedModel, texts: Sequence[str], settings: GenerationSettings
    ) -> list[str]:
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        engine, lora = loaded.model  # lora: a LoRARequest, or None
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
    """Whether vLLM has an implementation of the model's architecture (config.json), and on
    a machine without a GPU, whether its CPU attention takes the model's head size."""
    try:
        from vllm import ModelRegistry

        architectures = _architectures(folder)
        supported = set(ModelRegistry.get_supported_archs())
        if not architectures or not all(name in supported for name in architectures):
            return False
        return _cpu_takes_head_size(folder)
    except Exception:
        return False


def _cpu_takes_head_size(folder: Path) -> bool:
    import torch

    if torch.cuda.is_available():
        return True
    from vllm.v1.attention.backends.cpu_attn import CPUAttentionBackend

    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    head_size = config.get("head_dim") or (
        config["hidden_size"] // config["num_attention_heads"]
        if config.get("hidden_size") and config.get("num_attention_heads")
        else None
    )
    return head_size is None or head_size in CPUAttentionBackend.get_supported_head_sizes()


def lora_refusal(base_folder: Path, adapter_folder: Path) -> str | None:
    """Why vLLM's LoRA support cannot serve this adapter on this base ("has no ..."), read
    from the files with vLLM's own checks; None when it can (its first request decides the
    rest: ``_first_request_refusal``)."""
    from vllm.config.lora import LoRAConfig
    from vllm.lora.peft_helper import PEFTHelper

    try:
        config = json.loads((adapter_folder / "adapter_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        return f"cannot read adapter_config.json ({error})"
    peft_type = str(config.get("peft_type") or "LORA")
    if peft_type != "LORA":
        return f"has no {peft_type} adapters, only LoRA"
    architectures = _architectures(base_folder)
    if not architectures or not all(_lora_layers(name) for name in architectures):
        return f"has no LoRA layers for {', '.join(architectures) or 'this architecture'}"
    try:
        helper = PEFTHelper.from_local_dir(str(adapter_folder), None)
        rank = max([helper.r, *helper.rank_pattern.values()])
        if rank > VLLM_LORA_RANKS[-1]:
            return f"has no rank above {VLLM_LORA_RANKS[-1]} (this adapter's is {rank})"
        ceiling = min(r for r in VLLM_LORA_RANKS if r >= rank)
        helper.validate_legal(LoRAConfig(max_lora_rank=ceiling, max_loras=1))
    except (ValueError, TypeError) as error:
        return f"refuses it: {_first_line(error)}"
    return None


def _first_request_refusal(engine: Any, request: Any, tokenizer: Any) -> str | None:
    """vLLM loads an adapter at its first request: one token of one prompt, so an adapter
    it cannot apply (a target module it has no LoRA layer for) is found at load time."""
    from vllm import SamplingParams
    from vllm.inputs import TokensPrompt

    ids = tokenizer("Hello", add_special_tokens=True).input_ids or [0]
    try:
        engine.generate(
            [TokensPrompt(prompt_token_ids=ids)],
            SamplingParams(temperature=0.0, max_tokens=1),
            use_tqdm=False,
            lora_request=request,
        )
    except Exception as error:  # vLLM raises many kinds for an adapter it cannot apply
        return f"fails on it: {_first_line(error)}"
    return None


def _architectures(folder: Path) -> list[str]:
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    names = config.get("architectures") or []
    return [str(name) for name in names] if isinstance(names, list) else []


def _lora_layers(architecture: str) -> bool:
    """Whether vLLM's implementation of ``architecture`` has LoRA layers."""
    from vllm import ModelRegistry
    from vllm.model_executor.models.interfaces import supports_lora

    try:
        model_class = ModelRegistry._try_load_model_cls(architecture)  # no public lookup
    except Exception:
        return False
    return model_class is not None and supports_lora(model_class)


def choose_backend(name: str, model_folders: Sequence[Path] = ()) -> str:
    """The backend's name: ``name`` itself, or for ``auto`` vLLM when it is installed and
    has an implementation of every one of ``model_folders``' architectures (their
    config.json), else transformers. One answer for all the folders: a child and its
    parents are compared only when they ran on one backend."""
    if name != AUTO:
        BACKENDS.get(name)  # an unknown name is a one-line error listing the known ones
        return name
    vllm = BACKENDS.get("vllm")
    if vllm.available() and all(vllm.supports(folder) for folder in model_folders):
        return "vllm"
    return "transformers"


def resolve_backend(name: str, model_folders: Sequence[Path] = ()) -> GenerationBackend:
    """The backend ``name`` asks for, built (``auto``: see ``choose_backend``)."""
    name = choose_backend(name, model_folders)
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
