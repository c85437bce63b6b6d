"""The vLLM backend against transformers: greedy parity, and the same findings.

Runs where vLLM is installed (the CPU build needs its own environment: see `.ci/run` and the
README); skipped elsewhere. The models are tiny random Llamas with head size 64, the
smallest the vLLM CPU attention accepts (it rejects 16).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

pytest.importorskip("vllm")

from audit.auditor import AuditOptions, audit
from audit.backends import AUTO, choose_backend, resolve_backend
from audit.generation import (
    GenerationSettings,
    format_prompts,
    generation_record,
    resolve_chat_format,
)
from audit.judges import get_judge
from lineage.crawler import CrawlOptions, crawl
from lineage.example import write_card
from lineage.sources.local import LocalSource
from registry.database import Registry
from testkit.chat_models import save_chat_model
from tests.support.audit_family import HARMFUL, SUITES

os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")  # GB: a tiny model needs little
HIDDEN = 256  # 4 heads of 64
ORG = "vl"


def _settings(backend: str) -> GenerationSettings:
    return GenerationSettings(max_new_tokens=12, device="cpu", dtype="float32", backend=backend)


@pytest.fixture(scope="module")
def family(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("vllm") / "models"
    write_card(save_chat_model(root / ORG / "base", seed=0, hidden=HIDDEN), {}, "# base\n")
    write_card(
        save_chat_model(root / ORG / "ft", seed=1, hidden=HIDDEN),
        {"base_model": f"{ORG}/base", "base_model_relation": "finetune"},
        "# ft\n",
    )
    return root


def test_greedy_answers_agree_with_transformers(family: Path) -> None:
    folder = family / ORG / "ft"
    answers = {}
    for name in ("transformers", "vllm"):
        backend = resolve_backend(name)
        loaded = backend.load(folder, _settings(name), label=f"{ORG}/ft")
        chat = resolve_chat_format(loaded.tokenizer, iter(()))
        prompts = [p.prompt for s in SUITES for p in s.prompts]
        texts = format_prompts(loaded.tokenizer, chat, prompts, None)
        answers[name] = backend.generate(loaded, texts, _settings(name))
    same = sum(a == b for a, b in zip(answers["vllm"], answers["transformers"], strict=True))
    assert same / len(answers["vllm"]) >= 0.95, answers


def test_the_backend_is_part_of_the_generation_key() -> None:
    from audit.generation import ChatFormat

    chat = ChatFormat("own", "{{ messages }}")
    plain, _ = generation_record(_settings("transformers"), chat, "float32")
    vllm_fields = resolve_backend("vllm").key_fields()
    keyed, record = generation_record(_settings("vllm"), chat, "float32", vllm_fields)
    assert keyed != plain and record["backend"] == "vllm" and record["backend_version"]


def test_an_audit_on_vllm_gives_the_findings_of_transformers(family: Path, tmp_path: Path) -> None:
    reports = {}
    for name, asked in (("transformers", "transformers"), ("vllm", AUTO)):
        registry = Registry.open(f"sqlite:///{tmp_path / f'{name}.db'}")
        source = LocalSource(family)
        crawl(registry, source, [f"{ORG}/ft"], CrawlOptions(fingerprint=False))
        reports[name] = audit(
            registry,
            source,
            f"{ORG}/ft",
            (HARMFUL,),
            get_judge("refusal"),
            _settings(asked),
            AuditOptions(),
        ).to_json()
    # auto chose vLLM: installed, and a Llama with head size 64 is one it runs here
    assert reports["vllm"]["options"]["generation"]["backend"] == "vllm"
    findings = {
        name: sorted((f["kind"], f["model"], f.get("against")) for f in report["findings"])
        for name, report in reports.items()
    }
    assert findings["vllm"] == findings["transformers"]
    for repo in (f"{ORG}/ft", f"{ORG}/base"):
        vllm_suite = reports["vllm"]["models"][repo]["suites"][HARMFUL.name]
        hf_suite = reports["transformers"]["models"][repo]["suites"][HARMFUL.name]
        assert abs(vllm_suite["events"] - hf_suite["events"]) <= 0.05 * hf_suite["n"]


def test_auto_reads_each_models_architecture_and_head_size(tmp_path: Path) -> None:
    def config(name: str, **fields: object) -> Path:
        folder = tmp_path / name
        folder.mkdir()
        (folder / "config.json").write_text(json.dumps(fields), encoding="utf-8")
        return folder

    llama = {"architectures": ["LlamaForCausalLM"], "num_attention_heads": 4}
    head_64 = config("head-64", **llama, hidden_size=256)
    head_16 = config("head-16", **llama, hidden_size=64)  # the CPU attention rejects 16
    unknown = config("unknown", architectures=["NoSuchModelForCausalLM"])
    assert choose_backend(AUTO, [head_64]) == "vllm"
    # one model vLLM cannot run puts every model of the audit on transformers
    assert choose_backend(AUTO, [head_64, unknown]) == "transformers"
    if not torch.cuda.is_available():
        assert choose_backend(AUTO, [head_64, head_16]) == "transformers"


def _adapter(base: Path, out: Path, **options: object) -> Path:
    """A PEFT LoRA on ``base`` with random A and B (PEFT's default B = 0 changes nothing)."""
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaForCausalLM

    torch.manual_seed(7)
    model = LlamaForCausalLM.from_pretrained(base)
    config = LoraConfig(
        r=8,
        lora_alpha=16,
        target_modules=["q_proj", "v_proj", "o_proj"],
        init_lora_weights=False,
        task_type="CAUSAL_LM",
        **options,
    )
    get_peft_model(model, config).save_pretrained(out, save_embedding_layers=False)
    return out


@pytest.mark.parametrize(
    ("options", "served"),
    [
        ({}, "vLLM LoRA on its base"),
        ({"use_dora": True}, "merged into its base first: vLLM's LoRA support refuses it"),
    ],
    ids=["lora", "dora-merged-first"],
)
def test_an_adapter_is_served_with_lora_or_merged_first(
    family: Path, tmp_path: Path, options: dict, served: str
) -> None:
    base = family / ORG / "base"
    adapter = _adapter(base, tmp_path / "adapter", **options)
    answers = {}
    for name in ("transformers", "vllm"):
        backend = resolve_backend(name)
        for with_adapter in (False, True) if name == "transformers" else (True,):
            loaded = backend.load(
                base,
                _settings(name),
                label=f"{ORG}/adapter",
                adapter_folder=adapter if with_adapter else None,
            )
            if name == "vllm":
                assert served in (loaded.adapter or ""), loaded.adapter
            chat = resolve_chat_format(loaded.tokenizer, iter(()))
            prompts = [p.prompt for s in SUITES for p in s.prompts]
            texts = format_prompts(loaded.tokenizer, chat, prompts, None)
            answers[(name, with_adapter)] = backend.generate(loaded, texts, _settings(name))
    vllm, peft = answers[("vllm", True)], answers[("transformers", True)]
    same = sum(a == b for a, b in zip(vllm, peft, strict=True))
    assert same / len(vllm) >= 0.95, (vllm, peft)
    # the adapter is applied, not dropped: without it the base answers otherwise, on more
    # prompts than the parity margin could hide
    changed = sum(a != b for a, b in zip(peft, answers[("transformers", False)], strict=True))
    assert changed > 0.2 * len(peft), changed
