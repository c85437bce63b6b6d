"""The weight zoo is what its truth table says: checked on the files it wrote.

These are the zoo's own ground-truth checks; the fingerprint and verification tests rely on
them. Every check reads the folders back (safetensors, cards, configs), as the code under
test will.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
import yaml
from safetensors.torch import load_file

from lineage.example import slerp
from tests.support.weight_zoo import (
    LORA_ALPHA,
    LORA_RANK,
    MERGE_CONFIGS,
    ROLES,
    WeightZoo,
    build_weight_zoo,
    repo_id,
)

PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
Q_PROJ = "model.layers.0.self_attn.q_proj.weight"


def weights(zoo: WeightZoo, role: str) -> dict[str, torch.Tensor]:
    """Every tensor of a model, from one file or from the shards its index names."""
    folder = zoo.path(role)
    index = folder / "model.safetensors.index.json"
    if not index.exists():
        return load_file(folder / "model.safetensors")
    shards = set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values())
    tensors: dict[str, torch.Tensor] = {}
    for shard in sorted(shards):
        tensors.update(load_file(folder / shard))
    return tensors


def front_matter(zoo: WeightZoo, role: str) -> dict[str, Any]:
    text = (zoo.path(role) / "README.md").read_text(encoding="utf-8")
    assert text.startswith("---\n"), role
    return yaml.safe_load(text.split("---\n")[1])


def relative(delta: torch.Tensor, reference: torch.Tensor) -> float:
    return (delta.float().norm() / reference.float().norm()).item()


def singular_value_ratio(delta: torch.Tensor, index: int) -> float:
    values = torch.linalg.svdvals(delta.double())
    return (values[index] / values[0]).item()


# --- layout and cards -----------------------------------------------------------------------


def test_every_role_is_a_folder_with_its_files(weight_zoo: WeightZoo) -> None:
    assert set(weight_zoo.truth) == set(ROLES)
    assert {path.name for path in (weight_zoo.root / "wz").iterdir()} == {
        repo_id(role).split("/")[1] for role in ROLES
    }
    for role, truth in weight_zoo.truth.items():
        folder = weight_zoo.path(role)
        assert (
            folder
            == weight_zoo.path(weight_zoo.repo_id(role))
            == weight_zoo.root / "wz" / (role.replace("_", "-"))
        )
        assert (folder / "README.md").is_file(), role
        if truth.adapter_only:
            assert (folder / "adapter_config.json").is_file()
            assert (folder / "adapter_model.safetensors").is_file()
            assert not (folder / "model.safetensors").exists()
            continue
        assert (folder / "config.json").is_file(), role
        assert (folder / "model.safetensors").is_file() != truth.sharded, role
        has_mergekit_config = (folder / "mergekit_config.yml").is_file()
        assert has_mergekit_config == (truth.relation == "merge" and role != "hidden_merge"), role


def test_ft_c_is_sharded_behind_an_index(weight_zoo: WeightZoo) -> None:
    folder = weight_zoo.path("ft_c")
    index = json.loads((folder / "model.safetensors.index.json").read_text(encoding="utf-8"))
    shards = set(index["weight_map"].values())
    assert len(shards) >= 2
    assert all((folder / shard).is_file() for shard in shards)
    assert set(index["weight_map"]) == set(weights(weight_zoo, "base"))


def test_cards_claim_what_the_table_says(weight_zoo: WeightZoo) -> None:
    for role, truth in weight_zoo.truth.items():
        card = front_matter(weight_zoo, role)
        declared = card.get("base_model", [])
        declared = [declared] if isinstance(declared, str) else declared
        assert sorted(declared) == sorted(truth.declared_parents), role
        assert card.get("base_model_relation") == truth.declared_relation, role
        is_mergekit = (weight_zoo.path(role) / "mergekit_config.yml").exists()
        assert ("mergekit" in card["tags"]) == is_mergekit, role
        assert ("merge" in card["tags"]) == is_mergekit, role
        assert str(weight_zoo.root) not in (weight_zoo.path(role) / "README.md").read_text()


def test_mergekit_configs_hold_the_declared_recipe(weight_zoo: WeightZoo) -> None:
    for role in MERGE_CONFIGS:
        truth = weight_zoo.truth[role]
        folder = weight_zoo.path(role)
        if not (folder / "mergekit_config.yml").exists():
            continue
        text = (folder / "mergekit_config.yml").read_text(encoding="utf-8")
        assert text in (folder / "README.md").read_text(encoding="utf-8")
        config = yaml.safe_load(text)
        assert config["merge_method"] == truth.method, role
        assert config.get("base_model") == truth.merge_base, role
        declared = {
            entry["model"]: entry["parameters"]["weight"]
            for entry in config["models"]
            if "weight" in entry.get("parameters", {})
        }
        assert declared == dict(truth.declared_coefficients), role
        density = {
            entry["model"]: entry["parameters"]["density"]
            for entry in config["models"]
            if "density" in entry.get("parameters", {})
        }
        assert density == dict(truth.density), role
        assert config.get("parameters", {}).get("t") == truth.t, role


def test_the_recipe_lie_declares_other_weights_than_it_used(weight_zoo: WeightZoo) -> None:
    truth = weight_zoo.truth["merge_recipe_lie"]
    assert dict(truth.declared_coefficients) == {"wz/ft-a": 0.5, "wz/ft-b": 0.5}
    assert dict(truth.coefficients) == {"wz/ft-a": 0.8, "wz/ft-b": 0.2}
    child, a, b = (weights(weight_zoo, role) for role in ("merge_recipe_lie", "ft_a", "ft_b"))
    assert not torch.allclose(child[Q_PROJ], 0.5 * a[Q_PROJ] + 0.5 * b[Q_PROJ], atol=1e-5)


# --- roots and fine-tunes -------------------------------------------------------------------


def test_pretrained_roots_have_their_own_norm_vectors(weight_zoo: WeightZoo) -> None:
    roots = [weights(weight_zoo, role) for role in ("base", "independent", "impostor")]
    for name in roots[0]:
        if name.endswith("norm.weight"):
            assert all((root[name] - 1).abs().max() > 0.1 for root in roots), name
            assert (roots[0][name] - roots[1][name]).abs().max() > 0.1, name
            assert (roots[0][name] - roots[2][name]).abs().max() > 0.1, name
        else:  # independent inits: as far apart as two random matrices
            assert relative(roots[1][name] - roots[0][name], roots[0][name]) > 1.2, name


def test_finetunes_move_every_tensor_a_little_from_their_true_parent(
    weight_zoo: WeightZoo,
) -> None:
    for role, truth in weight_zoo.truth.items():
        if truth.relation != "finetune" or truth.lora_rank is not None:
            continue
        child = weights(weight_zoo, role)
        (parent_id,) = truth.parents
        parent = weights(weight_zoo, parent_id)
        for name, tensor in child.items():
            change = relative(tensor - parent[name], parent[name])
            bounds = (0.025, 0.055) if tensor.ndim == 2 else (0.005, 0.04)
            assert bounds[0] < change < bounds[1], (role, name, change)
        for declared in set(truth.declared_parents) - set(truth.parents):
            other = weights(weight_zoo, declared)
            assert relative(child[Q_PROJ] - other[Q_PROJ], other[Q_PROJ]) > 0.045, role


def test_a_finetune_delta_is_low_rank_in_energy_but_not_numerically(
    weight_zoo: WeightZoo,
) -> None:
    base, tuned = weights(weight_zoo, "base"), weights(weight_zoo, "ft_a")
    for name, tensor in tuned.items():
        if tensor.ndim != 2:
            continue
        delta = tensor - base[name]
        values = torch.linalg.svdvals(delta.double())
        energy_outside_rank_4 = (values[4:].square().sum() / values.square().sum()).item()
        assert 0.005 < energy_outside_rank_4 < 0.05, name
        assert singular_value_ratio(delta, 4) > 0.02, name
        assert singular_value_ratio(delta, min(delta.shape) - 1) > 1e-5, name  # full rank


# --- adapter and merged LoRA ----------------------------------------------------------------


def test_the_adapter_is_a_peft_lora_on_base(weight_zoo: WeightZoo) -> None:
    folder = weight_zoo.path("lora_adapter")
    config = json.loads((folder / "adapter_config.json").read_text(encoding="utf-8"))
    assert config["peft_type"] == "LORA"
    assert config["base_model_name_or_path"] == "wz/base"
    assert (config["r"], config["lora_alpha"]) == (LORA_RANK, LORA_ALPHA)
    assert config["target_modules"] == ["q_proj", "v_proj"]
    tensors = load_file(folder / "adapter_model.safetensors")
    assert len(tensors) == 2 * 2 * 2  # 2 layers x (q, v) x (A, B)
    assert all(tensor.abs().max() > 0 for name, tensor in tensors.items() if "lora_B" in name)


def test_lora_merged_is_base_plus_the_adapter_product_of_rank_4(weight_zoo: WeightZoo) -> None:
    base, merged = weights(weight_zoo, "base"), weights(weight_zoo, "lora_merged")
    adapter = load_file(weight_zoo.path("lora_adapter") / "adapter_model.safetensors")
    for name, tensor in merged.items():
        delta = tensor - base[name]
        module = name.split(".")[-2]
        if module not in ("q_proj", "v_proj"):
            assert torch.equal(tensor, base[name]), name
            continue
        prefix = "base_model.model." + name.removesuffix(".weight")
        product = adapter[f"{prefix}.lora_B.weight"] @ adapter[f"{prefix}.lora_A.weight"]
        torch.testing.assert_close(delta, product * LORA_ALPHA / LORA_RANK, atol=1e-6, rtol=0)
        assert 0.03 < relative(delta, base[name]) < 0.08, name
        assert singular_value_ratio(delta, LORA_RANK - 1) > 1e-2, name
        assert singular_value_ratio(delta, LORA_RANK) < 1e-4, name


# --- merges ---------------------------------------------------------------------------------


def test_linear_and_task_arithmetic_merges_are_their_span(weight_zoo: WeightZoo) -> None:
    for role, truth in weight_zoo.truth.items():
        if not truth.span:
            continue
        child = weights(weight_zoo, role)
        parents = {parent: weights(weight_zoo, parent) for parent in truth.span}
        for name, tensor in child.items():
            expected = sum(coef * parents[parent][name] for parent, coef in truth.span.items())
            torch.testing.assert_close(tensor, expected, atol=1e-5, rtol=0, msg=role + name)
    assert weight_zoo.truth["merge_linear"].span == {"wz/ft-a": 0.6, "wz/ft-b": 0.4}
    assert weight_zoo.truth["hidden_merge"].span == {"wz/ft-a": 0.5, "wz/ft-c": 0.5}


def test_slerp_merge_is_whole_tensor_slerp_with_lerp_for_near_parallel(
    weight_zoo: WeightZoo,
) -> None:
    truth = weight_zoo.truth["merge_slerp"]
    child = weights(weight_zoo, "merge_slerp")
    a, b = weights(weight_zoo, "ft_a"), weights(weight_zoo, "ft_b")
    branches = set()
    for name, tensor in child.items():
        torch.testing.assert_close(tensor, slerp(truth.t, a[name], b[name]), atol=1e-6, rtol=0)
        cosine = torch.nn.functional.cosine_similarity(a[name].flatten(), b[name].flatten(), 0)
        branches.add("lerp" if cosine > 0.9995 else "slerp")
    assert branches == {"lerp", "slerp"}  # both of mergekit's branches are exercised


def ties_reference(
    base: torch.Tensor, tuned: list[torch.Tensor], weights_: list[float], densities: list[float]
) -> torch.Tensor:
    """TIES as mergekit computes it: top-k |Δ|, weighted sign election, normalised mean."""
    deltas = []
    for tensor, weight, density in zip(tuned, weights_, densities, strict=True):
        delta = (tensor - base).flatten()
        keep = torch.zeros_like(delta)
        keep[delta.abs().argsort(descending=True)[: max(1, int(density * delta.numel()))]] = 1
        deltas.append(delta * keep * weight)
    stacked = torch.stack(deltas)
    majority = torch.where(stacked.sum(dim=0) >= 0, 1.0, -1.0)
    agrees = (stacked.sign() == majority).float()
    divisor = (torch.tensor(weights_)[:, None] * agrees).sum(dim=0)
    divisor[divisor == 0] = 1
    return base + ((stacked * agrees).sum(dim=0) / divisor).reshape(base.shape)


def test_ties_merge_follows_the_ties_formula(weight_zoo: WeightZoo) -> None:
    truth = weight_zoo.truth["merge_ties"]
    child = weights(weight_zoo, "merge_ties")
    base = weights(weight_zoo, "base")
    tuned = [weights(weight_zoo, parent) for parent in truth.coefficients]
    for name, tensor in child.items():
        expected = ties_reference(
            base[name],
            [model[name] for model in tuned],
            list(truth.coefficients.values()),
            list(truth.density.values()),
        )
        torch.testing.assert_close(tensor, expected, atol=1e-6, rtol=0, msg=name)
    untouched = (child[Q_PROJ] == base[Q_PROJ]).float().mean().item()
    assert 0.2 < untouched < 0.3  # both Δ dropped: (1 - 0.5)² of the entries


def test_dare_merge_keeps_rescaled_weighted_entries(weight_zoo: WeightZoo) -> None:
    truth = weight_zoo.truth["merge_dare"]
    child, base = weights(weight_zoo, "merge_dare"), weights(weight_zoo, "base")
    tuned = [weights(weight_zoo, parent) for parent in truth.coefficients]
    (density,) = set(truth.density.values())
    for name in (Q_PROJ, "model.embed_tokens.weight", "model.layers.1.mlp.down_proj.weight"):
        delta = child[name] - base[name]
        assert abs((delta == 0).float().mean().item() - (1 - density) ** 2) < 0.03, name
        # Each entry is 0, one survivor's w·Δ/density, or both (rescale is L1, ≈ 1/density).
        a, b = (
            weight * (model[name] - base[name]) / density
            for weight, model in zip(truth.coefficients.values(), tuned, strict=True)
        )
        candidates = torch.stack([torch.zeros_like(a), a, b, a + b])
        closest = (candidates - delta).abs().min(dim=0).values
        explained = closest <= 0.1 * candidates.abs().amax(dim=0) + 1e-9
        assert explained.float().mean().item() > 0.99, name


# --- casts and other architectures ----------------------------------------------------------


def test_casts_are_their_parent_in_lower_precision(weight_zoo: WeightZoo) -> None:
    for role, dtype in (("base_bf16", torch.bfloat16), ("ft_a_fp16", torch.float16)):
        truth = weight_zoo.truth[role]
        assert truth.dtype == str(dtype).removeprefix("torch.")
        (parent_id,) = truth.parents
        parent, cast = weights(weight_zoo, parent_id), weights(weight_zoo, role)
        assert set(cast) == set(parent)
        for name, tensor in cast.items():
            assert tensor.dtype == dtype, (role, name)
            assert torch.equal(tensor, parent[name].to(dtype)), (role, name)
        config = json.loads((weight_zoo.path(role) / "config.json").read_text(encoding="utf-8"))
        assert config["dtype"] == truth.dtype


def test_other_arch_has_other_shapes(weight_zoo: WeightZoo) -> None:
    base, other = weights(weight_zoo, "base"), weights(weight_zoo, "other_arch")
    assert set(other) == set(base)
    assert other[Q_PROJ].shape == (96, 96) != base[Q_PROJ].shape
    config = json.loads((weight_zoo.path("other_arch") / "config.json").read_text())
    assert config["hidden_size"] == 96
    assert not weight_zoo.truth["other_arch"].same_architecture


def test_models_are_float32_unless_cast(weight_zoo: WeightZoo) -> None:
    for role, truth in weight_zoo.truth.items():
        if truth.adapter_only or truth.dtype != "float32":
            continue
        assert {tensor.dtype for tensor in weights(weight_zoo, role).values()} == {torch.float32}, (
            role
        )


# --- determinism ----------------------------------------------------------------------------


def test_building_again_writes_the_same_weights_and_leaves_the_rng_alone(
    weight_zoo: WeightZoo, tmp_path: Path
) -> None:
    rng_state = torch.random.get_rng_state()
    again = build_weight_zoo(tmp_path)
    assert torch.equal(torch.random.get_rng_state(), rng_state)
    for role in ROLES:
        for path in sorted(weight_zoo.path(role).glob("*.safetensors")):
            rebuilt = again.path(role) / path.name
            assert rebuilt.read_bytes() == path.read_bytes(), (role, path.name)
