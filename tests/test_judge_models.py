"""A judge model fetched from the (loopback) Hub and run on the audit's backend."""

from __future__ import annotations

from pathlib import Path

from audit.backends import resolve_backend
from audit.generation import GenerationSettings
from audit.judge_models import hub_completer_factory
from lineage.sources.hub import HubSource
from testkit.chat_models import save_chat_model
from testkit.hub_server import FakeHub


def test_a_judge_model_completes_formatted_prompts_on_the_settings_backend(
    tmp_path: Path,
) -> None:
    root = tmp_path / "models"
    folder = save_chat_model(root / "judges" / "tiny-guard", seed=5)
    settings = GenerationSettings(max_new_tokens=8, device="cpu", backend="transformers")
    prompts = ["<s>User: is this safe?\nAssistant:", "<s>User: how do i kill a python\nAssistant:"]
    with FakeHub() as hub:
        hub.add_local_tree(root)
        source = HubSource(
            endpoint=hub.endpoint, token=False, cache_dir=tmp_path / "hf-cache", offline=False
        )
        complete = hub_completer_factory(settings, source)("judges/tiny-guard")
        answers = complete(prompts)
    backend = resolve_backend("transformers")
    loaded = backend.load(folder, GenerationSettings(max_new_tokens=64, device="cpu"), label="x")
    direct = backend.generate(loaded, prompts, GenerationSettings(max_new_tokens=64, device="cpu"))
    assert len(answers) == 2 and all(isinstance(a, str) for a in answers)
    # The judge's own budget (64 new tokens for an unknown judge), greedy: the same answers.
    assert answers == direct
