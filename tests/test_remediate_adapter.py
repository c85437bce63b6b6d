"""A PEFT adapter as the fine-tune of a merge-back: folded into its base, λ scales its delta.

A real LoRA (PEFT's own ``save_pretrained``) on a tiny chat model is remediated against its
base. The candidate at λ = 0.5 must hold θ_base + 0.5·Δ, where Δ is what PEFT's own
``merge_and_unload`` adds to the base; the output says what λ means, and the recipe names
the adapter the way mergekit reads it (``base+adapter``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from peft import LoraConfig, PeftModel, get_peft_model
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

from audit.judges import get_judge
from lineage.crawler import CrawlOptions, crawl
from lineage.example import write_card
from lineage.remediate.errors import RemediationError
from lineage.remediate.run import RemediationJob, candidate_id, run_remediation
from lineage.sources.local import LocalSource
from registry.database import Registry
from testkit.chat_models import save_chat_model
from tests.support.audit_family import BENIGN, CAPABILITY, HARMFUL, SETTINGS

ORG = "ad"


def save_lora(base_dir: Path, folder: Path, base_id: str) -> Path:
    """A LoRA on q_proj and v_proj whose B matrices are trained (non-zero)."""
    base = AutoModelForCausalLM.from_pretrained(base_dir)
    adapted = get_peft_model(
        base, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"])
    )
    torch.manual_seed(11)
    with torch.no_grad():
        for name, parameter in adapted.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0, 0.5)
    adapted.save_pretrained(folder)
    config = json.loads((folder / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = base_id  # as uploaded: a repo id, not a path
    (folder / "adapter_config.json").write_text(json.dumps(config, indent=2))
    write_card(folder, {"base_model": base_id, "library_name": "peft"}, "# lora\n")
    return folder


@pytest.fixture
def adapter_pair(tmp_path: Path) -> tuple[Registry, Path]:
    models = tmp_path / "models"
    base_dir = save_chat_model(models / ORG / "aligned", seed=1)
    write_card(base_dir, {"license": "mit"}, "# aligned\n")
    save_lora(base_dir, models / ORG / "lora", f"{ORG}/aligned")
    registry = Registry.open(f"sqlite:///{tmp_path / 'registry.db'}")
    report = crawl(registry, LocalSource(models), [f"{ORG}/lora"], CrawlOptions())
    assert report.ok, report.problems
    return registry, models


def _job(models: Path, cache: Path, **overrides) -> RemediationJob:
    fields = {
        "finetune": f"{ORG}/lora",
        "aligned": f"{ORG}/aligned",
        "source": LocalSource(models),
        "harmful": [HARMFUL],
        "task": [CAPABILITY],
        "benign": [BENIGN],
        "judge": get_judge("refusal"),
        "settings": SETTINGS,
        "cache": cache,
        "lambdas": [0.5],
        "keep_all": True,
    }
    return RemediationJob(**{**fields, **overrides})


def test_lambda_scales_the_adapters_delta(adapter_pair, tmp_path) -> None:
    registry, models = adapter_pair
    messages: list[str] = []
    document = run_remediation(registry, _job(models, tmp_path / "cache"), progress=messages.append)

    assert [p.lam for p in document.sweep] == [0.0, 0.5, 1.0]
    assert document.adapter_note is not None
    assert "λ scales the adapter's delta" in document.adapter_note
    assert document.to_json()["adapter_note"] == document.adapter_note
    assert any(m.startswith(f"folding the adapter {ORG}/lora") for m in messages)

    # PEFT's own fold, independently of the tool: Δ = merge_and_unload(base) − base.
    base_model = AutoModelForCausalLM.from_pretrained(models / ORG / "aligned")
    base = {k: v.detach().clone() for k, v in base_model.state_dict().items()}
    folded = PeftModel.from_pretrained(base_model, models / ORG / "lora").merge_and_unload()
    delta = {k: v.detach() - base[k] for k, v in folded.state_dict().items()}
    assert any(d.abs().max() > 0 for d in delta.values())  # the adapter changes something

    candidate = tmp_path / "cache" / candidate_id(f"{ORG}/lora", 0.5)
    merged = load_file(candidate / "model.safetensors")
    for name, tensor in merged.items():
        expected = base[name] + 0.5 * delta[name]
        torch.testing.assert_close(tensor.float(), expected.float(), atol=1e-6, rtol=1e-5)

    recipe = yaml.safe_load((candidate / "mergekit_config.yml").read_text(encoding="utf-8"))
    assert [m["model"] for m in recipe["models"]] == [f"{ORG}/aligned", f"{ORG}/aligned+{ORG}/lora"]
    card = (candidate / "README.md").read_text(encoding="utf-8")
    assert f"- {ORG}/lora" in card and "base_model_relation: merge" in card


def test_an_adapter_whose_base_was_never_crawled_is_a_one_line_error(tmp_path) -> None:
    models = tmp_path / "models"
    base_dir = save_chat_model(tmp_path / "elsewhere" / "aligned", seed=1)
    save_lora(base_dir, models / ORG / "lora", f"{ORG}/missing-base")
    write_card(save_chat_model(models / ORG / "aligned", seed=1), {}, "# aligned\n")
    registry = Registry.open(f"sqlite:///{tmp_path / 'registry.db'}")
    crawl(registry, LocalSource(models), [f"{ORG}/lora", f"{ORG}/aligned"], CrawlOptions())
    with pytest.raises(RemediationError) as raised:
        run_remediation(registry, _job(models, tmp_path / "cache"))
    message = str(raised.value)
    assert message.startswith(f"{ORG}/lora is a PEFT adapter whose base model was not crawled")
    assert "\n" not in message
