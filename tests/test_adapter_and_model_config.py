"""adapter_config.json (written by PEFT) and config.json (written by transformers)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from peft import LoraConfig
from transformers import GPT2Config, LlamaConfig, LlavaConfig

from lineage.adapter_config import MAX_ADAPTER_CONFIG_BYTES, parse_adapter_config
from lineage.errors import FileTooLargeError, MalformedFileError
from lineage.model_config import MAX_MODEL_CONFIG_BYTES, model_config_from_dict, parse_model_config
from tests.support.tiny_models import TINY_LLAMA, save_lora_adapter, save_tiny_llama


@pytest.fixture(scope="module")
def base_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_llama(tmp_path_factory.mktemp("adapter-base") / "base", seed=0)


@pytest.mark.parametrize(
    ("target_modules", "base_repo_id"),
    [(["q_proj", "v_proj"], "org/base"), (r".*\.(q_proj|v_proj)", None)],
)
def test_adapter_config_peft_wrote(
    base_folder: Path, tmp_path: Path, target_modules: list[str] | str, base_repo_id: str | None
) -> None:
    folder = save_lora_adapter(
        base_folder, tmp_path / "lora", base_repo_id=base_repo_id, target_modules=target_modules
    )
    adapter = parse_adapter_config((folder / "adapter_config.json").read_text(), repo_id="o/l")
    theirs = LoraConfig.from_pretrained(folder)
    assert adapter.base_model_name_or_path == theirs.base_model_name_or_path
    assert adapter.base_model_name_or_path == (base_repo_id or str(base_folder))
    assert (adapter.peft_type, adapter.task_type) == ("LORA", "CAUSAL_LM")
    assert (adapter.r, adapter.lora_alpha) == (theirs.r, theirs.lora_alpha) == (8, 16.0)
    if isinstance(target_modules, str):
        assert adapter.target_modules == [target_modules] == [theirs.target_modules]
    else:
        assert sorted(adapter.target_modules) == sorted(theirs.target_modules)


def test_adapter_config_with_fields_absent() -> None:
    adapter = parse_adapter_config(b'{"base_model_name_or_path": null}')
    assert adapter.base_model_name_or_path is None
    assert (adapter.r, adapter.lora_alpha, adapter.target_modules) == (None, None, [])


def test_adapter_config_accepts_whole_floats_for_r() -> None:
    adapter = parse_adapter_config('{"r": 16.0, "lora_alpha": 8.5}')
    assert (adapter.r, adapter.lora_alpha) == (16, 8.5)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("not json", "invalid JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"r": "eight"}', "r must be a whole number"),
        ('{"r": 2.5}', "r must be a whole number"),
        ('{"r": true}', "r must be a whole number"),
        ('{"lora_alpha": "16"}', "lora_alpha must be a number"),
        ('{"target_modules": 5}', "target_modules must be"),
        ('{"target_modules": ["q", 1]}', "target_modules must be"),
        ('{"base_model_name_or_path": 3}', "base_model_name_or_path must be a string"),
        ('{"a": ' * 100_000 + "1" + "}" * 100_000, "nested too deeply"),
    ],
)
def test_malformed_adapter_configs(text: str, match: str) -> None:
    with pytest.raises(MalformedFileError, match=match) as caught:
        parse_adapter_config(text, repo_id="org/lora")
    assert str(caught.value).startswith("org/lora: adapter_config.json: ")


def test_adapter_config_size_and_encoding_bounds() -> None:
    with pytest.raises(FileTooLargeError):
        parse_adapter_config(b'{"x": "' + b"a" * MAX_ADAPTER_CONFIG_BYTES + b'"}')
    with pytest.raises(MalformedFileError, match="not UTF-8"):
        parse_adapter_config(b'{"x": "\xff"}')


def test_model_config_transformers_wrote(base_folder: Path) -> None:
    summary = parse_model_config((base_folder / "config.json").read_text(), repo_id="org/base")
    assert summary.architectures == ["LlamaForCausalLM"]
    assert summary.model_type == "llama"
    assert summary.hidden_size == TINY_LLAMA["hidden_size"]
    assert summary.num_hidden_layers == TINY_LLAMA["num_hidden_layers"]
    assert summary.num_attention_heads == TINY_LLAMA["num_attention_heads"]
    assert summary.num_key_value_heads == TINY_LLAMA["num_key_value_heads"]
    assert summary.intermediate_size == TINY_LLAMA["intermediate_size"]
    assert summary.vocab_size == TINY_LLAMA["vocab_size"]
    assert summary.max_position_embeddings == LlamaConfig().max_position_embeddings
    assert summary.torch_dtype == "float32"  # transformers 5 writes "dtype"
    assert summary.quantization_config is None
    assert summary.name_or_path is None


def test_multimodal_config_falls_back_to_text_config(tmp_path: Path) -> None:
    LlavaConfig(text_config=LlamaConfig(**TINY_LLAMA).to_dict()).save_pretrained(tmp_path)
    summary = parse_model_config((tmp_path / "config.json").read_text())
    assert summary.model_type == "llava"
    assert (summary.hidden_size, summary.num_hidden_layers) == (32, 2)
    assert (summary.num_key_value_heads, summary.vocab_size) == (2, 128)


def test_gpt2_style_size_names(tmp_path: Path) -> None:
    GPT2Config(n_embd=32, n_layer=2, n_head=4, vocab_size=128).save_pretrained(tmp_path)
    summary = parse_model_config((tmp_path / "config.json").read_bytes())
    assert (summary.hidden_size, summary.num_hidden_layers, summary.num_attention_heads) == (
        32,
        2,
        4,
    )
    assert summary.max_position_embeddings == 1024


def test_partial_config_from_model_info() -> None:
    summary = model_config_from_dict(
        {
            "architectures": ["MistralForCausalLM"],
            "model_type": "mistral",
            "quantization_config": {"quant_method": "gptq", "bits": 4},
        }
    )
    assert summary.architectures == ["MistralForCausalLM"]
    assert summary.quantization_config == {"quant_method": "gptq", "bits": 4}
    assert summary.hidden_size is None and summary.torch_dtype is None


def test_older_transformers_fields_and_odd_types() -> None:
    summary = model_config_from_dict(
        {
            "_name_or_path": "org/base",
            "torch_dtype": "bfloat16",
            "architectures": "LlamaForCausalLM",
            "hidden_size": "4096",
            "num_hidden_layers": True,
            "vocab_size": -1,
            "quantization_config": "gptq",
            "text_config": [1],
        }
    )
    assert summary.name_or_path == "org/base"
    assert summary.torch_dtype == "bfloat16"
    assert summary.architectures == ["LlamaForCausalLM"]
    assert (summary.hidden_size, summary.num_hidden_layers, summary.vocab_size) == (
        None,
        None,
        None,
    )
    assert summary.quantization_config is None


def test_malformed_model_configs() -> None:
    with pytest.raises(MalformedFileError, match="expected a JSON object"):
        parse_model_config('"a string"', repo_id="org/x")
    with pytest.raises(MalformedFileError, match=r"org/x: config\.json: invalid JSON"):
        parse_model_config("{'single': 'quotes'}", repo_id="org/x")
    with pytest.raises(MalformedFileError, match="not a mapping"):
        model_config_from_dict(["architectures"])  # type: ignore[arg-type]
    with pytest.raises(FileTooLargeError):
        parse_model_config(json.dumps({"pad": "x" * MAX_MODEL_CONFIG_BYTES}))
