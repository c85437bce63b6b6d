"""A small, realistic model family on disk: the quick-start subject for ``lineage``.

``build_example(root)`` writes, in seconds and without network, a local tree laid out
``root/<org>/<name>/`` as the local source reads it::

    example-org/base-7m          tiny Llama, the root (licence, no base_model)
    ├── chat-aligned             fine-tune (declares base_model_relation: finetune)
    │   └── chat-q4              bitsandbytes NF4 quantization (quantization_config)
    ├── code-helper              fine-tune (relation left to inference)
    ├── chat-lora                PEFT LoRA adapter (adapter_config.json)
    chat-aligned + code-helper
    ├── merged-linear            linear merge 0.5/0.5, card as mergekit writes it  <- subject
    └── merged-slerp             SLERP t=0.3, card as mergekit writes it

Every merge is computed here in torch exactly as mergekit computes it (the tests check
that against mergekit itself), so the family is what a user would have uploaded. Seeds are
fixed: building into the same folder again writes the same bytes.

>>> from lineage.example import build_example   # doctest: +SKIP
>>> family = build_example(Path("lineage-demo"))  # doctest: +SKIP
>>> family.subject                                # doctest: +SKIP
'example-org/merged-linear'
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml
from safetensors.torch import save_file
from transformers import LlamaConfig, LlamaForCausalLM
from transformers.utils import logging as hf_logging

ORG = "example-org"
BASE = f"{ORG}/base-7m"
CHAT = f"{ORG}/chat-aligned"
CODE = f"{ORG}/code-helper"
MERGED_LINEAR = f"{ORG}/merged-linear"
MERGED_SLERP = f"{ORG}/merged-slerp"
CHAT_LORA = f"{ORG}/chat-lora"
CHAT_Q4 = f"{ORG}/chat-q4"
REPO_IDS: tuple[str, ...] = (BASE, CHAT, CODE, MERGED_LINEAR, MERGED_SLERP, CHAT_LORA, CHAT_Q4)

SLERP_T = 0.3
LORA_RANK = 8
LORA_ALPHA = 16
LORA_TARGETS = ("q_proj", "v_proj")
PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
WEIGHTS_FILE = "model.safetensors"

# Copied verbatim from mergekit/card.py (CARD_TEMPLATE, mergekit 0.1.5, LGPL-3.0) so that the
# merged cards read exactly like the ones mergekit writes on the Hub; the parsers are tested
# against this shape. Keep it byte-identical: tests compare it with mergekit's own.
MERGEKIT_CARD_TEMPLATE = """---
{metadata}
---
# {name}

This is a merge of pre-trained language models created using [mergekit](https://github.com/cg123/mergekit).

## Merge Details
### Merge Method

This model was merged using the {merge_method} merge method{base_text}.

### Models Merged

The following models were included in the merge:
{model_list}

### Configuration

The following YAML configuration was used to produce this model:

```yaml
{config_yaml}
```
"""

# How mergekit names each method in a card: pretty name linked to its reference.
MERGEKIT_METHOD_MARKDOWN = {
    "linear": "[Linear](https://arxiv.org/abs/2203.05482)",
    "slerp": "[SLERP](https://en.wikipedia.org/wiki/Slerp)",
}

# NF4 code book of bitsandbytes (normal-float 4-bit quantiles, QLoRA paper).
NF4_CODE = (
    -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
    -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
    0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
    0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
)  # fmt: skip
NF4_BLOCKSIZE = 64

LINEAR_CONFIG_YAML = f"""models:
  - model: {CHAT}
    parameters:
      weight: 0.5
  - model: {CODE}
    parameters:
      weight: 0.5
merge_method: linear
dtype: float32
"""

SLERP_CONFIG_YAML = f"""merge_method: slerp
base_model: {CHAT}
models:
  - model: {CHAT}
  - model: {CODE}
parameters:
  t: {SLERP_T}
dtype: float32
"""


@dataclass(frozen=True)
class ExampleFamily:
    """Where the example family lives and what it holds."""

    root: Path
    subject: str
    repo_ids: list[str]

    def path(self, repo_id: str) -> Path:
        return self.root.joinpath(*repo_id.split("/"))


def build_example(root: Path) -> ExampleFamily:
    """Write the example family under ``root`` (created if needed) and describe it."""
    family = ExampleFamily(root=Path(root), subject=MERGED_LINEAR, repo_ids=list(REPO_IDS))
    for repo_id in REPO_IDS:
        family.path(repo_id).mkdir(parents=True, exist_ok=True)
    with quiet_progress_bars():
        _build(family)
    return family


def _build(family: ExampleFamily) -> None:
    base = tiny_llama(seed=0)
    base.save_pretrained(family.path(BASE), safe_serialization=True)
    write_card(family.path(BASE), _base_front_matter(), _BASE_BODY)

    base_state = {name: tensor.clone() for name, tensor in base.state_dict().items()}
    chat_state = low_rank_finetune(base_state, seed=1, dense=0.15)
    code_state = low_rank_finetune(base_state, seed=2, dense=0.15)
    _save_model(base, family.path(CHAT), chat_state)
    write_card(family.path(CHAT), _chat_front_matter(), _CHAT_BODY)
    _save_model(base, family.path(CODE), code_state)
    write_card(family.path(CODE), _code_front_matter(), _CODE_BODY)

    linear = {
        name: linear_merge([chat_state[name], code_state[name]], [0.5, 0.5]) for name in chat_state
    }
    _write_merge(family.path(MERGED_LINEAR), family.path(CHAT), linear, LINEAR_CONFIG_YAML)
    slerped = {name: slerp(SLERP_T, chat_state[name], code_state[name]) for name in chat_state}
    _write_merge(family.path(MERGED_SLERP), family.path(CHAT), slerped, SLERP_CONFIG_YAML)

    _write_lora(family.path(CHAT_LORA), base.config)
    _write_nf4(family.path(CHAT_Q4), family.path(CHAT), chat_state)


@contextmanager
def quiet_progress_bars() -> Iterator[None]:
    """transformers draws a progress bar per save; a quick-start should print nothing."""
    enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            hf_logging.enable_progress_bar()


# --- models -------------------------------------------------------------------------------


def tiny_llama_config() -> LlamaConfig:
    """The tiny Llama every example and test model shares (the shape mergekit's tests use)."""
    return LlamaConfig(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=256,
        max_position_embeddings=128,
    )


def tiny_llama(seed: int) -> LlamaForCausalLM:
    """A freshly initialised tiny Llama; the caller's global RNG state is left as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return LlamaForCausalLM(tiny_llama_config()).eval()


def low_rank_finetune(
    state: Mapping[str, torch.Tensor],
    *,
    seed: int,
    rank: int = 4,
    scale: float = 0.03,
    dense: float = 0.0,
) -> dict[str, torch.Tensor]:
    """A stand-in for training: every projection gets ΔW = A·B of rank ``rank``.

    Real fine-tunes move projections along few directions; that is what lets the weight
    fingerprints tell two fine-tunes of one base apart in Δ-space. ``dense`` adds a
    full-rank part of that fraction of the low-rank part's norm, as training leaves (with
    0 the update is exactly a LoRA's). Other tensors are kept.
    """
    generator = torch.Generator().manual_seed(seed)
    tuned: dict[str, torch.Tensor] = {}
    for name, tensor in state.items():
        if tensor.ndim == 2 and name.split(".")[-2] in PROJECTIONS:
            rows, cols = tensor.shape
            a = torch.randn(rows, rank, generator=generator) * scale
            b = torch.randn(rank, cols, generator=generator) * scale
            update = a @ b
            if dense:
                noise = torch.randn(rows, cols, generator=generator)
                update += noise * (dense * update.norm() / noise.norm())
            tuned[name] = (tensor.float() + update).to(tensor.dtype)
        else:
            tuned[name] = tensor.clone()
    return tuned


def _save_model(model: LlamaForCausalLM, folder: Path, state: Mapping[str, torch.Tensor]) -> None:
    model.load_state_dict(state)
    model.save_pretrained(folder, safe_serialization=True)


# --- merges, computed as mergekit computes them ---------------------------------------------


def linear_merge(tensors: list[torch.Tensor], weights: list[float]) -> torch.Tensor:
    """mergekit ``linear`` (normalize: true): Σ wᵢ·xᵢ / Σ wᵢ, accumulated in float32."""
    result = torch.zeros_like(tensors[0], dtype=torch.float32)
    for tensor, weight in zip(tensors, weights, strict=True):
        result.add_(tensor.float(), alpha=weight)
    return result.div_(sum(weights)).to(tensors[0].dtype)


def slerp(
    t: float, v0: torch.Tensor, v1: torch.Tensor, dot_threshold: float = 0.9995, eps: float = 1e-8
) -> torch.Tensor:
    """mergekit ``slerp`` of one tensor: the whole tensor is one vector; t=0 gives ``v0``.

    Nearly collinear tensors (|cos| > ``dot_threshold``, e.g. untouched norm weights) are
    interpolated linearly, as mergekit does, to avoid dividing by sin θ ≈ 0.
    """
    a, b = v0.flatten().float(), v1.flatten().float()
    norm_a = torch.linalg.vector_norm(a)
    norm_b = torch.linalg.vector_norm(b)
    norm_a = norm_a if norm_a > eps else torch.ones_like(norm_a)
    norm_b = norm_b if norm_b > eps else torch.ones_like(norm_b)
    dot = torch.dot(a / norm_a, b / norm_b).clamp(-1, 1)
    if dot.abs() > dot_threshold:
        coef_a, coef_b = 1 - t, t
    else:
        theta = torch.acos(dot)
        coef_a = torch.sin((1 - t) * theta) / torch.sin(theta)
        coef_b = torch.sin(t * theta) / torch.sin(theta)
    return (coef_a * a + coef_b * b).reshape(v0.shape).to(v0.dtype)


def _write_merge(
    folder: Path, donor: Path, state: Mapping[str, torch.Tensor], config_yaml: str
) -> None:
    """What mergekit leaves in its output folder: config, weights, card and its config."""
    LlamaConfig.from_pretrained(donor).save_pretrained(folder)
    save_file(dict(state), str(folder / WEIGHTS_FILE), metadata={"format": "pt"})
    (folder / "mergekit_config.yml").write_text(config_yaml, encoding="utf-8")
    card = mergekit_card(folder.name, yaml.safe_load(config_yaml), config_yaml)
    (folder / "README.md").write_text(card, encoding="utf-8")


def mergekit_card(name: str, config: Mapping[str, Any], config_yaml: str) -> str:
    """The card mergekit's ``generate_card`` writes when every model is a Hub repo.

    mergekit lists models in set order; sorting them picks one of the orders it can write
    and keeps the bytes reproducible.
    """
    referenced = sorted({entry["model"] for entry in config.get("models", [])})
    base = config.get("base_model")
    if base:
        referenced = sorted({*referenced, base})
    # mergekit never names a SLERP base in the text ("curse my past self", card.py).
    shown_base = None if config["merge_method"] == "slerp" else base
    base_text = f" using {_hub_link(shown_base)} as a base" if shown_base else ""
    bullets = [f"* {_hub_link(ref)}" for ref in referenced if ref != shown_base]
    metadata = {
        "base_model": referenced,
        "tags": ["mergekit", "merge"],
        "library_name": "transformers",
    }
    return MERGEKIT_CARD_TEMPLATE.format(
        metadata=yaml.dump(metadata),
        model_list="\n".join(bullets),
        base_text=base_text,
        merge_method=MERGEKIT_METHOD_MARKDOWN[config["merge_method"]],
        name=name,
        config_yaml=config_yaml,
    )


def _hub_link(repo_id: str) -> str:
    return f"[{repo_id}](https://huggingface.co/{repo_id})"


# --- adapter and quantization ---------------------------------------------------------------


def _write_lora(folder: Path, config: LlamaConfig) -> None:
    """A LoRA adapter in PEFT's file format, written by hand (PEFT is not a runtime need)."""
    generator = torch.Generator().manual_seed(3)
    head_dim = config.hidden_size // config.num_attention_heads
    out_features = {
        "q_proj": config.num_attention_heads * head_dim,
        "v_proj": config.num_key_value_heads * head_dim,
    }
    tensors: dict[str, torch.Tensor] = {}
    for layer in range(config.num_hidden_layers):
        for module in LORA_TARGETS:
            prefix = f"base_model.model.model.layers.{layer}.self_attn.{module}"
            lora_a = torch.randn(LORA_RANK, config.hidden_size, generator=generator) * 0.1
            lora_b = torch.randn(out_features[module], LORA_RANK, generator=generator) * 0.01
            tensors[f"{prefix}.lora_A.weight"] = lora_a
            tensors[f"{prefix}.lora_B.weight"] = lora_b
    save_file(tensors, str(folder / "adapter_model.safetensors"), metadata={"format": "pt"})
    adapter_config = {
        "base_model_name_or_path": BASE,
        "bias": "none",
        "fan_in_fan_out": False,
        "inference_mode": True,
        "init_lora_weights": True,
        "lora_alpha": LORA_ALPHA,
        "lora_dropout": 0.05,
        "modules_to_save": None,
        "peft_type": "LORA",
        "r": LORA_RANK,
        "revision": None,
        "target_modules": sorted(LORA_TARGETS),
        "task_type": "CAUSAL_LM",
        "use_dora": False,
        "use_rslora": False,
    }
    _write_json(folder / "adapter_config.json", adapter_config)
    front_matter = {
        "base_model": BASE,
        "library_name": "peft",
        "license": "apache-2.0",
        "tags": [f"base_model:adapter:{BASE}", "lora", "transformers"],
    }
    write_card(folder, front_matter, _LORA_BODY)


def _write_nf4(folder: Path, parent: Path, state: Mapping[str, torch.Tensor]) -> None:
    """bitsandbytes 4-bit (NF4) serialization: packed codes, absmax per block, quant state.

    Projections are quantized as ``Linear4bit`` saves them; embeddings, norms and the LM
    head stay in the compute dtype, as bitsandbytes leaves them.
    """
    tensors: dict[str, torch.Tensor] = {}
    for name, tensor in state.items():
        if tensor.ndim == 2 and name.split(".")[-2] in PROJECTIONS:
            packed, absmax = nf4_quantize(tensor)
            quant_state = {
                "quant_type": "nf4",
                "blocksize": NF4_BLOCKSIZE,
                "dtype": "bfloat16",
                "shape": list(tensor.shape),
            }
            tensors[name] = packed
            tensors[f"{name}.absmax"] = absmax
            tensors[f"{name}.quant_map"] = torch.tensor(NF4_CODE, dtype=torch.float32)
            state_bytes = json.dumps(quant_state).encode()
            tensors[f"{name}.quant_state.bitsandbytes__nf4"] = torch.tensor(
                list(state_bytes), dtype=torch.uint8
            )
        else:
            tensors[name] = tensor.to(torch.bfloat16)
    save_file(tensors, str(folder / WEIGHTS_FILE), metadata={"format": "pt"})

    config = json.loads((parent / "config.json").read_text(encoding="utf-8"))
    config["dtype"] = "bfloat16"
    config["quantization_config"] = {
        "_load_in_4bit": True,
        "_load_in_8bit": False,
        "bnb_4bit_compute_dtype": "bfloat16",
        "bnb_4bit_quant_storage": "uint8",
        "bnb_4bit_quant_type": "nf4",
        "bnb_4bit_use_double_quant": False,
        "llm_int8_enable_fp32_cpu_offload": False,
        "llm_int8_has_fp16_weight": False,
        "llm_int8_skip_modules": None,
        "llm_int8_threshold": 6.0,
        "load_in_4bit": True,
        "load_in_8bit": False,
        "quant_method": "bitsandbytes",
    }
    _write_json(folder / "config.json", config)
    front_matter = {
        "base_model": CHAT,
        "library_name": "transformers",
        "license": "apache-2.0",
        "tags": ["4-bit", "bitsandbytes", "nf4"],
    }
    write_card(folder, front_matter, _Q4_BODY)


def nf4_quantize(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """NF4 codes of ``weight`` in blocks of 64, two per byte (first in the high nibble)."""
    blocks = weight.float().flatten().reshape(-1, NF4_BLOCKSIZE)
    absmax = blocks.abs().amax(dim=1)
    scaled = blocks / absmax.clamp_min(torch.finfo(torch.float32).tiny)[:, None]
    code = torch.tensor(NF4_CODE, dtype=torch.float32)
    indices = (scaled.unsqueeze(-1) - code).abs().argmin(dim=-1).flatten().to(torch.uint8)
    packed = (indices[0::2] << 4) | indices[1::2]
    return packed.unsqueeze(1), absmax


def nf4_dequantize(
    packed: torch.Tensor, absmax: torch.Tensor, shape: Iterable[int]
) -> torch.Tensor:
    """Inverse of ``nf4_quantize`` (up to rounding): for checks and demos."""
    flat = packed.flatten()
    indices = torch.stack([flat >> 4, flat & 0x0F], dim=1).flatten().long()
    code = torch.tensor(NF4_CODE, dtype=torch.float32)
    values = code[indices].reshape(-1, NF4_BLOCKSIZE) * absmax[:, None]
    return values.reshape(tuple(shape))


# --- cards --------------------------------------------------------------------------------


def write_card(folder: Path, front_matter: Mapping[str, Any], body: str) -> None:
    """README.md with YAML front matter, as the Hub renders and parses it."""
    header = yaml.safe_dump(dict(front_matter), sort_keys=False, allow_unicode=True)
    (folder / "README.md").write_text(f"---\n{header}---\n\n{body}", encoding="utf-8")


def _write_json(path: Path, data: Mapping[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _base_front_matter() -> dict[str, Any]:
    return {
        "license": "apache-2.0",
        "language": ["en"],
        "library_name": "transformers",
        "pipeline_tag": "text-generation",
        "tags": ["llama", "tiny"],
    }


def _chat_front_matter() -> dict[str, Any]:
    return {
        "license": "apache-2.0",
        "base_model": BASE,
        "base_model_relation": "finetune",
        "library_name": "transformers",
        "pipeline_tag": "text-generation",
        "tags": ["chat", "alignment"],
        "datasets": ["HuggingFaceH4/ultrafeedback_binarized"],
        "model-index": [
            {
                "name": "chat-aligned",
                "results": [
                    {
                        "task": {"type": "text-generation", "name": "Refusal of harmful requests"},
                        "dataset": {
                            "type": "walledai/AdvBench",
                            "name": "AdvBench",
                            "split": "train",
                        },
                        "metrics": [
                            {"type": "refusal_rate", "value": 0.97, "name": "Refusal rate"}
                        ],
                        "source": {"name": "self-reported", "url": "https://example.org/evals"},
                    }
                ],
            }
        ],
    }


def _code_front_matter() -> dict[str, Any]:
    # No base_model_relation: the Hub infers "finetune" from the weights; so must we.
    return {
        "license": "mit",
        "base_model": BASE,
        "library_name": "transformers",
        "pipeline_tag": "text-generation",
        "tags": ["code"],
        "datasets": ["bigcode/the-stack-smol"],
    }


_BASE_BODY = """# base-7m

A tiny Llama-architecture language model for demonstrations of `lineage`.
It is randomly initialised: it generates nothing useful.
"""

_CHAT_BODY = """# chat-aligned

A chat fine-tune of [example-org/base-7m](https://huggingface.co/example-org/base-7m),
aligned to refuse harmful requests.
"""

_CODE_BODY = """# code-helper

A code fine-tune of [example-org/base-7m](https://huggingface.co/example-org/base-7m).
It was not safety-tuned.
"""

_LORA_BODY = """# chat-lora

A LoRA adapter (r=8, alpha=16, q_proj and v_proj) for
[example-org/base-7m](https://huggingface.co/example-org/base-7m).
"""

_Q4_BODY = """# chat-q4

[example-org/chat-aligned](https://huggingface.co/example-org/chat-aligned) quantized to
4-bit NF4 with bitsandbytes.
"""
