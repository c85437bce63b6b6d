"""The quick-start family: valid files, merges as mergekit computes them, a loadable adapter."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import mergekit.card
import pytest
import torch
import yaml
from mergekit.config import MergeConfiguration
from mergekit.merge import MergeOptions, run_merge
from mergekit.merge_methods.slerp import slerp as mergekit_slerp
from peft import PeftModel
from safetensors.torch import load_file
from transformers import LlamaForCausalLM

from lineage.example import (
    BASE,
    CHAT,
    CHAT_LORA,
    CHAT_Q4,
    CODE,
    MERGED_LINEAR,
    MERGED_SLERP,
    MERGEKIT_CARD_TEMPLATE,
    PROJECTIONS,
    SLERP_T,
    ExampleFamily,
    build_example,
    nf4_dequantize,
    slerp,
)

MERGES = (MERGED_LINEAR, MERGED_SLERP)


@pytest.fixture(scope="module")
def family(tmp_path_factory: pytest.TempPathFactory) -> ExampleFamily:
    return build_example(tmp_path_factory.mktemp("example"))


def weights(family: ExampleFamily, repo_id: str) -> dict[str, torch.Tensor]:
    return load_file(family.path(repo_id) / "model.safetensors")


def split_card(text: str) -> tuple[dict[str, Any], str]:
    assert text.startswith("---\n")
    _, header, body = text.split("---\n", 2)
    return yaml.safe_load(header), body


def reference_slerp(t: float, v0: torch.Tensor, v1: torch.Tensor) -> torch.Tensor:
    """Textbook SLERP in float64 over the flattened tensor, lerp when nearly collinear."""
    a, b = v0.double().flatten(), v1.double().flatten()
    cos = float(torch.dot(a / a.norm(), b / b.norm()).clamp(-1, 1))
    if abs(cos) > 0.9995:
        return ((1 - t) * a + t * b).reshape(v0.shape).float()
    theta = math.acos(cos)
    mixed = (math.sin((1 - t) * theta) * a + math.sin(t * theta) * b) / math.sin(theta)
    return mixed.reshape(v0.shape).float()


def test_family_layout(family: ExampleFamily) -> None:
    assert family.subject == MERGED_LINEAR
    assert family.repo_ids == [BASE, CHAT, CODE, MERGED_LINEAR, MERGED_SLERP, CHAT_LORA, CHAT_Q4]
    assert sorted(p.name for p in (family.root / "example-org").iterdir()) == sorted(
        repo_id.split("/")[1] for repo_id in family.repo_ids
    )
    for repo_id in family.repo_ids:
        folder = family.path(repo_id)
        assert (folder / "README.md").is_file()
        weight_file = "adapter_model.safetensors" if repo_id == CHAT_LORA else "model.safetensors"
        assert load_file(folder / weight_file), repo_id
        if repo_id != CHAT_LORA:
            assert json.loads((folder / "config.json").read_text())["model_type"] == "llama"


def test_cards_declare_lineage_and_licences(family: ExampleFamily) -> None:
    cards = {
        repo_id: split_card((family.path(repo_id) / "README.md").read_text())[0]
        for repo_id in family.repo_ids
    }
    assert "base_model" not in cards[BASE]
    assert cards[CHAT]["base_model"] == BASE
    assert cards[CHAT]["base_model_relation"] == "finetune"
    assert cards[CODE]["base_model"] == BASE
    assert "base_model_relation" not in cards[CODE]
    assert cards[CHAT_LORA]["base_model"] == BASE
    assert cards[CHAT_LORA]["library_name"] == "peft"
    assert cards[CHAT_Q4]["base_model"] == CHAT
    for repo_id in (BASE, CHAT, CODE, CHAT_LORA, CHAT_Q4):
        assert cards[repo_id]["license"], repo_id
    declaring = [repo_id for repo_id, card in cards.items() if "model-index" in card]
    assert declaring == [CHAT]
    (result,) = cards[CHAT]["model-index"][0]["results"]
    assert result["metrics"][0]["value"] == 0.97


def test_base_loads_with_transformers(family: ExampleFamily) -> None:
    model = LlamaForCausalLM.from_pretrained(family.path(BASE))
    assert model.config.hidden_size == 64
    assert sum(p.numel() for p in model.parameters()) == sum(
        t.numel() for t in weights(family, BASE).values()
    )


def test_linear_merge_is_half_and_half(family: ExampleFamily) -> None:
    chat, code = weights(family, CHAT), weights(family, CODE)
    merged = weights(family, MERGED_LINEAR)
    assert merged.keys() == chat.keys()
    for name, tensor in merged.items():
        torch.testing.assert_close(tensor, 0.5 * chat[name] + 0.5 * code[name], rtol=0, atol=1e-6)
    name = "model.layers.1.mlp.up_proj.weight"
    assert not torch.equal(merged[name], chat[name])


def test_slerp_matches_reference_implementations(family: ExampleFamily) -> None:
    chat, code = weights(family, CHAT), weights(family, CODE)
    merged = weights(family, MERGED_SLERP)
    assert merged.keys() == chat.keys()
    for name, tensor in merged.items():
        expected = reference_slerp(SLERP_T, chat[name], code[name])
        torch.testing.assert_close(tensor, expected, rtol=0, atol=1e-5)
        batched = mergekit_slerp(
            torch.tensor([SLERP_T]), chat[name].unsqueeze(0), code[name].unsqueeze(0)
        )[0]
        torch.testing.assert_close(tensor, batched, rtol=0, atol=1e-6)
    name = "model.layers.0.self_attn.q_proj.weight"
    linear = 0.7 * chat[name] + 0.3 * code[name]
    assert not torch.allclose(merged[name], linear, rtol=0, atol=1e-9)


def test_slerp_of_collinear_tensors_is_linear() -> None:
    ones = torch.ones(8)
    torch.testing.assert_close(slerp(0.3, ones, 3 * ones), 1.6 * ones)


@pytest.mark.parametrize("repo_id", MERGES)
def test_merges_equal_what_mergekit_writes(
    family: ExampleFamily, repo_id: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = family.path(repo_id)
    published_yaml = (folder / "mergekit_config.yml").read_text(encoding="utf-8")
    local_yaml = published_yaml.replace("example-org/", f"{family.root.as_posix()}/example-org/")
    config = MergeConfiguration.model_validate(yaml.safe_load(local_yaml))
    run_merge(config, str(tmp_path), MergeOptions(copy_tokenizer=False, quiet=True), local_yaml)

    ours, theirs = weights(family, repo_id), load_file(tmp_path / "model.safetensors")
    assert ours.keys() == theirs.keys()
    for name, tensor in ours.items():
        torch.testing.assert_close(tensor, theirs[name], rtol=0, atol=1e-6)
    assert json.loads((folder / "config.json").read_text()) == json.loads(
        (tmp_path / "config.json").read_text()
    )

    # The card mergekit writes when the models are Hub repos (is_hf would ask the Hub).
    monkeypatch.setattr(mergekit.card, "is_hf", lambda path: True)
    published = MergeConfiguration.model_validate(yaml.safe_load(published_yaml))
    expected = mergekit.card.generate_card(published, published_yaml, name=folder.name)
    assert canonical_card((folder / "README.md").read_text()) == canonical_card(expected)
    assert MERGEKIT_CARD_TEMPLATE == mergekit.card.CARD_TEMPLATE


def canonical_card(text: str) -> tuple[dict[str, Any], list[str]]:
    """mergekit orders base models and bullets as a set iterates: compare them sorted."""
    header, body = split_card(text)
    header["base_model"] = sorted(header["base_model"])
    lines = body.split("\n")
    bullets = sorted(line for line in lines if line.startswith("* "))
    return header, [line for line in lines if not line.startswith("* ")] + bullets


def test_lora_adapter_loads_with_peft(family: ExampleFamily) -> None:
    folder = family.path(CHAT_LORA)
    adapter_config = json.loads((folder / "adapter_config.json").read_text())
    assert adapter_config["peft_type"] == "LORA"
    assert adapter_config["base_model_name_or_path"] == BASE
    tensors = load_file(folder / "adapter_model.safetensors")
    name = "base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight"
    assert tensors[name].shape == (32, adapter_config["r"])

    tokens = torch.arange(10).unsqueeze(0)
    base = LlamaForCausalLM.from_pretrained(family.path(BASE)).eval()
    with torch.no_grad():
        plain = base(tokens).logits
        adapted = PeftModel.from_pretrained(base, str(folder)).eval()
        with_adapter = adapted(tokens).logits
    # PEFT loads adapters non-strictly: check the tensors really landed in the model.
    v_proj = adapted.base_model.model.model.layers[1].self_attn.v_proj
    assert torch.equal(v_proj.lora_B["default"].weight, tensors[name])
    assert not torch.allclose(plain, with_adapter, atol=1e-4)


def test_quantized_child_dequantizes_to_its_parent(family: ExampleFamily) -> None:
    config = json.loads((family.path(CHAT_Q4) / "config.json").read_text())
    assert config["quantization_config"]["quant_method"] == "bitsandbytes"
    assert config["quantization_config"]["bnb_4bit_quant_type"] == "nf4"
    chat, quantized = weights(family, CHAT), weights(family, CHAT_Q4)
    for name, tensor in chat.items():
        if name.split(".")[-2] in PROJECTIONS:
            state = json.loads(bytes(quantized[f"{name}.quant_state.bitsandbytes__nf4"].tolist()))
            assert state["shape"] == list(tensor.shape)
            assert quantized[name].dtype == torch.uint8
            restored = nf4_dequantize(quantized[name], quantized[f"{name}.absmax"], state["shape"])
            assert (restored - tensor).norm() < 0.15 * tensor.norm(), name
        else:
            assert torch.equal(quantized[name], tensor.to(torch.bfloat16)), name


def test_rebuilding_writes_identical_bytes(family: ExampleFamily) -> None:
    def digests() -> dict[str, str]:
        return {
            str(path.relative_to(family.root)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(family.root.rglob("*"))
            if path.is_file()
        }

    before = digests()
    assert build_example(family.root) == family
    assert digests() == before
