"""The test zoo is what it claims to be: real merges, a real adapter, real broken files."""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from mergekit.config import MergeConfiguration
from peft import PeftModel
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file
from transformers import LlamaForCausalLM

from tests.support.zoo import (
    DELETED_PARENT,
    HEADER_BOMB_LENGTH,
    LOCAL_PARENT_PATH,
    MERGE_CONFIGS,
    PINNED_REVISION,
    ROLES,
    Zoo,
    build_zoo,
    cached_zoo,
)

PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@pytest.fixture(scope="session")
def zoo(tmp_path_factory: pytest.TempPathFactory) -> Zoo:
    return cached_zoo(tmp_path_factory)


def front_matter(zoo: Zoo, role: str) -> dict[str, Any]:
    text = (zoo.path(role) / "README.md").read_text(encoding="utf-8")
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


def weights(zoo: Zoo, role: str) -> dict[str, torch.Tensor]:
    return load_file(zoo.path(role) / "model.safetensors")


def is_projection(name: str) -> bool:
    return name.split(".")[-2] in PROJECTIONS


def test_every_repo_has_a_card_config_and_weights(zoo: Zoo) -> None:
    for role, repo_id in ROLES.items():
        folder = zoo.path(role)
        assert folder == zoo.root / "zoo" / repo_id.split("/")[1]
        assert (folder / "README.md").is_file(), role
        if role == "lora":
            assert (folder / "adapter_config.json").is_file()
            assert (folder / "adapter_model.safetensors").is_file()
        else:
            assert (folder / "config.json").is_file(), role
            assert (folder / "model.safetensors").is_file(), role
    assert {path.name for path in (zoo.root / "zoo").iterdir()} == {
        repo_id.split("/")[1] for repo_id in ROLES.values()
    }


def test_base_is_a_root_with_a_declared_evaluation(zoo: Zoo) -> None:
    card = front_matter(zoo, "base")
    assert card["license"] == "apache-2.0"
    assert "base_model" not in card
    (entry,) = card["model-index"]
    (result,) = entry["results"]
    assert result["metrics"][0]["value"] == 27.5
    config = json.loads((zoo.path("base") / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"]
    assert config["hidden_size"] == 64


def test_fine_tunes_move_every_projection_by_rank_four(zoo: Zoo) -> None:
    base = weights(zoo, "base")
    for role in ("instruct", "coder"):
        tuned = weights(zoo, role)
        assert tuned.keys() == base.keys()
        for name, tensor in base.items():
            delta = tuned[name] - tensor
            if is_projection(name):
                assert int(torch.linalg.matrix_rank(delta)) == 4, (role, name)
                assert 0 < delta.norm() < 0.5 * tensor.norm()
            else:
                assert torch.equal(delta, torch.zeros_like(delta)), (role, name)
    assert front_matter(zoo, "instruct")["base_model_relation"] == "finetune"
    assert front_matter(zoo, "instruct")["base_model"] == "zoo/base"
    assert "base_model_relation" not in front_matter(zoo, "coder")
    assert front_matter(zoo, "coder")["base_model"] == ["zoo/base"]


@pytest.mark.parametrize("role", sorted(MERGE_CONFIGS))
def test_merge_files_name_repo_ids_not_local_paths(zoo: Zoo, role: str) -> None:
    folder = zoo.path(role)
    config_text = (folder / "mergekit_config.yml").read_text(encoding="utf-8")
    assert config_text == MERGE_CONFIGS[role]
    card = (folder / "README.md").read_text(encoding="utf-8")
    for text in (card, config_text, (folder / "config.json").read_text()):
        assert str(zoo.root) not in text
    assert f"```yaml\n{config_text}\n```" in card  # mergekit's card embeds the config as is
    assert f"# {folder.name}\n" in card
    assert "created using [mergekit]" in card

    config = MergeConfiguration.model_validate(yaml.safe_load(config_text))
    declared = set()
    for reference in config.referenced_models():
        declared.add(reference.model.path)
        if reference.lora:
            declared.add(reference.lora.path)
    card_meta = front_matter(zoo, role)
    assert card_meta["base_model"] == sorted(declared)
    assert card_meta["tags"] == ["mergekit", "merge"]
    assert all(repo_id in ROLES.values() for repo_id in declared)


def test_linear_merge_is_the_declared_weighted_sum(zoo: Zoo) -> None:
    instruct, coder = weights(zoo, "instruct"), weights(zoo, "coder")
    merged = weights(zoo, "linear_merge")
    assert merged.keys() == instruct.keys()
    for name, tensor in merged.items():
        expected = 0.6 * instruct[name] + 0.4 * coder[name]
        torch.testing.assert_close(tensor, expected, rtol=0, atol=1e-6)
    assert not torch.equal(
        merged["model.layers.0.self_attn.q_proj.weight"],
        instruct["model.layers.0.self_attn.q_proj.weight"],
    )


def test_task_arithmetic_adds_task_vectors_to_the_base(zoo: Zoo) -> None:
    base, instruct, coder = weights(zoo, "base"), weights(zoo, "instruct"), weights(zoo, "coder")
    for name, tensor in weights(zoo, "task_arith").items():
        expected = base[name] + (instruct[name] - base[name]) + 0.5 * (coder[name] - base[name])
        torch.testing.assert_close(tensor, expected, rtol=0, atol=1e-6)


def test_slerp_follows_its_per_layer_gradient(zoo: Zoo) -> None:
    instruct, coder = weights(zoo, "instruct"), weights(zoo, "coder")
    merged = weights(zoo, "slerp_merge")
    # t over self_attn is [0, 0.5, 1] across the two layers: layer 0 is instruct, 1 is coder.
    name = "self_attn.q_proj.weight"
    assert torch.equal(merged[f"model.layers.0.{name}"], instruct[f"model.layers.0.{name}"])
    assert torch.equal(merged[f"model.layers.1.{name}"], coder[f"model.layers.1.{name}"])
    mlp = "model.layers.0.mlp.up_proj.weight"
    to_instruct = (merged[mlp] - instruct[mlp]).norm()
    to_coder = (merged[mlp] - coder[mlp]).norm()
    assert 0 < to_instruct < to_coder  # t = 0.3: closer to the base model, instruct


def test_ties_merge_is_bfloat16_and_differs_from_its_inputs(zoo: Zoo) -> None:
    merged = weights(zoo, "ties_merge")
    assert {tensor.dtype for tensor in merged.values()} == {torch.bfloat16}
    name = "model.layers.0.mlp.down_proj.weight"
    for role in ("base", "instruct", "coder"):
        assert not torch.equal(merged[name], weights(zoo, role)[name].to(torch.bfloat16))


def test_lora_adapter_loads_with_peft_and_changes_the_output(zoo: Zoo) -> None:
    adapter_config = json.loads((zoo.path("lora") / "adapter_config.json").read_text())
    assert adapter_config["base_model_name_or_path"] == "zoo/base"
    assert adapter_config["peft_type"] == "LORA"
    assert adapter_config["target_modules"] == ["q_proj", "v_proj"]
    card = front_matter(zoo, "lora")
    assert card["base_model"] == "zoo/base"
    assert card["library_name"] == "peft"
    assert str(zoo.root) not in (zoo.path("lora") / "README.md").read_text()

    tokens = torch.arange(12).unsqueeze(0)
    base = LlamaForCausalLM.from_pretrained(zoo.path("base")).eval()
    with torch.no_grad():
        plain = base(tokens).logits
        adapted = PeftModel.from_pretrained(base, str(zoo.path("lora"))).eval()
        with_adapter = adapted(tokens).logits
    assert not torch.allclose(plain, with_adapter, atol=1e-4)


def test_pinned_merge_applied_the_lora_to_coder(zoo: Zoo) -> None:
    meta = yaml.safe_load((zoo.path("pinned") / "mergekit_config.yml").read_text())
    references = [entry["model"] for entry in meta["models"]]
    assert references == [f"zoo/instruct@{PINNED_REVISION}", "zoo/coder+zoo/lora"]

    lora = load_file(zoo.path("lora") / "adapter_model.safetensors")
    prefix = "base_model.model.model.layers.0.self_attn.q_proj"
    scaling = 8 / 4  # lora_alpha / r
    lora_delta = scaling * lora[f"{prefix}.lora_B.weight"] @ lora[f"{prefix}.lora_A.weight"]
    name = "model.layers.0.self_attn.q_proj.weight"
    coder_with_lora = weights(zoo, "coder")[name] + lora_delta
    expected = 0.5 * weights(zoo, "instruct")[name] + 0.5 * coder_with_lora
    torch.testing.assert_close(weights(zoo, "pinned")[name], expected, rtol=0, atol=1e-5)


def test_quant_and_bf16_copy_derive_from_instruct(zoo: Zoo) -> None:
    instruct = weights(zoo, "instruct")
    quant_config = json.loads((zoo.path("quant") / "config.json").read_text())
    assert quant_config["quantization_config"]["quant_method"] == "bitsandbytes"
    assert quant_config["quantization_config"]["load_in_4bit"] is True
    assert front_matter(zoo, "quant")["base_model"] == "zoo/instruct"

    copy = weights(zoo, "bf16_copy")
    assert front_matter(zoo, "bf16_copy")["base_model"] == "zoo/instruct"
    assert json.loads((zoo.path("bf16_copy") / "config.json").read_text())["dtype"] == "bfloat16"
    for name, tensor in instruct.items():
        assert copy[name].dtype == torch.bfloat16
        assert torch.equal(copy[name], tensor.to(torch.bfloat16))


def test_edge_case_cards_declare_what_they_say(zoo: Zoo) -> None:
    assert front_matter(zoo, "self_loop")["base_model"] == "zoo/self-loop"
    assert front_matter(zoo, "cycle_a")["base_model"] == "zoo/cycle-b"
    assert front_matter(zoo, "cycle_b")["base_model"] == "zoo/cycle-a"
    assert front_matter(zoo, "local_path_parent")["base_model"] == LOCAL_PARENT_PATH
    assert front_matter(zoo, "orphan_child")["base_model"] == DELETED_PARENT
    assert not zoo.path(DELETED_PARENT).exists()


def test_bad_yaml_card_does_not_parse(zoo: Zoo) -> None:
    text = (zoo.path("bad_yaml") / "README.md").read_text(encoding="utf-8")
    assert text.startswith("---\n")
    with pytest.raises(yaml.YAMLError):
        yaml.safe_load(text.split("---\n")[1])


def test_truncated_weights_have_a_valid_header_and_short_data(zoo: Zoo) -> None:
    path = zoo.path("truncated") / "model.safetensors"
    raw = path.read_bytes()
    (header_length,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + header_length])
    data_end = max(info["data_offsets"][1] for key, info in header.items() if key != "__metadata__")
    assert len(raw) < 8 + header_length + data_end
    with pytest.raises(SafetensorError):
        load_file(path)


def test_header_bomb_declares_a_200_mib_header(zoo: Zoo) -> None:
    path = zoo.path("header_bomb") / "model.safetensors"
    raw = path.read_bytes()
    assert struct.unpack("<Q", raw[:8]) == (HEADER_BOMB_LENGTH,)
    assert HEADER_BOMB_LENGTH == 200 * 1024 * 1024
    assert len(raw) < 1024
    with pytest.raises(SafetensorError), safe_open(path, framework="pt"):
        pass


def test_build_is_deterministic(zoo: Zoo, tmp_path: Path) -> None:
    again = build_zoo(tmp_path)

    def digests(root: Path) -> dict[str, str]:
        return {
            str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(root.rglob("*"))
            if path.is_file()
        }

    assert digests(again.root) == digests(zoo.root)
