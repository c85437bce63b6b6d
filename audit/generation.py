"""Batched greedy generation with transformers, prompted identically for child and parents.

A child and its parents are compared prompt by prompt, so they must see the same text:
the chat template is resolved once per model (its own, else a parent's with the same
tokenizer, else a plain format) and recorded with the run. Prompts are formatted with
that template, left-padded into batches and decoded greedily; only the new tokens are
returned.

    settings = GenerationSettings(max_new_tokens=64)
    loaded = load_model(folder, settings, label="org/name")
    chat = resolve_chat_format(loaded.tokenizer, parent_candidates)
    texts = format_prompts(loaded.tokenizer, chat, prompts, settings.system_prompt)
    responses = generate(loaded, texts, settings)
"""

from __future__ import annotations

import hashlib
import json
import logging
import platform
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerBase
from transformers.utils import logging as hf_logging

from audit.errors import GenerationError, ModelLoadError
from audit.template_budget import render_within_budget

log = logging.getLogger(__name__)

# Files a model needs to load from safetensors; pickle checkpoints are never fetched.
MODEL_FILE_PATTERNS: tuple[str, ...] = (
    "*.safetensors",
    "*.safetensors.index.json",
    "*.json",
    "*.jinja",
    "tokenizer.model",
    "*.tiktoken",
    "*.txt",
)
TOKENIZER_FILE_PATTERNS: tuple[str, ...] = (
    "tokenizer*",
    "special_tokens_map.json",
    "*.jinja",
    "vocab*",
    "merges.txt",
    "config.json",
)
PICKLE_SUFFIXES: tuple[str, ...] = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
# Pickle checkpoints transformers and PEFT can load (pytorch_model*.bin, adapter_model.bin;
# their index is a *.json): fetched only with --allow-pickle, for a model without safetensors.
PICKLE_FILE_PATTERNS: tuple[str, ...] = ("*.bin",)
ADAPTER_SAFETENSORS = "adapter_model.safetensors"
ADAPTER_PICKLE = "adapter_model.bin"

PLAIN_FORMAT = "plain-v1"
DEFAULT_MAX_NEW_TOKENS = 256
AUTO_BATCH_SIZE = {"cuda": 64, "cpu": 16, "mps": 16}


@dataclass(frozen=True)
class GenerationSettings:
    """What the user asked for; ``resolve`` turns the ``auto`` values into real ones."""

    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS
    system_prompt: str | None = None
    batch_size: int | None = None  # None: start from AUTO_BATCH_SIZE, halve on out-of-memory
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    dtype: str = "auto"  # auto | float32 | bfloat16 | float16
    trust_remote_code: bool = False
    allow_pickle: bool = False
    backend: str = "transformers"  # auto | transformers | vllm (audit.backends.choose_backend)

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise GenerationError(f"--max-new-tokens must be >= 1, not {self.max_new_tokens}")
        if self.batch_size is not None and self.batch_size < 1:
            raise GenerationError(f"--batch-size must be >= 1, not {self.batch_size}")
        if self.dtype not in DTYPES and self.dtype != "auto":
            raise GenerationError(f"--dtype must be auto or one of {', '.join(DTYPES)}")

    def resolved_device(self) -> torch.device:
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        try:
            device = torch.device(self.device)
        except RuntimeError as error:
            raise GenerationError(f"--device {self.device!r} is not a torch device") from error
        if device.type == "cuda" and not torch.cuda.is_available():
            raise GenerationError(f"--device {self.device}: CUDA is not available here")
        return device

    def resolved_dtype(self, device: torch.device) -> str:
        if self.dtype != "auto":
            return self.dtype
        if device.type == "cuda":
            return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
        return "float32"  # CPU half precision is slow and changes greedy paths


DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
}


@dataclass(frozen=True)
class ChatFormat:
    """How prompts are turned into model input, and where that rule came from.

    ``source`` is ``own``, ``parent:<repo>@<sha>`` or ``plain``; ``template`` the Jinja
    chat template (None for plain). The hash is what makes two runs comparable.
    """

    source: str
    template: str | None

    @property
    def template_hash(self) -> str:
        text = self.template if self.template is not None else PLAIN_FORMAT
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class TemplateCandidate:
    """A parent's tokenizer offered to a model that ships no chat template."""

    label: str  # "org/parent@sha"
    tokenizer: PreTrainedTokenizerBase


@dataclass
class LoadedModel:
    model: Any
    tokenizer: PreTrainedTokenizerBase
    device: torch.device
    dtype: str
    label: str
    adapter: str | None = None
    notes: list[str] = field(default_factory=list)


# -- loading ----------------------------------------------------------------------------------


def _top_level_files(folder: Path) -> list[str]:
    """Names of the regular files (or links to them, as in the Hub cache) a loader reads."""
    try:
        return sorted(p.name for p in folder.iterdir() if p.is_file())
    except OSError:
        return []


def has_safetensors_weights(folder: Path) -> bool:
    """Whether ``folder`` holds model weights as safetensors (one file or shards)."""
    return any(
        name.endswith(".safetensors") and not name.startswith("adapter_model")
        for name in _top_level_files(folder)
    )


def check_weight_files(folder: Path, label: str, *, allow_pickle: bool) -> bool:
    """Which weights of ``folder`` to load: True for safetensors, False for pickle.

    Safetensors always win when both exist: they are what was crawled and fingerprinted
    under the revision's sha. Pickle-only weights are refused unless the user opted in,
    before any of them is opened.
    """
    names = _top_level_files(folder)
    if has_safetensors_weights(folder):
        return True
    pickled = [name for name in names if name.endswith(PICKLE_SUFFIXES)]
    if pickled and not allow_pickle:
        raise ModelLoadError(
            "has pickle weights only (no safetensors); pass --allow-pickle to load them with"
            " torch weights_only=True",
            subject=label,
        )
    if not pickled:
        # Over the Hub, pickle files are not even downloaded without the flag: say so.
        hint = "" if allow_pickle else "; pickle checkpoints are loaded only with --allow-pickle"
        raise ModelLoadError(f"has no weight files (no *.safetensors{hint})", subject=label)
    return False


def check_adapter_files(folder: Path, label: str, *, allow_pickle: bool) -> None:
    """Refuse an adapter shipped only as ``adapter_model.bin`` unless the user opted in
    (PEFT prefers ``adapter_model.safetensors`` when both exist)."""
    names = set(_top_level_files(folder))
    if ADAPTER_SAFETENSORS in names:
        return
    if ADAPTER_PICKLE in names:
        if allow_pickle:
            return
        raise ModelLoadError(
            f"is an adapter with pickle weights only ({ADAPTER_PICKLE}, no"
            f" {ADAPTER_SAFETENSORS}); pass --allow-pickle to load them with torch"
            " weights_only=True",
            subject=label,
        )
    raise ModelLoadError(f"is an adapter without weights (no {ADAPTER_SAFETENSORS})", subject=label)


def load_tokenizer(folder: Path, label: str, *, trust_remote_code: bool = False) -> Any:
    try:
        with _quiet_transformers():
            tokenizer = AutoTokenizer.from_pretrained(
                str(folder), trust_remote_code=trust_remote_code, local_files_only=True
            )
    except Exception as error:  # transformers raises many types for unusable tokenizers
        raise ModelLoadError(
            f"cannot load its tokenizer: {_first_line(error)}", subject=label
        ) from error
    tokenizer.padding_side = "left"  # decoder-only batches are padded on the left
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise ModelLoadError("its tokenizer has neither a pad nor an eos token", subject=label)
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(
    folder: Path,
    settings: GenerationSettings,
    *,
    label: str,
    adapter_folder: Path | None = None,
) -> LoadedModel:
    """Load a causal LM (``folder``), or a PEFT adapter (``adapter_folder``) on its base."""
    device = settings.resolved_device()
    dtype = settings.resolved_dtype(device)
    use_safetensors = check_weight_files(folder, label, allow_pickle=settings.allow_pickle)
    if adapter_folder is not None:
        check_adapter_files(adapter_folder, label, allow_pickle=settings.allow_pickle)
    tokenizer_folder = adapter_folder if _has_tokenizer(adapter_folder) else folder
    tokenizer = load_tokenizer(
        tokenizer_folder, label, trust_remote_code=settings.trust_remote_code
    )
    try:
        with _quiet_transformers():
            model = AutoModelForCausalLM.from_pretrained(
                str(folder),
                dtype=DTYPES[dtype],
                use_safetensors=use_safetensors,
                weights_only=True,
                trust_remote_code=settings.trust_remote_code,
                local_files_only=True,
            )
    except ValueError as error:
        if "trust_remote_code" in str(error):
            raise ModelLoadError(
                "needs its own code to load; pass --trust-remote-code if you trust it",
                subject=label,
            ) from error
        raise ModelLoadError(f"cannot load: {_first_line(error)}", subject=label) from error
    except Exception as error:
        raise ModelLoadError(f"cannot load: {_first_line(error)}", subject=label) from error
    adapter_note = None
    if adapter_folder is not None:
        model = _apply_adapter(model, adapter_folder, label)
        adapter_note = str(adapter_folder)
    model.to(device)
    model.eval()
    return LoadedModel(model, tokenizer, device, dtype, label, adapter=adapter_note)


def _apply_adapter(model: Any, adapter_folder: Path, label: str) -> Any:
    """Apply a PEFT adapter and fold it into the weights, as its users deploy it."""
    try:
        from peft import PeftModel

        peft_model = PeftModel.from_pretrained(model, str(adapter_folder), is_trainable=False)
        return peft_model.merge_and_unload()
    except Exception as error:
        raise ModelLoadError(
            f"cannot apply the adapter on its base: {_first_line(error)}", subject=label
        ) from error


def _has_tokenizer(folder: Path | None) -> bool:
    return folder is not None and any(
        (folder / name).is_file() for name in ("tokenizer.json", "tokenizer_config.json")
    )


# -- chat templates ---------------------------------------------------------------------------


def tokenizer_identity(tokenizer: PreTrainedTokenizerBase) -> str:
    """A hash of the vocabulary and special tokens: equal hash, same token ids for a text."""
    vocab = sorted(tokenizer.get_vocab().items())
    specials = sorted((str(k), str(v)) for k, v in tokenizer.special_tokens_map.items())
    payload = json.dumps([vocab, specials], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def own_chat_template(tokenizer: PreTrainedTokenizerBase) -> str | None:
    template = getattr(tokenizer, "chat_template", None)
    if isinstance(template, dict):  # named templates: the default one is the chat format
        template = template.get("default")
    return template if isinstance(template, str) and template.strip() else None


def resolve_chat_format(
    tokenizer: PreTrainedTokenizerBase, candidates: Iterable[TemplateCandidate] = ()
) -> ChatFormat:
    """The model's own template; else the first parent's with the same tokenizer; else plain.

    mergekit drops ``chat_template.jinja`` unless told ``chat_template: auto``, so merged
    repos often ship none while their parents do; prompting the child in plain text and
    the parents in their template would compare formats, not models.
    """
    template = own_chat_template(tokenizer)
    if template is not None:
        return ChatFormat("own", template)
    identity = tokenizer_identity(tokenizer)
    for candidate in candidates:
        parent_template = own_chat_template(candidate.tokenizer)
        if parent_template and tokenizer_identity(candidate.tokenizer) == identity:
            return ChatFormat(f"parent:{candidate.label}", parent_template)
    return ChatFormat("plain", None)


def format_prompts(
    tokenizer: PreTrainedTokenizerBase,
    chat: ChatFormat,
    prompts: Sequence[str],
    system_prompt: str | None,
) -> list[str]:
    """The exact text each prompt is given to the model as."""
    if chat.template is None:
        head = f"{system_prompt}\n\n" if system_prompt else ""
        return [f"{head}User: {prompt}\nAssistant:" for prompt in prompts]
    texts = []
    for prompt in prompts:
        messages = [{"role": "user", "content": prompt}]
        if system_prompt:
            messages.insert(0, {"role": "system", "content": system_prompt})
        try:
            text = render_within_budget(
                lambda messages=messages: tokenizer.apply_chat_template(
                    messages,
                    chat_template=chat.template,
                    tokenize=False,
                    add_generation_prompt=True,
                )
            )
        except Exception as error:  # a template that raises (e.g. "system not supported")
            raise GenerationError(
                f"chat template ({chat.source}) failed: {_first_line(error)}"
            ) from error
        texts.append(text)
    return texts


# -- generation -------------------------------------------------------------------------------


def generate(
    loaded: LoadedModel,
    texts: Sequence[str],
    settings: GenerationSettings,
    *,
    add_special_tokens: bool | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[str]:
    """Greedy completions of ``texts`` (new tokens only), in the order given.

    Texts are batched longest first (an out-of-memory error shows up on the first batch,
    and similar lengths waste less padding); the batch size halves on out-of-memory.
    ``add_special_tokens`` defaults to False for chat-formatted text, whose template
    already wrote the BOS token.
    """
    if add_special_tokens is None:
        add_special_tokens = False
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]), reverse=True)
    batch_size = settings.batch_size or AUTO_BATCH_SIZE.get(loaded.device.type, 16)
    outputs: dict[int, str] = {}
    start = 0
    while start < len(order):
        indices = order[start : start + batch_size]
        try:
            completions = _generate_batch(
                loaded, [texts[i] for i in indices], settings, add_special_tokens
            )
        except torch.OutOfMemoryError as error:
            if batch_size == 1:
                raise GenerationError(
                    "out of memory with batch size 1; try --dtype bfloat16, a shorter"
                    " --max-new-tokens or another --device",
                    subject=loaded.label,
                ) from error
            batch_size = max(1, batch_size // 2)
            _free_accelerator_memory(loaded.device)
            log.warning("%s: out of memory, batch size now %d", loaded.label, batch_size)
            continue
        outputs.update(zip(indices, completions, strict=True))
        start += len(indices)
        if progress is not None:
            progress(len(indices))
    return [outputs[i] for i in range(len(texts))]


def _generate_batch(
    loaded: LoadedModel,
    texts: list[str],
    settings: GenerationSettings,
    add_special_tokens: bool,
) -> list[str]:
    tokenizer = loaded.tokenizer
    encoded = tokenizer(
        texts, return_tensors="pt", padding=True, add_special_tokens=add_special_tokens
    ).to(loaded.device)
    with torch.inference_mode(), _quiet_transformers():
        generated = loaded.model.generate(
            **encoded,
            max_new_tokens=settings.max_new_tokens,
            do_sample=False,
            temperature=None,
            top_p=None,
            top_k=None,
            pad_token_id=tokenizer.pad_token_id,
        )
    new_tokens = generated[:, encoded["input_ids"].shape[1] :]
    return [text.strip() for text in tokenizer.batch_decode(new_tokens, skip_special_tokens=True)]


def _free_accelerator_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()


# -- records ----------------------------------------------------------------------------------


def generation_record(
    settings: GenerationSettings,
    chat: ChatFormat,
    dtype: str,
    backend_fields: dict[str, Any] | None = None,
) -> tuple[str, dict[str, Any]]:
    """(cache key, stored description) of one way of generating.

    The key covers what changes the text a model produces: decoding, token budget,
    system prompt, chat template and dtype. The device and batch size are recorded with
    the run's environment, not keyed: greedy outputs may differ in the last bits across
    hardware, and a registry shared by a team should not re-run parents for that.
    """
    keyed = {
        "decoding": "greedy",
        "max_new_tokens": settings.max_new_tokens,
        "system_prompt": settings.system_prompt,
        "template_hash": chat.template_hash,
        "dtype": dtype,
        # Another backend (or version of it) is another way of generating; transformers adds
        # nothing, so the keys of runs recorded before backends existed still match.
        **(backend_fields or {}),
    }
    key = hashlib.sha256(json.dumps(keyed, sort_keys=True).encode("utf-8")).hexdigest()
    return key, {**keyed, "template_source": chat.source}


def environment_record(loaded: LoadedModel, batch_size: int | None) -> dict[str, Any]:
    import transformers

    from lineage import __version__ as tool_version

    device = loaded.device
    if device.type == "cuda":
        hardware = torch.cuda.get_device_name(device)
    else:
        hardware = platform.processor() or platform.machine()
    return {
        "tool_version": tool_version,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "device": str(device),
        "hardware": hardware,
        "batch_size": batch_size or AUTO_BATCH_SIZE.get(device.type, 16),
        "adapter": loaded.adapter,
    }


# -- helpers ----------------------------------------------------------------------------------


class _quiet_transformers:
    """Silence transformers' chatter (loading progress bars, generation-flag warnings):
    an audit prints its own progress."""

    def __enter__(self) -> None:
        self._level = hf_logging.get_verbosity()
        self._bars = hf_logging.is_progress_bar_enabled()
        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()

    def __exit__(self, *exc_info: object) -> None:
        hf_logging.set_verbosity(self._level)
        if self._bars:
            hf_logging.enable_progress_bar()


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return (text[0] if text else type(error).__name__)[:300]
