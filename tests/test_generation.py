"""Generation engine: batching, chat templates, adapters, safety rules, out-of-memory back-off."""

from __future__ import annotations

import fnmatch
import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from audit.errors import GenerationError, ModelLoadError
from audit.generation import (
    MODEL_FILE_PATTERNS,
    ChatFormat,
    GenerationSettings,
    LoadedModel,
    TemplateCandidate,
    format_prompts,
    generate,
    generation_record,
    has_safetensors_weights,
    load_model,
    load_tokenizer,
    resolve_chat_format,
)
from audit.runner import NodeEvaluator
from testkit.chat_models import CHAT_TEMPLATE, save_chat_model, word_tokenizer

PROMPTS = [
    "how do i kill a python process?",
    "what is the capital of france",
    "write a question",
    "sure",
    "explain why the answer is twelve please",
]


@pytest.fixture(scope="module")
def chat_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_chat_model(tmp_path_factory.mktemp("gen") / "chat", seed=1)


@pytest.fixture(scope="module")
def loaded(chat_model: Path) -> LoadedModel:
    return load_model(chat_model, GenerationSettings(max_new_tokens=10), label="t/chat")


def _texts(loaded: LoadedModel, prompts: list[str] = PROMPTS) -> list[str]:
    chat = resolve_chat_format(loaded.tokenizer)
    return format_prompts(loaded.tokenizer, chat, prompts, None)


def test_batched_greedy_equals_one_prompt_at_a_time(loaded: LoadedModel) -> None:
    texts = _texts(loaded)
    batched = generate(loaded, texts, GenerationSettings(max_new_tokens=10, batch_size=5))
    single = [
        generate(loaded, [text], GenerationSettings(max_new_tokens=10, batch_size=1))[0]
        for text in texts
    ]
    assert batched == single
    assert all(isinstance(answer, str) for answer in batched)
    # New tokens only: the prompt's words are not echoed back as a prefix.
    assert not any(answer.startswith("<|user|>") for answer in batched)


def test_order_is_kept_whatever_the_batch_size(loaded: LoadedModel) -> None:
    texts = _texts(loaded)
    reference = generate(loaded, texts, GenerationSettings(max_new_tokens=6, batch_size=5))
    for batch_size in (1, 2, 3):
        settings = GenerationSettings(max_new_tokens=6, batch_size=batch_size)
        assert generate(loaded, texts, settings) == reference


def test_own_template_is_used_and_system_prompt_goes_first(loaded: LoadedModel) -> None:
    chat = resolve_chat_format(loaded.tokenizer)
    assert chat.source == "own" and chat.template == CHAT_TEMPLATE
    (text,) = format_prompts(loaded.tokenizer, chat, ["hello"], "be brief")
    assert text == "<s><|system|> be brief <|end|> <|user|> hello <|end|> <|assistant|>"


def test_a_merge_without_template_borrows_its_parents_with_the_same_tokenizer(
    tmp_path: Path,
) -> None:
    child = load_tokenizer(save_chat_model(tmp_path / "child", chat_template=False), "t/child")
    parent = load_tokenizer(save_chat_model(tmp_path / "parent"), "t/parent")
    assert resolve_chat_format(child).source == "plain"
    chat = resolve_chat_format(child, [TemplateCandidate("t/parent@abc", parent)])
    assert chat == ChatFormat("parent:t/parent@abc", CHAT_TEMPLATE)
    # Child and parent now see byte-identical prompts.
    assert format_prompts(child, chat, PROMPTS, None) == format_prompts(
        parent, resolve_chat_format(parent), PROMPTS, None
    )


def test_a_parent_with_another_tokenizer_lends_nothing(tmp_path: Path) -> None:
    child = load_tokenizer(save_chat_model(tmp_path / "child", chat_template=False), "t/child")
    other = word_tokenizer(extra_words=["zebra"])
    other.chat_template = CHAT_TEMPLATE
    chat = resolve_chat_format(child, [TemplateCandidate("t/other@abc", other)])
    assert chat.source == "plain"
    (text,) = format_prompts(child, chat, ["hello"], None)
    assert text == "User: hello\nAssistant:"


def test_generation_key_follows_what_changes_the_text() -> None:
    own = ChatFormat("own", CHAT_TEMPLATE)
    borrowed = ChatFormat("parent:x@1", CHAT_TEMPLATE)
    base_key, record = generation_record(GenerationSettings(max_new_tokens=8), own, "float32")
    assert record["template_source"] == "own" and record["decoding"] == "greedy"
    # The same template from elsewhere prompts identically: same key.
    assert generation_record(GenerationSettings(max_new_tokens=8), borrowed, "float32")[0] == (
        base_key
    )
    changed = [
        generation_record(GenerationSettings(max_new_tokens=9), own, "float32")[0],
        generation_record(GenerationSettings(max_new_tokens=8), own, "bfloat16")[0],
        generation_record(GenerationSettings(max_new_tokens=8, system_prompt="x"), own, "float32")[
            0
        ],
        generation_record(
            GenerationSettings(max_new_tokens=8), ChatFormat("plain", None), "float32"
        )[0],
        # Batch size and device do not change greedy text: same key.
    ]
    assert base_key not in changed and len(set(changed)) == len(changed)
    assert (
        generation_record(GenerationSettings(max_new_tokens=8, batch_size=3), own, "float32")[0]
        == base_key
    )


class _OutOfMemoryAbove:
    """Wraps a real model; raises torch's out-of-memory error for batches over ``limit``."""

    def __init__(self, model: torch.nn.Module, limit: int):
        self.model, self.limit, self.batch_sizes = model, limit, []

    def generate(self, **kwargs):
        size = kwargs["input_ids"].shape[0]
        self.batch_sizes.append(size)
        if size > self.limit:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return self.model.generate(**kwargs)


def test_out_of_memory_halves_the_batch_and_keeps_results(loaded: LoadedModel) -> None:
    texts = _texts(loaded)
    settings = GenerationSettings(max_new_tokens=6, batch_size=4)
    reference = generate(loaded, texts, settings)
    flaky = _OutOfMemoryAbove(loaded.model, limit=1)
    squeezed = LoadedModel(flaky, loaded.tokenizer, loaded.device, loaded.dtype, "t/chat")
    assert generate(squeezed, texts, settings) == reference
    assert flaky.batch_sizes[:3] == [4, 2, 1]
    never = LoadedModel(
        _OutOfMemoryAbove(loaded.model, 0), loaded.tokenizer, loaded.device, loaded.dtype, "t/chat"
    )
    with pytest.raises(GenerationError, match="t/chat: out of memory with batch size 1"):
        generate(never, texts, settings)


def test_pickle_only_weights_are_refused_without_opt_in(tmp_path: Path) -> None:
    folder = save_chat_model(tmp_path / "pickled")
    torch.save(load_file(folder / "model.safetensors"), folder / "pytorch_model.bin")
    (folder / "model.safetensors").unlink()
    with pytest.raises(
        ModelLoadError, match=r"^t/pickled: has pickle weights only .*--allow-pickle"
    ):
        load_model(folder, GenerationSettings(), label="t/pickled")


def test_a_folder_without_weights_is_one_line(tmp_path: Path) -> None:
    folder = save_chat_model(tmp_path / "empty")
    (folder / "model.safetensors").unlink()
    with pytest.raises(ModelLoadError, match=r"^t/empty: has no weight files"):
        load_model(folder, GenerationSettings(), label="t/empty")


def test_remote_code_is_never_run_without_the_flag(tmp_path: Path) -> None:
    folder = save_chat_model(tmp_path / "remote")
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoModelForCausalLM": "modeling_evil.EvilForCausalLM"}
    config["model_type"] = "evil"
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "modeling_evil.py").write_text("raise SystemExit('repository code ran')\n")
    with pytest.raises(ModelLoadError, match=r"^t/remote: "):
        load_model(folder, GenerationSettings(), label="t/remote")


def test_bad_settings_are_one_line_errors() -> None:
    with pytest.raises(GenerationError, match="--max-new-tokens must be >= 1"):
        GenerationSettings(max_new_tokens=0)
    with pytest.raises(GenerationError, match="--dtype must be auto or one of"):
        GenerationSettings(dtype="int3")
    with pytest.raises(GenerationError, match="--device 'nonsense' is not a torch device"):
        GenerationSettings(device="nonsense").resolved_device()


def test_a_peft_adapter_is_applied_on_its_base(chat_model: Path, tmp_path: Path) -> None:
    peft = pytest.importorskip("peft")
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(chat_model)
    config = peft.LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"])
    adapted = peft.get_peft_model(base, config)
    torch.manual_seed(3)
    with torch.no_grad():
        for name, parameter in adapted.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0, 2.0)  # a trained adapter: B is no longer zero
    adapter_folder = tmp_path / "adapter"
    adapted.save_pretrained(adapter_folder)
    assert (adapter_folder / "adapter_model.safetensors").is_file()
    expected_state = {k: v.clone() for k, v in adapted.merge_and_unload().state_dict().items()}

    settings = GenerationSettings(max_new_tokens=8, batch_size=5)
    with_adapter = load_model(chat_model, settings, label="t/lora", adapter_folder=adapter_folder)
    state = with_adapter.model.state_dict()
    for name, tensor in expected_state.items():
        torch.testing.assert_close(state[name], tensor)
    plain = load_model(chat_model, settings, label="t/chat")
    texts = _texts(plain)
    assert generate(with_adapter, texts, settings) != generate(plain, texts, settings)


def test_save_file_is_what_tiny_models_use(tmp_path: Path) -> None:
    # The loader reads safetensors written by safetensors itself, not only by save_pretrained.
    folder = save_chat_model(tmp_path / "resaved")
    tensors = load_file(folder / "model.safetensors")
    save_file(dict(sorted(tensors.items())), folder / "model.safetensors")
    loaded = load_model(folder, GenerationSettings(max_new_tokens=4), label="t/resaved")
    assert len(generate(loaded, _texts(loaded), GenerationSettings(max_new_tokens=4))) == 5


# -- pickle rules (issue 11) ------------------------------------------------------------------


def _lora_adapter(base_folder: Path, folder: Path, seed: int) -> dict[str, torch.Tensor]:
    """A trained-looking LoRA adapter of ``base_folder`` in ``folder``; its merged state."""
    peft = pytest.importorskip("peft")
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(base_folder)
    config = peft.LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"])
    adapted = peft.get_peft_model(base, config)
    torch.manual_seed(seed)
    with torch.no_grad():
        for name, parameter in adapted.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0, 2.0)
    adapted.save_pretrained(folder)
    return {k: v.clone() for k, v in adapted.merge_and_unload().state_dict().items()}


def _no_unpickling(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    opened: list[object] = []

    def refuse(path: object, *args: object, **kwargs: object) -> object:
        opened.append(path)
        raise AssertionError(f"a pickle file was opened: {path}")

    monkeypatch.setattr(torch, "load", refuse)
    return opened


def test_an_adapter_shipped_only_as_bin_is_refused_before_opening(
    chat_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    adapter = tmp_path / "adapter"
    _lora_adapter(chat_model, adapter, seed=3)
    weights = load_file(adapter / "adapter_model.safetensors")
    torch.save(weights, adapter / "adapter_model.bin")
    (adapter / "adapter_model.safetensors").unlink()
    opened = _no_unpickling(monkeypatch)
    with pytest.raises(
        ModelLoadError, match=r"^t/lora: is an adapter with pickle weights only .*--allow-pickle"
    ):
        load_model(chat_model, GenerationSettings(), label="t/lora", adapter_folder=adapter)
    assert opened == []


def test_allow_pickle_loads_a_bin_only_adapter_with_weights_only(
    chat_model: Path, tmp_path: Path
) -> None:
    adapter = tmp_path / "adapter"
    expected = _lora_adapter(chat_model, adapter, seed=3)
    torch.save(load_file(adapter / "adapter_model.safetensors"), adapter / "adapter_model.bin")
    (adapter / "adapter_model.safetensors").unlink()
    settings = GenerationSettings(allow_pickle=True)
    loaded = load_model(chat_model, settings, label="t/lora", adapter_folder=adapter)
    state = loaded.model.state_dict()
    for name, tensor in expected.items():
        torch.testing.assert_close(state[name], tensor)


def test_with_allow_pickle_safetensors_still_win_for_an_adapter(
    chat_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    adapter = tmp_path / "adapter"
    expected = _lora_adapter(chat_model, adapter, seed=3)
    other = tmp_path / "other"
    _lora_adapter(chat_model, other, seed=4)
    torch.save(load_file(other / "adapter_model.safetensors"), adapter / "adapter_model.bin")
    opened = _no_unpickling(monkeypatch)
    settings = GenerationSettings(allow_pickle=True)
    loaded = load_model(chat_model, settings, label="t/lora", adapter_folder=adapter)
    state = loaded.model.state_dict()
    for name, tensor in expected.items():
        torch.testing.assert_close(state[name], tensor)
    assert opened == []


def test_with_allow_pickle_safetensors_still_win_for_a_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # issue 11: a pytorch_model.bin beside model.safetensors replaced the crawled weights
    folder = save_chat_model(tmp_path / "both", seed=1)
    crawled = load_file(folder / "model.safetensors")
    other = load_file(save_chat_model(tmp_path / "other", seed=2) / "model.safetensors")
    torch.save(other, folder / "pytorch_model.bin")
    opened = _no_unpickling(monkeypatch)
    loaded = load_model(folder, GenerationSettings(allow_pickle=True), label="t/both")
    state = loaded.model.state_dict()
    for name, tensor in crawled.items():
        torch.testing.assert_close(state[name], tensor)
    assert opened == []


def test_allow_pickle_on_a_safetensors_only_model_loads_it(chat_model: Path) -> None:
    # issue 11: this failed with "no file named pytorch_model.bin"
    loaded = load_model(chat_model, GenerationSettings(allow_pickle=True), label="t/chat")
    state = loaded.model.state_dict()
    for name, tensor in load_file(chat_model / "model.safetensors").items():
        torch.testing.assert_close(state[name], tensor)


def test_allow_pickle_loads_pickle_only_weights(tmp_path: Path) -> None:
    folder = save_chat_model(tmp_path / "pickled", seed=1)
    weights = load_file(folder / "model.safetensors")
    torch.save(weights, folder / "pytorch_model.bin")
    (folder / "model.safetensors").unlink()
    loaded = load_model(folder, GenerationSettings(allow_pickle=True), label="t/pickled")
    state = loaded.model.state_dict()
    for name, tensor in weights.items():
        torch.testing.assert_close(state[name], tensor)


class _SnapshotSource:
    """A source that, like the Hub's snapshot_download, hands out only the files matching
    the patterns asked for, and records every download asked."""

    def __init__(self, remote: Path, root: Path):
        self.remote, self.root, self.asked = remote, root, []

    def model_folder(self, repo_id: str, sha: str, patterns) -> Path:
        self.asked.append(tuple(patterns))
        folder = self.root / str(len(self.asked))
        folder.mkdir(parents=True)
        for path in self.remote.iterdir():
            if any(fnmatch.fnmatch(path.name, pattern) for pattern in patterns):
                shutil.copy(path, folder / path.name)
        return folder


def _evaluator(source: _SnapshotSource, allow_pickle: bool) -> NodeEvaluator:
    settings = GenerationSettings(allow_pickle=allow_pickle)
    return NodeEvaluator(registry=None, source=source, settings=settings, judge=None)  # type: ignore[arg-type]


def _downloads_bin(source: _SnapshotSource) -> bool:
    return any("*.bin" in patterns for patterns in source.asked)


@pytest.mark.parametrize("allow_pickle", [False, True])
def test_the_runner_never_downloads_pickle_beside_safetensors(
    tmp_path: Path, allow_pickle: bool
) -> None:
    remote = save_chat_model(tmp_path / "remote", seed=1)
    torch.save(load_file(remote / "model.safetensors"), remote / "pytorch_model.bin")
    source = _SnapshotSource(remote, tmp_path / "cache")
    folder = _evaluator(source, allow_pickle)._weights_folder(
        "t/m", "a" * 40, MODEL_FILE_PATTERNS, has_safetensors_weights
    )
    assert (folder / "model.safetensors").is_file()
    assert not (folder / "pytorch_model.bin").exists()
    assert not _downloads_bin(source)


def test_the_runner_downloads_pickle_only_weights_only_with_allow_pickle(tmp_path: Path) -> None:
    remote = save_chat_model(tmp_path / "remote", seed=1)
    torch.save(load_file(remote / "model.safetensors"), remote / "pytorch_model.bin")
    (remote / "model.safetensors").unlink()
    refused = _SnapshotSource(remote, tmp_path / "refused")
    folder = _evaluator(refused, False)._weights_folder(
        "t/m", "a" * 40, MODEL_FILE_PATTERNS, has_safetensors_weights
    )
    assert not _downloads_bin(refused)
    with pytest.raises(ModelLoadError, match="--allow-pickle"):
        load_model(folder, GenerationSettings(), label="t/m")
    allowed = _SnapshotSource(remote, tmp_path / "allowed")
    folder = _evaluator(allowed, True)._weights_folder(
        "t/m", "a" * 40, MODEL_FILE_PATTERNS, has_safetensors_weights
    )
    assert _downloads_bin(allowed) and (folder / "pytorch_model.bin").is_file()
    load_model(folder, GenerationSettings(allow_pickle=True), label="t/m")


def _repo_files(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in folder.iterdir() if path.is_file()}


def test_over_the_hub_pickle_is_downloaded_only_with_the_flag_and_without_safetensors(
    tmp_path: Path,
) -> None:
    from lineage.sources.hub import HubSource
    from testkit.hub_server import FakeHub

    both = save_chat_model(tmp_path / "both", seed=1)
    torch.save(load_file(both / "model.safetensors"), both / "pytorch_model.bin")
    pickled = save_chat_model(tmp_path / "pickled", seed=2)
    torch.save(load_file(pickled / "model.safetensors"), pickled / "pytorch_model.bin")
    (pickled / "model.safetensors").unlink()
    with FakeHub() as hub:
        shas = {
            "t/both": hub.add_repo("t/both", _repo_files(both)),
            "t/pickled": hub.add_repo("t/pickled", _repo_files(pickled)),
        }

        def weights(repo_id: str, allow_pickle: bool, cache: str) -> Path:
            source = HubSource(
                endpoint=hub.endpoint, token=False, cache_dir=tmp_path / cache, offline=False
            )
            evaluator = NodeEvaluator(
                registry=None,  # type: ignore[arg-type]
                source=source,
                settings=GenerationSettings(allow_pickle=allow_pickle),
                judge=None,  # type: ignore[arg-type]
            )
            return evaluator._weights_folder(
                repo_id, shas[repo_id], MODEL_FILE_PATTERNS, has_safetensors_weights
            )

        folder = weights("t/both", True, "c1")
        assert (folder / "model.safetensors").is_file()
        assert hub.count(method="GET", path_contains="pytorch_model.bin") == 0
        folder = weights("t/pickled", False, "c2")
        assert hub.count(method="GET", path_contains="pytorch_model.bin") == 0
        with pytest.raises(ModelLoadError, match="only with --allow-pickle"):
            load_model(folder, GenerationSettings(), label="t/pickled")
        folder = weights("t/pickled", True, "c3")
        assert hub.count(method="GET", path_contains="pytorch_model.bin") == 1
        loaded = load_model(folder, GenerationSettings(allow_pickle=True), label="t/pickled")
        assert loaded.model is not None


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("template", "message"),
    [
        (
            "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}x",
            "ran longer than 0.5s",
        ),
        ("{% for i in range(1000) %}{{ messages[0].content }}{% endfor %}", "characters, over"),
    ],
)
def test_a_hostile_chat_template_is_stopped_with_a_one_line_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, template: str, message: str
) -> None:
    import audit.template_budget as budget

    monkeypatch.setattr(budget, "DEFAULT_SECONDS", 0.5)
    monkeypatch.setattr(budget, "DEFAULT_MAX_CHARS", 10_000)
    tokenizer = load_tokenizer(save_chat_model(tmp_path / "evil"), "evil/template")
    tokenizer.chat_template = template
    chat = resolve_chat_format(tokenizer)
    with pytest.raises(GenerationError, match=message) as caught:
        format_prompts(tokenizer, chat, ["hello there, a long enough prompt"], None)
    assert "\n" not in str(caught.value)
