"""The auditor through the real huggingface_hub client against the loopback Hub, and on a
PEFT adapter: weights come through the Hub cache at the crawled commit, an adapter is
applied on its declared base, and a second audit reads nothing from the Hub again."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM

from audit.auditor import AuditOptions, audit
from audit.judges import get_judge
from lineage.crawler import CrawlOptions, crawl
from lineage.example import write_card
from lineage.sources.hub import HubSource
from registry.database import Registry
from testkit.hub_server import FakeHub
from tests.support.audit_family import HARMFUL, ORG, SETTINGS, SUITES, build_family


def add_lora(root: Path) -> str:
    """fam/lora: a PEFT LoRA on fam/base (q_proj, v_proj) whose B matrices are trained."""
    base = AutoModelForCausalLM.from_pretrained(root / ORG / "base")
    adapted = get_peft_model(
        base, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"])
    )
    torch.manual_seed(7)
    with torch.no_grad():
        for name, parameter in adapted.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0, 2.0)
    folder = root / ORG / "lora"
    adapted.save_pretrained(folder)
    config = json.loads((folder / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = f"{ORG}/base"  # as uploaded: a repo id, not a path
    (folder / "adapter_config.json").write_text(json.dumps(config, indent=2))
    write_card(folder, {"base_model": f"{ORG}/base", "library_name": "peft"}, "# lora\n")
    return f"{ORG}/lora"


@pytest.fixture(scope="module")
def hub_family(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("audit-hub")
    local = build_family(tmp / "models", tmp / "local.db")
    lora = add_lora(local.root)
    with FakeHub() as hub:
        hub.add_local_tree(local.root)
        source = HubSource(
            endpoint=hub.endpoint, token=False, cache_dir=tmp / "hf-cache", offline=False
        )
        registry = Registry.open(f"sqlite:///{tmp / 'hub.db'}")
        report = crawl(registry, source, [f"{ORG}/base"], CrawlOptions(descendants=True))
        assert report.ok, report.problems
        yield hub, source, registry, lora


def _audit(registry, source, repo_id, suites=SUITES):
    return audit(
        registry,
        source,
        repo_id,
        suites,
        get_judge("refusal"),
        SETTINGS,
        AuditOptions(bootstrap_resamples=200),
    )


def test_weights_come_through_the_hub_cache_once(hub_family) -> None:
    hub, source, registry, _ = hub_family
    hub.reset_log()
    report = _audit(registry, source, f"{ORG}/merge")
    fetched = hub.count(method="GET", path_contains="model.safetensors")
    assert fetched >= 4  # the merge, both parents and their base: full weight files
    shas = {repo: run.sha for repo, runs in report.runs.items() for run in runs.values()}
    for repo, sha in shas.items():
        assert sha == hub.head_sha(repo)  # evaluated at the crawled commit
    assert report.to_json()["models"][f"{ORG}/merge"]["chat_template"].startswith(
        f"parent:{ORG}/a@"
    )

    hub.reset_log()
    again = _audit(registry, source, f"{ORG}/merge")
    assert hub.count(path_contains="model.safetensors") == 0  # runs cached, nothing fetched
    assert again.to_json()["findings"] == report.to_json()["findings"]


def test_an_adapter_is_evaluated_on_its_declared_base(hub_family) -> None:
    _, source, registry, lora = hub_family
    report = _audit(registry, source, lora, suites=(HARMFUL,))
    assert report.plan.roles == {lora: "subject", f"{ORG}/base": "parent"}
    assert report.plan.nodes[lora].relation == "adapter"
    adapter_run = report.runs[lora][HARMFUL.name]
    base_run = report.runs[f"{ORG}/base"][HARMFUL.name]
    # Trained B matrices change the greedy answers: the adapter really was applied.
    assert [s.response for s in adapter_run.samples] != [s.response for s in base_run.samples]
    # The adapter ships no tokenizer: it is prompted with its base's template.
    assert adapter_run.generation["template_hash"] == base_run.generation["template_hash"]
