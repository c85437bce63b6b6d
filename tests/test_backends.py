"""Choosing the generation backend: by name, or ``auto`` once for every model of an audit.

vLLM is not installed in the main test environment, so ``auto`` must pick transformers and
say so in the audit's options; what ``auto`` picks where vLLM is installed (a model's
architecture and head size) is tested in tests/test_vllm_backend.py, in vLLM's environment.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from audit.auditor import audit
from audit.backends import AUTO, BACKENDS, choose_backend, resolve_backend
from audit.errors import GenerationError
from audit.judges import get_judge
from lineage.errors import LineageError
from tests.support.audit_family import ORG, SETTINGS, SUITES, Family, build_family

VLLM_INSTALLED = BACKENDS.get("vllm").available()


@pytest.fixture(scope="module")
def family(tmp_path_factory: pytest.TempPathFactory) -> Family:
    tmp = tmp_path_factory.mktemp("backends")
    return build_family(tmp / "models", tmp / "registry.db")


def _config(folder: Path, **fields: object) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(fields), encoding="utf-8")
    return folder


def test_a_named_backend_is_taken_as_named_and_an_unknown_one_is_refused() -> None:
    assert choose_backend("transformers", []) == "transformers"
    with pytest.raises(LineageError, match="vllm-nightly"):
        choose_backend("vllm-nightly", [])


@pytest.mark.skipif(VLLM_INSTALLED, reason="vLLM is installed here")
def test_auto_without_vllm_is_transformers_whatever_the_models(tmp_path: Path) -> None:
    llama = _config(tmp_path / "llama", architectures=["LlamaForCausalLM"])
    assert choose_backend(AUTO, [llama]) == "transformers"
    assert resolve_backend(AUTO, [llama]).name == "transformers"
    with pytest.raises(GenerationError, match=r"pip install 'lineage-audit\[vllm\]'"):
        resolve_backend("vllm")


@pytest.mark.skipif(VLLM_INSTALLED, reason="vLLM is installed here")
def test_an_audit_with_auto_records_the_backend_it_chose(family: Family) -> None:
    def run(backend: str):
        return audit(
            family.registry,
            family.source,
            f"{ORG}/merge",
            SUITES,
            get_judge("refusal"),
            replace(SETTINGS, backend=backend),
        )

    named = run("transformers")
    chosen = run(AUTO)
    assert chosen.to_json()["options"]["generation"]["backend"] == "transformers"
    # auto chose transformers: the same generation key, so every run is the named one's
    assert {run.reused for runs in chosen.runs.values() for run in runs.values()} == {"run"}
    assert chosen.run_ids(list(chosen.runs)) == named.run_ids(list(named.runs))
