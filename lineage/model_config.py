"""Parse the lineage-relevant part of ``config.json``.

Also used for the partial ``config`` the Hub's model_info returns (architectures,
model_type, quantization_config only), so every field is optional. Multimodal configs keep
the language model's sizes under ``text_config``; GPT-2-style configs name them
``n_embd`` / ``n_layer`` / ``n_head``.

>>> model_config_from_dict({"architectures": ["LlamaForCausalLM"], "hidden_size": 64}).hidden_size
64
"""

from __future__ import annotations

from typing import Any

from lineage.bounded import MIB, load_json_object, type_name
from lineage.errors import MalformedFileError
from lineage.records import ModelConfigSummary

MAX_MODEL_CONFIG_BYTES = 4 * MIB

# Field of ModelConfigSummary -> keys that hold it, in order of preference.
_SIZE_KEYS: dict[str, tuple[str, ...]] = {
    "hidden_size": ("hidden_size", "n_embd", "d_model"),
    "num_hidden_layers": ("num_hidden_layers", "n_layer", "num_layers"),
    "num_attention_heads": ("num_attention_heads", "n_head", "num_heads"),
    "num_key_value_heads": ("num_key_value_heads",),
    "intermediate_size": ("intermediate_size", "n_inner", "ffn_dim"),
    "vocab_size": ("vocab_size",),
    "max_position_embeddings": ("max_position_embeddings", "n_positions"),
}
# Where multimodal configs keep the language model's own config.
_NESTED_TEXT_CONFIGS = ("text_config",)


def parse_model_config(
    text: str | bytes, *, repo_id: str | None = None, filename: str = "config.json"
) -> ModelConfigSummary:
    data = load_json_object(
        text, repo_id=repo_id, filename=filename, max_bytes=MAX_MODEL_CONFIG_BYTES
    )
    return model_config_from_dict(data, repo_id=repo_id, filename=filename)


def model_config_from_dict(
    data: dict[str, Any], *, repo_id: str | None = None, filename: str = "config.json"
) -> ModelConfigSummary:
    """Summarise a config mapping; a field of the wrong type reads as absent."""
    if not isinstance(data, dict):
        raise MalformedFileError(
            f"model config is {type_name(data)}, not a mapping", repo_id=repo_id, file=filename
        )
    nested = [data[key] for key in _NESTED_TEXT_CONFIGS if isinstance(data.get(key), dict)]
    sizes = {field: _first_size([data, *nested], keys) for field, keys in _SIZE_KEYS.items()}
    architectures = data.get("architectures")
    if isinstance(architectures, str):
        architectures = [architectures]
    if not isinstance(architectures, list):
        architectures = []
    quantization = data.get("quantization_config")
    return ModelConfigSummary(
        name_or_path=_string(data.get("_name_or_path")),
        architectures=[name for name in architectures if isinstance(name, str)],
        model_type=_string(data.get("model_type")),
        # transformers 5 writes "dtype"; earlier versions wrote "torch_dtype".
        torch_dtype=_string(data.get("torch_dtype")) or _string(data.get("dtype")),
        quantization_config=dict(quantization) if isinstance(quantization, dict) else None,
        **sizes,
    )


def _first_size(mappings: list[dict[str, Any]], keys: tuple[str, ...]) -> int | None:
    for mapping in mappings:
        for key in keys:
            value = mapping.get(key)
            if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
                return value
    return None


def _string(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None
