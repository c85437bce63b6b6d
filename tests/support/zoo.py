"""A zoo of tiny, real model repos on disk for the lineage tests.

``build_zoo(root)`` writes a local tree ``root/zoo/<name>/`` (the layout the local source
reads) holding a base model, two fine-tunes, merges made by mergekit itself, a LoRA made by
PEFT itself, a quantized child and the broken or adversarial repos a crawler must survive.
Merges run against local paths (mergekit needs them); afterwards every path in the
mergekit config and card is rewritten to its repo id, as a user does before uploading.

Roles (``Zoo.repo_id(role)`` / ``Zoo.path(role)``):

=================  ===================  ==============================================
role               repo id              what it is
=================  ===================  ==============================================
base               zoo/base             tiny Llama, root, apache-2.0, model-index
instruct           zoo/instruct         fine-tune, declares base_model_relation
coder              zoo/coder            fine-tune, relation left to inference
linear_merge       zoo/linear-merge     mergekit linear, instruct 0.6 + coder 0.4
slerp_merge        zoo/slerp-merge      mergekit slerp (slices), t gradient on self_attn
ties_merge         zoo/ties-merge       mergekit ties on zoo/base, bfloat16
task_arith         zoo/task-arith       mergekit task_arithmetic on zoo/base
lora               zoo/lora             PEFT LoRA on zoo/base (q_proj, v_proj)
quant              zoo/quant            bitsandbytes quantization_config, of instruct
bf16_copy          zoo/bf16-copy        instruct cast to bfloat16
self_loop          zoo/self-loop        card names itself
cycle_a, cycle_b   zoo/cycle-a, -b      each card names the other
local_path_parent  zoo/local-path-...   base_model is a filesystem path
orphan_child       zoo/orphan-child     base_model zoo/deleted-model (does not exist)
bad_yaml           zoo/bad-yaml         README front matter that is not YAML
truncated          zoo/truncated        model.safetensors cut short in its data
header_bomb        zoo/header-bomb      safetensors header length says 200 MiB
pinned             zoo/pinned           mergekit refs zoo/instruct@<sha>, coder+lora
=================  ===================  ==============================================

Use it once per session (``cached_zoo``) and never write into it; copy what you mutate.
"""

from __future__ import annotations

import json
import re
import shutil
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml
from mergekit.config import MergeConfiguration
from mergekit.merge import MergeOptions, run_merge
from peft import LoraConfig, get_peft_model
from transformers import LlamaForCausalLM

from lineage.example import low_rank_finetune, tiny_llama, write_card

ORG = "zoo"
PINNED_REVISION = "4f1c0de5a9b7e3d2c1f0a9b8c7d6e5f4a3b2c1d0"
HEADER_BOMB_LENGTH = 200 * 1024 * 1024
LOCAL_PARENT_PATH = "/home/someone/checkpoints/step-1000"
DELETED_PARENT = "zoo/deleted-model"
WEIGHTS = "model.safetensors"

ROLES: dict[str, str] = {
    "base": "zoo/base",
    "instruct": "zoo/instruct",
    "coder": "zoo/coder",
    "linear_merge": "zoo/linear-merge",
    "slerp_merge": "zoo/slerp-merge",
    "ties_merge": "zoo/ties-merge",
    "task_arith": "zoo/task-arith",
    "lora": "zoo/lora",
    "quant": "zoo/quant",
    "bf16_copy": "zoo/bf16-copy",
    "self_loop": "zoo/self-loop",
    "cycle_a": "zoo/cycle-a",
    "cycle_b": "zoo/cycle-b",
    "local_path_parent": "zoo/local-path-parent",
    "orphan_child": "zoo/orphan-child",
    "bad_yaml": "zoo/bad-yaml",
    "truncated": "zoo/truncated",
    "header_bomb": "zoo/header-bomb",
    "pinned": "zoo/pinned",
}

# The configs as published (repo ids). They are localised for the merge and rewritten back.
MERGE_CONFIGS: dict[str, str] = {
    "linear_merge": """models:
  - model: zoo/instruct
    parameters:
      weight: 0.6
  - model: zoo/coder
    parameters:
      weight: 0.4
merge_method: linear
dtype: float32
""",
    "slerp_merge": """slices:
  - sources:
      - model: zoo/instruct
        layer_range: [0, 2]
      - model: zoo/coder
        layer_range: [0, 2]
merge_method: slerp
base_model: zoo/instruct
parameters:
  t:
    - filter: self_attn
      value: [0, 0.5, 1]
    - value: 0.3
dtype: float32
""",
    "ties_merge": """models:
  - model: zoo/instruct
    parameters:
      density: 0.5
      weight: 0.6
  - model: zoo/coder
    parameters:
      density: 0.5
      weight: 0.4
merge_method: ties
base_model: zoo/base
parameters:
  normalize: true
dtype: bfloat16
""",
    "task_arith": """models:
  - model: zoo/instruct
    parameters:
      weight: 1.0
  - model: zoo/coder
    parameters:
      weight: 0.5
merge_method: task_arithmetic
base_model: zoo/base
dtype: float32
""",
    "pinned": f"""models:
  - model: zoo/instruct@{PINNED_REVISION}
    parameters:
      weight: 0.5
  - model: zoo/coder+zoo/lora
    parameters:
      weight: 0.5
merge_method: linear
dtype: float32
""",
}

BNB_4BIT_CONFIG: dict[str, Any] = {
    "_load_in_4bit": True,
    "_load_in_8bit": False,
    "bnb_4bit_compute_dtype": "bfloat16",
    "bnb_4bit_quant_storage": "uint8",
    "bnb_4bit_quant_type": "nf4",
    "bnb_4bit_use_double_quant": True,
    "llm_int8_enable_fp32_cpu_offload": False,
    "llm_int8_has_fp16_weight": False,
    "llm_int8_skip_modules": None,
    "llm_int8_threshold": 6.0,
    "load_in_4bit": True,
    "load_in_8bit": False,
    "quant_method": "bitsandbytes",
}

BROKEN_FRONT_MATTER = """---
license: apache-2.0
base_model: [zoo/base
tags:
  - broken: : yaml
 - mis-indented
---

# bad-yaml

The front matter above is not valid YAML.
"""


@dataclass(frozen=True)
class Zoo:
    """Role name -> repo id, and where each repo lives under ``root``."""

    root: Path
    repo_ids: dict[str, str]

    def repo_id(self, role: str) -> str:
        return self.repo_ids[role]

    def path(self, role_or_repo_id: str) -> Path:
        repo_id = self.repo_ids.get(role_or_repo_id, role_or_repo_id)
        return self.root.joinpath(*repo_id.split("/"))


def build_zoo(root: Path) -> Zoo:
    """Build every repo of the zoo under ``root`` (deterministic, a few seconds)."""
    root = Path(root).resolve()
    if "@" in str(root) or "+" in str(root):
        raise ValueError(f"{root}: mergekit reads '@' and '+' in a path as reference syntax")
    zoo = Zoo(root=root, repo_ids=dict(ROLES))
    for repo_id in ROLES.values():
        zoo.path(repo_id).mkdir(parents=True, exist_ok=True)

    model = tiny_llama(seed=0)
    base_state = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    model.save_pretrained(zoo.path("base"), safe_serialization=True)
    write_card(zoo.path("base"), _base_card(), "# base\n\nA tiny Llama, randomly initialised.\n")
    for role, seed, card in (("instruct", 11, _instruct_card()), ("coder", 12, _coder_card())):
        model.load_state_dict(low_rank_finetune(base_state, seed=seed, rank=4))
        model.save_pretrained(zoo.path(role), safe_serialization=True)
        write_card(zoo.path(role), card, f"# {role}\n\nA fine-tune of zoo/base.\n")

    _build_lora(zoo)
    with tempfile.TemporaryDirectory(prefix="zoo-lora-cache-") as lora_cache:
        for role in MERGE_CONFIGS:
            _merge(zoo, role, Path(lora_cache))

    _build_quant(zoo)
    _build_bf16_copy(zoo)
    _build_edge_cases(zoo)
    return zoo


# --- merges -------------------------------------------------------------------------------

_REPO_REFERENCE = re.compile(r"(?<![\w/.-])zoo/")


def _localise(zoo: Zoo, text: str) -> str:
    """Repo ids -> absolute paths under the zoo: mergekit reads local folders only."""
    return _REPO_REFERENCE.sub(lambda _: f"{zoo.root.as_posix()}/zoo/", text)


def _publish(zoo: Zoo, text: str) -> str:
    """Absolute paths under the zoo -> repo ids, as a user edits them before uploading."""
    return text.replace(f"{zoo.root.as_posix()}/", "")


def _merge(zoo: Zoo, role: str, lora_cache: Path) -> None:
    published_yaml = MERGE_CONFIGS[role]
    local_yaml = _localise(zoo, published_yaml)
    config = MergeConfiguration.model_validate(yaml.safe_load(local_yaml))
    # No random_seed: it would reseed the whole test session, and these methods are exact.
    options = MergeOptions(copy_tokenizer=False, quiet=True, lora_merge_cache=str(lora_cache))
    out = zoo.path(role)
    run_merge(config, str(out), options, config_source=local_yaml)

    (out / "mergekit_config.yml").write_text(published_yaml, encoding="utf-8")
    card = _publish(zoo, (out / "README.md").read_text(encoding="utf-8"))
    published = MergeConfiguration.model_validate(yaml.safe_load(published_yaml))
    (out / "README.md").write_text(fill_card_bases(card, published), encoding="utf-8")


def fill_card_bases(card: str, config: MergeConfiguration) -> str:
    """What mergekit would have written had the models been Hub repos.

    With local paths mergekit writes ``base_model: []``; with repo ids it lists every model
    and LoRA (without revisions). mergekit orders them, and the "Models Merged" bullets, as
    a Python set iterates; sorting picks one order it can produce and keeps bytes stable.
    """
    bases: set[str] = set()
    for reference in config.referenced_models():
        bases.add(reference.model.path)
        if reference.lora:
            bases.add(reference.lora.path)
    if "base_model: []\n" not in card:
        raise AssertionError("mergekit's card no longer starts with 'base_model: []'")
    card = card.replace("base_model: []\n", yaml.dump({"base_model": sorted(bases)}), 1)
    lines = card.split("\n")
    start = lines.index("The following models were included in the merge:") + 1
    end = start
    while end < len(lines) and lines[end].startswith("* "):
        end += 1
    lines[start:end] = sorted(lines[start:end])
    return "\n".join(lines)


# --- adapter, quantization, copies ----------------------------------------------------------


def _build_lora(zoo: Zoo) -> None:
    base = LlamaForCausalLM.from_pretrained(zoo.path("base"))
    adapter_config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"])
    with torch.random.fork_rng(devices=[]):  # lora_A is drawn from the global generator
        torch.manual_seed(21)
        peft_model = get_peft_model(base, adapter_config)
    generator = torch.Generator().manual_seed(22)
    with torch.no_grad():
        for name, parameter in peft_model.named_parameters():
            if "lora_B" in name:  # PEFT starts B at zero: the adapter would be a no-op
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.05)
    out = zoo.path("lora")
    peft_model.save_pretrained(out)

    config_path = out / "adapter_config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["base_model_name_or_path"] = ROLES["base"]
    config["target_modules"] = sorted(config["target_modules"])  # PEFT saves a set
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True), encoding="utf-8")
    card_path = out / "README.md"
    card = card_path.read_text(encoding="utf-8")
    card_path.write_text(card.replace(zoo.path("base").as_posix(), ROLES["base"]), "utf-8")


def _build_quant(zoo: Zoo) -> None:
    out = zoo.path("quant")
    config = json.loads((zoo.path("instruct") / "config.json").read_text(encoding="utf-8"))
    config["quantization_config"] = dict(BNB_4BIT_CONFIG)
    config_text = json.dumps(config, indent=2, sort_keys=True) + "\n"
    (out / "config.json").write_text(config_text, encoding="utf-8")
    shutil.copyfile(zoo.path("instruct") / WEIGHTS, out / WEIGHTS)
    card = {"license": "apache-2.0", "base_model": ROLES["instruct"], "tags": ["4-bit"]}
    write_card(out, card, "# quant\n\nzoo/instruct in 4-bit (bitsandbytes nf4).\n")


def _build_bf16_copy(zoo: Zoo) -> None:
    model = LlamaForCausalLM.from_pretrained(zoo.path("instruct")).to(torch.bfloat16)
    model.save_pretrained(zoo.path("bf16_copy"), safe_serialization=True)
    card = {"license": "apache-2.0", "base_model": ROLES["instruct"]}
    write_card(zoo.path("bf16_copy"), card, "# bf16-copy\n\nzoo/instruct in bfloat16.\n")


def _build_edge_cases(zoo: Zoo) -> None:
    declared_parent = {
        "self_loop": ROLES["self_loop"],
        "cycle_a": ROLES["cycle_b"],
        "cycle_b": ROLES["cycle_a"],
        "local_path_parent": LOCAL_PARENT_PATH,
        "orphan_child": DELETED_PARENT,
        "truncated": ROLES["instruct"],
        "header_bomb": ROLES["base"],
    }
    for role, parent in declared_parent.items():
        _copy_weights(zoo, "instruct", role)
        card = {"license": "apache-2.0", "base_model": parent}
        write_card(zoo.path(role), card, f"# {role}\n\nAn edge case for the crawler.\n")

    _copy_weights(zoo, "base", "bad_yaml")
    (zoo.path("bad_yaml") / "README.md").write_text(BROKEN_FRONT_MATTER, encoding="utf-8")

    weights = zoo.path("truncated") / WEIGHTS
    (header_length,) = struct.unpack("<Q", weights.read_bytes()[:8])
    data_size = weights.stat().st_size - 8 - header_length
    with weights.open("r+b") as handle:  # header intact, tensor data cut in half
        handle.truncate(8 + header_length + data_size // 2)

    header = b'{"__metadata__":{"format":"pt"}}'
    bomb = struct.pack("<Q", HEADER_BOMB_LENGTH) + header + b" " * 24
    (zoo.path("header_bomb") / WEIGHTS).write_bytes(bomb)


def _copy_weights(zoo: Zoo, source_role: str, role: str) -> None:
    for name in ("config.json", WEIGHTS):
        shutil.copyfile(zoo.path(source_role) / name, zoo.path(role) / name)


# --- cards --------------------------------------------------------------------------------


def _base_card() -> dict[str, Any]:
    return {
        "license": "apache-2.0",
        "language": ["en"],
        "library_name": "transformers",
        "pipeline_tag": "text-generation",
        "tags": ["llama"],
        "model-index": [
            {
                "name": "base",
                "results": [
                    {
                        "task": {"type": "text-generation", "name": "Text Generation"},
                        "dataset": {
                            "name": "AI2 Reasoning Challenge (25-Shot)",
                            "type": "ai2_arc",
                            "config": "ARC-Challenge",
                            "split": "test",
                            "args": {"num_few_shot": 25},
                        },
                        "metrics": [
                            {"type": "acc_norm", "value": 27.5, "name": "normalized accuracy"}
                        ],
                        "source": {
                            "url": "https://huggingface.co/spaces/open-llm-leaderboard",
                            "name": "Open LLM Leaderboard",
                        },
                    }
                ],
            }
        ],
    }


def _instruct_card() -> dict[str, Any]:
    return {
        "license": "apache-2.0",
        "base_model": ROLES["base"],
        "base_model_relation": "finetune",
        "library_name": "transformers",
        "tags": ["instruct"],
        "datasets": ["HuggingFaceH4/ultrachat_200k"],
    }


def _coder_card() -> dict[str, Any]:
    return {
        "license": "mit",
        "base_model": [ROLES["base"]],
        "library_name": "transformers",
        "tags": ["code"],
    }


# --- session cache ------------------------------------------------------------------------

_BUILT: dict[str, Zoo] = {}


def cached_zoo(tmp_path_factory: Any) -> Zoo:
    """The zoo of this pytest session, built on first use.

    >>> @pytest.fixture(scope="session")                   # doctest: +SKIP
    ... def zoo(tmp_path_factory):
    ...     return cached_zoo(tmp_path_factory)
    """
    key = str(tmp_path_factory.getbasetemp())
    if key not in _BUILT:
        _BUILT[key] = build_zoo(tmp_path_factory.mktemp("zoo"))
    return _BUILT[key]


def zoo_path(tmp_path_factory: Any) -> Path:
    """The root of this session's zoo (the folder holding ``zoo/<name>/``)."""
    return cached_zoo(tmp_path_factory).root
