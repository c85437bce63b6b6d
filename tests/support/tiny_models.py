"""Tiny real models, merges and adapters for the parser tests.

Everything here is made by the real tools: transformers saves the models, mergekit's
``run_merge`` merges them (writing README.md and mergekit_config.yml as it does for users),
``mergekit.card.generate_card`` writes the card a Hub upload carries, and PEFT saves a LoRA.

``build_merges(root)`` takes a few seconds; call it from a module-scoped fixture.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
import yaml
from mergekit.card import generate_card
from mergekit.config import MergeConfiguration
from mergekit.merge import MergeOptions, run_merge
from peft import LoraConfig, get_peft_model
from transformers import LlamaConfig, LlamaForCausalLM

TINY_LLAMA = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "vocab_size": 128,
}
# The repo ids the merged models' parents have on the (pretend) Hub.
HUB_IDS = {"a": "org/base", "b": "org/tuned"}

# mergekit configurations, with {a} and {b} standing for the two parents.
MERGE_CONFIGS: dict[str, str] = {
    "linear": """\
models:
  - model: {a}
    parameters:
      weight: 0.3
  - model: {b}
    parameters:
      weight: 0.7
merge_method: linear
parameters:
  normalize: true
dtype: float32
""",
    "slerp": """\
merge_method: slerp
base_model: {a}
models:
  - model: {a}
  - model: {b}
parameters:
  t:
    - filter: self_attn
      value: [0, 0.5, 0.3, 0.7, 1]
    - filter: mlp
      value: [1, 0.5, 0.7, 0.3, 0]
    - value: 0.5
dtype: float32
""",
    "ties": """\
models:
  - model: {a}
  - model: {b}
    parameters:
      density: 0.5
      weight: [0.2, 0.8]
merge_method: ties
base_model: {a}
parameters:
  normalize: true
  int8_mask: true
dtype: float32
""",
    "task_arithmetic": """\
merge_method: task_arithmetic
base_model: {a}
models:
  - model: {b}
    parameters:
      weight: 0.6
parameters:
  lambda: 1.0
dtype: float32
""",
    "slices": """\
slices:
  - sources:
      - model: {a}
        layer_range: [0, 1]
  - sources:
      - model: {b}
        layer_range: [1, 2]
        parameters:
          scale: 1.0
  - sources:
      - model: {a}
        layer_range: [1, 2]
merge_method: passthrough
dtype: float32
""",
}


@dataclass
class MergeArtifacts:
    """One merge: the folder mergekit wrote, and the files a Hub upload of it carries."""

    method: str
    folder: Path  # run_merge output: README.md, mergekit_config.yml, config.json, weights
    local_config: str  # the config as run, with local paths
    hub_config: str  # the same config naming Hub repo ids
    hub_card: str  # mergekit.card.generate_card for the Hub config


@dataclass
class TinyModels:
    parent_a: Path
    parent_b: Path
    merges: dict[str, MergeArtifacts] = field(default_factory=dict)


def save_tiny_llama(path: Path, seed: int) -> Path:
    torch.manual_seed(seed)
    LlamaForCausalLM(LlamaConfig(**TINY_LLAMA)).save_pretrained(path)
    return path


def build_merges(root: Path) -> TinyModels:
    """Two tiny Llama parents and every merge of MERGE_CONFIGS, run by mergekit."""
    models = TinyModels(
        parent_a=save_tiny_llama(root / "a", seed=0), parent_b=save_tiny_llama(root / "b", seed=1)
    )
    for method, template in MERGE_CONFIGS.items():
        local_config = template.format(a=models.parent_a, b=models.parent_b)
        folder = root / f"merge-{method}"
        run_merge(
            MergeConfiguration.model_validate(yaml.safe_load(local_config)),
            str(folder),
            MergeOptions(copy_tokenizer=False, quiet=True),
            config_source=local_config,
        )
        hub_config = template.format(**HUB_IDS)
        models.merges[method] = MergeArtifacts(
            method=method,
            folder=folder,
            local_config=local_config,
            hub_config=hub_config,
            hub_card=hub_card(hub_config, name=f"{method}-merge"),
        )
    return models


def hub_card(config_yaml: str, *, name: str) -> str:
    """The README.md mergekit writes for a config whose models are Hub repo ids."""
    config = MergeConfiguration.model_validate(yaml.safe_load(config_yaml))
    return generate_card(config=config, config_yaml=config_yaml, name=name)


def save_lora_adapter(
    base_folder: Path,
    out: Path,
    *,
    base_repo_id: str | None,
    target_modules: list[str] | str = ("q_proj", "v_proj"),
) -> Path:
    """A PEFT LoRA on the tiny model, saved by ``save_pretrained``.

    With ``base_repo_id`` the base looks loaded from the Hub, as
    ``from_pretrained("org/base")`` leaves it; without, PEFT records the local folder.
    """
    model = LlamaForCausalLM.from_pretrained(base_folder)
    if base_repo_id is not None:
        model.name_or_path = base_repo_id
        model.config._name_or_path = base_repo_id
    if not isinstance(target_modules, str):
        target_modules = list(target_modules)
    lora = LoraConfig(r=8, lora_alpha=16, target_modules=target_modules, task_type="CAUSAL_LM")
    # save_embedding_layers=False: "auto" would ask the Hub whether the base's vocabulary
    # changed, and tests never reach the internet.
    get_peft_model(model, lora).save_pretrained(out, save_embedding_layers=False)
    return out
