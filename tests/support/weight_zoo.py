"""A zoo of tiny models whose weights, not their cards, carry the truth: for fingerprints.

``build_weight_zoo(root)`` writes a local tree ``root/wz/<name>/`` (the layout the local
source reads), each folder a model as the Hub holds it: config.json, safetensors weights,
README.md with YAML front matter and, for merges, mergekit_config.yml and mergekit's card.
``WeightZoo.truth[role]`` says what each model really is; the card says what it claims.
Verification tests assert against the truth and read only the files.

The models are made to look like what training leaves behind:

* "pretrained" roots: a fresh tiny Llama whose RMSNorm weights are scaled by
  ``1 + 0.1·randn``, so two independent inits do not share identical norm vectors;
* fine-tunes: every 2-D tensor (projections, embeddings, LM head) moves by a rank-4 part
  plus a dense full-rank part of ~15 % of its norm (``‖Δ‖/‖W‖`` of 3-5 %), norms by ~2 %.
  A fine-tune's Δ is therefore not numerically low-rank; a merged LoRA's Δ is exactly rank r;
* merges: made by mergekit itself in float32 (DARE under a fixed torch seed), with the paths
  rewritten to repo ids afterwards, as a user does before uploading.

=================  ====================  ==============================================
role               repo id               truth  [what the card claims]
=================  ====================  ==============================================
base               wz/base               root  [no base_model]
ft_a, ft_b, ft_c   wz/ft-a, -b, -c       fine-tunes of base  [finetune of wz/base];
                                         ft_c saved in shards with an index
ft_a_child         wz/ft-a-child         fine-tune of ft_a  [base_model wz/ft-a]
merge_linear       wz/merge-linear       linear ft_a 0.6 + ft_b 0.4  [mergekit, true]
merge_slerp        wz/merge-slerp        slerp base ft_a, t=0.3  [mergekit, true]
merge_task_arith   wz/merge-task-arith   task_arithmetic on base, ft_a 0.7, ft_b 0.5
merge_ties         wz/merge-ties         ties on base, density 0.5, weights 0.6 / 0.4
merge_dare         wz/merge-dare         dare_ties on base, density 0.6, weights 0.5 / 0.5
merge_recipe_lie   wz/merge-recipe-lie   linear ft_a 0.8 + ft_b 0.2  [card+config: 0.5/0.5]
hidden_merge       wz/hidden-merge       linear ft_a 0.5 + ft_c 0.5  [plain finetune of ft_a]
wrong_parent       wz/wrong-parent       fine-tune of ft_b  [base_model wz/ft-a]
orphan_ft          wz/orphan-ft          fine-tune of ft_c  [no base_model]
lora_adapter       wz/lora-adapter       PEFT LoRA r=4 on base, q_proj/v_proj  [adapter]
lora_merged        wz/lora-merged        that LoRA merged into base  [finetune of base]
base_bf16          wz/base-bf16          base in bfloat16  [quantized of wz/base]
ft_a_fp16          wz/ft-a-fp16          ft_a in float16  [quantized of wz/ft-a]
independent        wz/independent        another root, same architecture  [no base_model]
impostor           wz/impostor           another root  [finetune of wz/base]
other_arch         wz/other-arch         root, Llama hidden_size 96  [base_model wz/base]
=================  ====================  ==============================================

Build it once per process (``cached_weight_zoo()``, about a second) and never write into it.
"""

from __future__ import annotations

import atexit
import json
import re
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
import yaml
from mergekit.config import MergeConfiguration
from mergekit.merge import MergeOptions, run_merge
from peft import LoraConfig, get_peft_model
from transformers import LlamaConfig, LlamaForCausalLM

from lineage.example import quiet_progress_bars, tiny_llama, tiny_llama_config, write_card
from tests.support.zoo import fill_card_bases

ORG = "wz"
ROLES: tuple[str, ...] = (
    "base",
    "ft_a",
    "ft_b",
    "ft_c",
    "ft_a_child",
    "merge_linear",
    "merge_slerp",
    "merge_task_arith",
    "merge_ties",
    "merge_dare",
    "merge_recipe_lie",
    "hidden_merge",
    "wrong_parent",
    "orphan_ft",
    "lora_adapter",
    "lora_merged",
    "base_bf16",
    "ft_a_fp16",
    "independent",
    "impostor",
    "other_arch",
)

# Fine-tune recipe: relative size of Δ per 2-D tensor, dense share of it, norm jitter.
FINETUNE_RANK = 4
FINETUNE_RELATIVE_DELTA = (0.03, 0.05)
FINETUNE_DENSE_RATIO = 0.15
FINETUNE_NORM_JITTER = 0.02
PRETRAINED_NORM_SPREAD = 0.1

LORA_RANK = 4
LORA_ALPHA = 8
LORA_TARGETS = ("q_proj", "v_proj")
LORA_B_STD = 0.0035  # makes ‖Δ‖/‖W‖ ≈ 5 % on q_proj and v_proj, as a short LoRA run does

SHARD_SIZE = "200KB"  # the tiny Llama is ~430 KB in float32: three shards
DARE_SEED = 1234
OTHER_ARCH_HIDDEN_SIZE = 96


def repo_id(role: str) -> str:
    """``ft_a`` -> ``wz/ft-a``."""
    return f"{ORG}/{role.replace('_', '-')}"


@dataclass(frozen=True)
class Truth:
    """What a model really is (the card may say otherwise: ``declared_*``).

    ``parents`` are every model whose weights the child was computed from, as repo ids
    (for a merge on a base, the base too). ``coefficients`` are mergekit's ``weight`` per
    non-base model; ``span`` is the exact linear combination of parent tensors the child
    equals, where one exists (linear and task_arithmetic merges), for least squares.
    """

    parents: tuple[str, ...] = ()
    relation: str | None = None  # finetune | adapter | merge | quantized; None for a root
    method: str | None = None  # mergekit merge_method
    merge_base: str | None = None  # mergekit base_model (t=0 end of a SLERP)
    coefficients: Mapping[str, float] = field(default_factory=dict)
    span: Mapping[str, float] = field(default_factory=dict)
    t: float | None = None
    density: Mapping[str, float] = field(default_factory=dict)
    normalize: bool | None = None  # as mergekit applied it (its default when unset)
    rescale: bool | None = None
    lora_rank: int | None = None  # Δ from the parent has exactly this rank
    dtype: str = "float32"
    sharded: bool = False
    adapter_only: bool = False  # no full weights, adapter_model.safetensors only
    same_architecture: bool = True  # same tensor names and shapes as wz/base
    declared_parents: tuple[str, ...] = ()
    declared_relation: str | None = None
    declared_coefficients: Mapping[str, float] = field(default_factory=dict)
    note: str = ""


@dataclass(frozen=True)
class WeightZoo:
    """Role name -> repo id, where each repo lives under ``root``, and its truth."""

    root: Path
    truth: Mapping[str, Truth]

    def repo_id(self, role: str) -> str:
        return repo_id(role)

    def path(self, role_or_repo_id: str) -> Path:
        name = role_or_repo_id if "/" in role_or_repo_id else repo_id(role_or_repo_id)
        return self.root.joinpath(*name.split("/"))

    @property
    def roles(self) -> tuple[str, ...]:
        return tuple(self.truth)


# --- truth table ----------------------------------------------------------------------------

BASE, FT_A, FT_B, FT_C = repo_id("base"), repo_id("ft_a"), repo_id("ft_b"), repo_id("ft_c")


def _finetune(parent: str, declared: str | None, relation: str | None, note: str = "") -> Truth:
    return Truth(
        parents=(parent,),
        relation="finetune",
        declared_parents=(declared,) if declared else (),
        declared_relation=relation,
        note=note,
    )


def _root(declared: str | None = None, *, same_architecture: bool = True, note: str) -> Truth:
    return Truth(
        declared_parents=(declared,) if declared else (),
        declared_relation="finetune" if declared else None,
        same_architecture=same_architecture,
        note=note,
    )


def _linear(weights: dict[str, float], declared: dict[str, float] | None = None) -> Truth:
    return Truth(
        parents=tuple(weights),
        relation="merge",
        method="linear",
        coefficients=weights,
        span=weights,  # weights sum to 1, so normalize changes nothing
        normalize=True,
        declared_parents=tuple(sorted(declared or weights)),
        declared_coefficients=declared or weights,
    )


TRUTH: dict[str, Truth] = {
    "base": _root(note="pretrained root"),
    "ft_a": _finetune(BASE, BASE, "finetune"),
    "ft_b": _finetune(BASE, BASE, "finetune"),
    "ft_c": Truth(
        parents=(BASE,),
        relation="finetune",
        sharded=True,
        declared_parents=(BASE,),
        declared_relation="finetune",
        note="saved in shards with model.safetensors.index.json",
    ),
    "ft_a_child": _finetune(FT_A, FT_A, None, "depth 2: base -> ft_a -> ft_a_child"),
    "merge_linear": _linear({FT_A: 0.6, FT_B: 0.4}),
    "merge_slerp": Truth(
        parents=(FT_A, FT_B),
        relation="merge",
        method="slerp",
        merge_base=FT_A,
        t=0.3,
        declared_parents=(FT_A, FT_B),
        note="t=0 is ft_a; whole tensors are slerped, near-parallel ones lerped",
    ),
    "merge_task_arith": Truth(
        parents=(BASE, FT_A, FT_B),
        relation="merge",
        method="task_arithmetic",
        merge_base=BASE,
        coefficients={FT_A: 0.7, FT_B: 0.5},
        span={BASE: -0.2, FT_A: 0.7, FT_B: 0.5},
        normalize=False,
        declared_parents=(BASE, FT_A, FT_B),
        declared_coefficients={FT_A: 0.7, FT_B: 0.5},
    ),
    "merge_ties": Truth(
        parents=(BASE, FT_A, FT_B),
        relation="merge",
        method="ties",
        merge_base=BASE,
        coefficients={FT_A: 0.6, FT_B: 0.4},
        density={FT_A: 0.5, FT_B: 0.5},
        normalize=True,
        rescale=False,
        declared_parents=(BASE, FT_A, FT_B),
        declared_coefficients={FT_A: 0.6, FT_B: 0.4},
    ),
    "merge_dare": Truth(
        parents=(BASE, FT_A, FT_B),
        relation="merge",
        method="dare_ties",
        merge_base=BASE,
        coefficients={FT_A: 0.5, FT_B: 0.5},
        density={FT_A: 0.6, FT_B: 0.6},
        normalize=False,
        rescale=True,
        declared_parents=(BASE, FT_A, FT_B),
        declared_coefficients={FT_A: 0.5, FT_B: 0.5},
        note=f"random drop under torch.manual_seed({DARE_SEED})",
    ),
    "merge_recipe_lie": replace(
        _linear({FT_A: 0.8, FT_B: 0.2}, declared={FT_A: 0.5, FT_B: 0.5}),
        note="card and mergekit_config.yml say 0.5/0.5: recipe_mismatch",
    ),
    "hidden_merge": Truth(
        parents=(FT_A, FT_C),
        relation="merge",
        method="linear",
        coefficients={FT_A: 0.5, FT_C: 0.5},
        span={FT_A: 0.5, FT_C: 0.5},
        normalize=True,
        declared_parents=(FT_A,),
        declared_relation="finetune",
        note="card claims a plain fine-tune of ft_a: ft_c is an undeclared parent",
    ),
    "wrong_parent": _finetune(FT_B, FT_A, "finetune", "card names ft_a: contradicted"),
    "orphan_ft": _finetune(FT_C, None, None, "card declares nothing: undeclared parent ft_c"),
    "lora_adapter": Truth(
        parents=(BASE,),
        relation="adapter",
        lora_rank=LORA_RANK,
        adapter_only=True,
        declared_parents=(BASE,),
        declared_relation="adapter",
        note="PEFT LoRA r=4, alpha=8, q_proj and v_proj, lora_B non-zero",
    ),
    "lora_merged": Truth(
        parents=(BASE,),
        relation="finetune",
        lora_rank=LORA_RANK,
        declared_parents=(BASE,),
        declared_relation="finetune",
        note="lora_adapter merged into base: Δ has rank 4 on q_proj and v_proj only",
    ),
    "base_bf16": Truth(
        parents=(BASE,),
        relation="quantized",
        dtype="bfloat16",
        declared_parents=(BASE,),
        declared_relation="quantized",
    ),
    "ft_a_fp16": Truth(
        parents=(FT_A,),
        relation="quantized",
        dtype="float16",
        declared_parents=(FT_A,),
        declared_relation="quantized",
    ),
    "independent": _root(note="independent init, same architecture: the null"),
    "impostor": _root(BASE, note="independent init claiming to fine-tune base: contradicted"),
    "other_arch": _root(
        BASE, same_architecture=False, note="hidden_size 96: unverifiable against base"
    ),
}

# The mergekit configurations as published (repo ids): what mergekit_config.yml and the card
# say. ``MERGE_RUN_CONFIGS`` holds what was really merged where that differs (a lie).
MERGE_CONFIGS: dict[str, str] = {
    "merge_linear": f"""models:
  - model: {FT_A}
    parameters:
      weight: 0.6
  - model: {FT_B}
    parameters:
      weight: 0.4
merge_method: linear
dtype: float32
out_dtype: float32
""",
    "merge_slerp": f"""merge_method: slerp
base_model: {FT_A}
models:
  - model: {FT_A}
  - model: {FT_B}
parameters:
  t: 0.3
dtype: float32
out_dtype: float32
""",
    "merge_task_arith": f"""models:
  - model: {FT_A}
    parameters:
      weight: 0.7
  - model: {FT_B}
    parameters:
      weight: 0.5
merge_method: task_arithmetic
base_model: {BASE}
dtype: float32
out_dtype: float32
""",
    "merge_ties": f"""models:
  - model: {FT_A}
    parameters:
      density: 0.5
      weight: 0.6
  - model: {FT_B}
    parameters:
      density: 0.5
      weight: 0.4
merge_method: ties
base_model: {BASE}
dtype: float32
out_dtype: float32
""",
    "merge_dare": f"""models:
  - model: {FT_A}
    parameters:
      density: 0.6
      weight: 0.5
  - model: {FT_B}
    parameters:
      density: 0.6
      weight: 0.5
merge_method: dare_ties
base_model: {BASE}
dtype: float32
out_dtype: float32
""",
    "merge_recipe_lie": f"""models:
  - model: {FT_A}
    parameters:
      weight: 0.5
  - model: {FT_B}
    parameters:
      weight: 0.5
merge_method: linear
dtype: float32
out_dtype: float32
""",
    "hidden_merge": f"""models:
  - model: {FT_A}
    parameters:
      weight: 0.5
  - model: {FT_C}
    parameters:
      weight: 0.5
merge_method: linear
dtype: float32
out_dtype: float32
""",
}
MERGE_RUN_CONFIGS: dict[str, str] = {
    "merge_recipe_lie": f"""models:
  - model: {FT_A}
    parameters:
      weight: 0.8
  - model: {FT_B}
    parameters:
      weight: 0.2
merge_method: linear
dtype: float32
out_dtype: float32
""",
}


# --- build ----------------------------------------------------------------------------------


def build_weight_zoo(root: Path) -> WeightZoo:
    """Build every model of the zoo under ``root`` (deterministic, about a second)."""
    root = Path(root).resolve()
    if "@" in str(root) or "+" in str(root):
        raise ValueError(f"{root}: mergekit reads '@' and '+' in a path as reference syntax")
    zoo = WeightZoo(root=root, truth=dict(TRUTH))
    for role in ROLES:
        zoo.path(role).mkdir(parents=True, exist_ok=True)

    with quiet_progress_bars():
        states = _build_dense_models(zoo)
        for role in MERGE_CONFIGS:
            _merge(zoo, role)
        _build_lora(zoo)
        _build_casts(zoo, states)
    return zoo


def _build_dense_models(zoo: WeightZoo) -> dict[str, dict[str, torch.Tensor]]:
    """Roots and fine-tunes; returns the float32 states the casts are made from."""
    states: dict[str, dict[str, torch.Tensor]] = {}
    states["base"] = pretrained_state(seed=100)
    for role, parent, seed in (
        ("ft_a", "base", 101),
        ("ft_b", "base", 102),
        ("ft_c", "base", 103),
        ("ft_a_child", "ft_a", 104),
        ("wrong_parent", "ft_b", 105),
        ("orphan_ft", "ft_c", 106),
    ):
        states[role] = finetune_state(states[parent], seed=seed)
    states["independent"] = pretrained_state(seed=200)
    states["impostor"] = pretrained_state(seed=201)

    for role, state in states.items():
        shard = SHARD_SIZE if zoo.truth[role].sharded else None
        write_model(zoo.path(role), state, max_shard_size=shard)
        write_card(zoo.path(role), _card(zoo.truth[role]), _body(role, zoo.truth[role]))

    other_config = _other_arch_config()
    write_model(
        zoo.path("other_arch"), pretrained_state(seed=202, config=other_config), config=other_config
    )
    truth = zoo.truth["other_arch"]
    write_card(zoo.path("other_arch"), _card(truth), _body("other_arch", truth))
    return states


def _build_casts(zoo: WeightZoo, states: Mapping[str, Mapping[str, torch.Tensor]]) -> None:
    for role, source, dtype in (
        ("base_bf16", "base", torch.bfloat16),
        ("ft_a_fp16", "ft_a", torch.float16),
    ):
        write_model(zoo.path(role), states[source], dtype=dtype)
        write_card(zoo.path(role), _card(zoo.truth[role]), _body(role, zoo.truth[role]))


# --- model states ---------------------------------------------------------------------------


def pretrained_state(seed: int, config: LlamaConfig | None = None) -> dict[str, torch.Tensor]:
    """A fresh tiny Llama whose norm weights are no longer all ones.

    A real pretrained model's RMSNorm gains are far from 1 and differ between runs; left at
    1 every independent init would share identical norm vectors and look related.
    """
    model = tiny_llama(seed) if config is None else _fresh_llama(config, seed)
    generator = torch.Generator().manual_seed(seed + 10_000)
    state = {}
    for name, tensor in model.state_dict().items():
        tensor = tensor.detach().clone()
        if _is_norm(name):
            spread = torch.randn(tensor.shape, generator=generator) * PRETRAINED_NORM_SPREAD
            tensor.mul_(1 + spread)
        state[name] = tensor
    return state


def finetune_state(state: Mapping[str, torch.Tensor], *, seed: int) -> dict[str, torch.Tensor]:
    """What a short full fine-tune leaves: dominant low-rank Δ plus dense noise.

    Each 2-D tensor gets Δ = A·B (rank 4) + N, with ‖N‖ = 0.15·‖A·B‖ and ‖Δ‖/‖W‖ drawn in
    [3 %, 5 %]: Δ is low-rank in its energy but has full numerical rank, unlike a merged
    LoRA. Norm gains move by ~2 %.
    """
    generator = torch.Generator().manual_seed(seed)
    low, high = FINETUNE_RELATIVE_DELTA
    tuned = {}
    for name, tensor in state.items():
        if tensor.ndim == 2:
            rows, cols = tensor.shape
            low_rank = torch.randn(rows, FINETUNE_RANK, generator=generator) @ torch.randn(
                FINETUNE_RANK, cols, generator=generator
            )
            dense = torch.randn(rows, cols, generator=generator)
            relative = low + (high - low) * torch.rand((), generator=generator).item()
            size = relative * tensor.norm() / (1 + FINETUNE_DENSE_RATIO**2) ** 0.5
            low_rank *= size / low_rank.norm()
            dense *= FINETUNE_DENSE_RATIO * size / dense.norm()
            tuned[name] = tensor + low_rank + dense
        else:
            jitter = torch.randn(tensor.shape, generator=generator) * FINETUNE_NORM_JITTER
            tuned[name] = tensor * (1 + jitter)
    return tuned


def write_model(
    folder: Path,
    state: Mapping[str, torch.Tensor],
    *,
    config: LlamaConfig | None = None,
    dtype: torch.dtype = torch.float32,
    max_shard_size: str | None = None,
) -> None:
    """Save ``state`` as transformers does (config.json, safetensors, index if sharded)."""
    model = _fresh_llama(config or tiny_llama_config(), seed=0)
    model.load_state_dict(dict(state))
    model.to(dtype)
    if max_shard_size is None:
        model.save_pretrained(folder)
    else:
        model.save_pretrained(folder, max_shard_size=max_shard_size)


def _fresh_llama(config: LlamaConfig, seed: int) -> LlamaForCausalLM:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return LlamaForCausalLM(config).eval()


def _other_arch_config() -> LlamaConfig:
    config = tiny_llama_config()
    config.hidden_size = OTHER_ARCH_HIDDEN_SIZE
    config.head_dim = OTHER_ARCH_HIDDEN_SIZE // config.num_attention_heads
    return config


def _is_norm(name: str) -> bool:
    return name.endswith("norm.weight")


# --- merges ---------------------------------------------------------------------------------

_REPO_REFERENCE = re.compile(rf"(?<![\w/.-]){ORG}/")


def _localise(zoo: WeightZoo, text: str) -> str:
    """Repo ids -> absolute paths under the zoo: mergekit reads local folders only."""
    return _REPO_REFERENCE.sub(lambda _: f"{zoo.root.as_posix()}/{ORG}/", text)


def _publish(zoo: WeightZoo, text: str) -> str:
    """Absolute paths under the zoo -> repo ids, as a user edits them before uploading."""
    return text.replace(f"{zoo.root.as_posix()}/", "")


def _merge(zoo: WeightZoo, role: str) -> None:
    """Run mergekit on ``MERGE_RUN_CONFIGS`` (or the published config); publish the latter."""
    published_yaml = MERGE_CONFIGS[role]
    run_yaml = MERGE_RUN_CONFIGS.get(role, published_yaml)
    config = MergeConfiguration.model_validate(yaml.safe_load(_localise(zoo, run_yaml)))
    options = MergeOptions(copy_tokenizer=False, quiet=True)
    out = zoo.path(role)
    # DARE drops entries with torch's global generator; fork it so the session's is untouched.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(DARE_SEED)
        run_merge(config, str(out), options, config_source=_localise(zoo, published_yaml))

    truth = zoo.truth[role]
    if truth.method is not None and truth.declared_relation == "finetune":
        # A merge passed off as a fine-tune: nothing of mergekit's is left behind.
        (out / "mergekit_config.yml").unlink()
        write_card(out, _card(truth), _body(role, truth))
        return
    (out / "mergekit_config.yml").write_text(published_yaml, encoding="utf-8")
    card = _publish(zoo, (out / "README.md").read_text(encoding="utf-8"))
    published = MergeConfiguration.model_validate(yaml.safe_load(published_yaml))
    (out / "README.md").write_text(_fill_card_bases(card, published), encoding="utf-8")


HUB_URL = "https://huggingface.co"
# Where mergekit links a model in its card text (the bullets, "using X as a base"); it
# links Hub ids only, so the local paths it merged from came out bare.
_UNLINKED_REPO_ID = re.compile(
    rf"(?<=^\* ){ORG}/[\w.-]+$|(?<= using ){ORG}/[\w.-]+(?= as a base)", re.MULTILINE
)


def _fill_card_bases(card: str, config: MergeConfiguration) -> str:
    """What mergekit writes when the models are Hub repos, with its links to the Hub."""
    card = fill_card_bases(card, config)
    return _UNLINKED_REPO_ID.sub(lambda found: f"[{found[0]}]({HUB_URL}/{found[0]})", card)


# --- adapter --------------------------------------------------------------------------------


def _build_lora(zoo: WeightZoo) -> None:
    """A PEFT LoRA on base (saved as an adapter) and the same LoRA merged into base."""
    base = LlamaForCausalLM.from_pretrained(zoo.path("base"))
    adapter_config = LoraConfig(
        r=LORA_RANK, lora_alpha=LORA_ALPHA, target_modules=list(LORA_TARGETS)
    )
    with torch.random.fork_rng(devices=[]):  # lora_A is drawn from the global generator
        torch.manual_seed(300)
        peft_model = get_peft_model(base, adapter_config)
    generator = torch.Generator().manual_seed(301)
    with torch.no_grad():
        for name, parameter in peft_model.named_parameters():
            if "lora_B" in name:  # PEFT starts B at zero: the adapter would be a no-op
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * LORA_B_STD)

    adapter_folder = zoo.path("lora_adapter")
    peft_model.save_pretrained(adapter_folder)
    _rewrite_adapter_base(adapter_folder / "adapter_config.json")
    truth = zoo.truth["lora_adapter"]
    write_card(adapter_folder, _card(truth, library="peft"), _body("lora_adapter", truth))

    merged = peft_model.merge_and_unload()
    merged.save_pretrained(zoo.path("lora_merged"))
    truth = zoo.truth["lora_merged"]
    write_card(zoo.path("lora_merged"), _card(truth), _body("lora_merged", truth))


def _rewrite_adapter_base(path: Path) -> None:
    config = json.loads(path.read_text(encoding="utf-8"))
    config["base_model_name_or_path"] = BASE
    config["target_modules"] = sorted(config["target_modules"])  # PEFT saves a set
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")


# --- cards ----------------------------------------------------------------------------------


def _card(truth: Truth, *, library: str = "transformers") -> dict[str, Any]:
    front_matter: dict[str, Any] = {"license": "apache-2.0"}
    if truth.declared_parents:
        parents = truth.declared_parents
        front_matter["base_model"] = parents[0] if len(parents) == 1 else list(parents)
    if truth.declared_relation:
        front_matter["base_model_relation"] = truth.declared_relation
    front_matter["library_name"] = library
    tags = ["llama"]
    if truth.declared_relation == "adapter":
        tags = ["lora", "peft", f"base_model:adapter:{truth.declared_parents[0]}"]
    elif truth.declared_relation == "quantized":
        tags.append("quantized")
    elif truth.declared_parents:
        tags.append("fine-tuned")
    else:
        tags.append("pretrained")
    front_matter["tags"] = tags
    return front_matter


def _body(role: str, truth: Truth) -> str:
    name = repo_id(role).split("/")[1]
    parents = ", ".join(truth.declared_parents)
    if not parents:
        return f"# {name}\n\nA tiny Llama, pretrained from scratch.\n"
    if truth.declared_relation == "adapter":
        return f"# {name}\n\nA LoRA adapter for {parents}.\n"
    if truth.declared_relation == "quantized":
        return f"# {name}\n\n{parents} in {truth.dtype}.\n"
    return f"# {name}\n\nA fine-tune of {parents}.\n"


# --- one zoo per process --------------------------------------------------------------------

_BUILT: dict[str, WeightZoo] = {}


def cached_weight_zoo() -> WeightZoo:
    """The weight zoo of this process, built on first use in a temporary folder.

    >>> @pytest.fixture(scope="session")                   # doctest: +SKIP
    ... def weight_zoo():
    ...     return cached_weight_zoo()
    """
    if "zoo" not in _BUILT:
        folder = Path(tempfile.mkdtemp(prefix="weight-zoo-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        _BUILT["zoo"] = build_weight_zoo(folder)
    return _BUILT["zoo"]
