"""Parse ``adapter_config.json`` of a PEFT adapter.

>>> parse_adapter_config('{"base_model_name_or_path": "org/base", "peft_type": "LORA", "r": 8}').r
8
"""

from __future__ import annotations

from typing import Any

from lineage.bounded import MIB, load_json_object, type_name
from lineage.errors import MalformedFileError
from lineage.records import AdapterConfig

MAX_ADAPTER_CONFIG_BYTES = 1 * MIB


def parse_adapter_config(
    text: str | bytes, *, repo_id: str | None = None, filename: str = "adapter_config.json"
) -> AdapterConfig:
    """Parse the lineage-relevant part of a PEFT adapter config."""
    data = load_json_object(
        text, repo_id=repo_id, filename=filename, max_bytes=MAX_ADAPTER_CONFIG_BYTES
    )

    def fail(field: str, expected: str) -> MalformedFileError:
        return MalformedFileError(
            f"{field} must be {expected}, got {type_name(data[field])}",
            repo_id=repo_id,
            file=filename,
        )

    def optional_string(field: str) -> str | None:
        value = data.get(field)
        if value is None or isinstance(value, str):
            return value or None
        raise fail(field, "a string")

    rank = data.get("r")
    if rank is not None and not _is_whole_number(rank):
        raise fail("r", "a whole number")
    alpha = data.get("lora_alpha")
    if alpha is not None and not _is_number(alpha):
        raise fail("lora_alpha", "a number")
    return AdapterConfig(
        base_model_name_or_path=optional_string("base_model_name_or_path"),
        peft_type=optional_string("peft_type"),
        task_type=optional_string("task_type"),
        r=int(rank) if rank is not None else None,
        lora_alpha=float(alpha) if alpha is not None else None,
        target_modules=_target_modules(data, fail),
    )


def _target_modules(data: dict[str, Any], fail: Any) -> list[str]:
    # PEFT takes a list of module names, or one string that is a regex over module paths.
    value = data.get("target_modules")
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return list(value)
    raise fail("target_modules", "a list of strings or a regex string")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_whole_number(value: Any) -> bool:
    return _is_number(value) and float(value).is_integer()
