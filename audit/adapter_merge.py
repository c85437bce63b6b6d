"""A PEFT adapter merged into its base, saved as a model folder.

Used where full weights are needed instead of base + adapter: the vLLM backend, for an
adapter its LoRA support cannot serve (DoRA, ``modules_to_save``, a rank above its limit,
an architecture without LoRA layers), and the remediation sweep, whose linear merge works on
full weights. The merge is PEFT's own ``merge_and_unload``, as the adapter's users deploy it;
the result is saved as safetensors in the base's dtype, with the base's config and the
adapter's tokenizer files (else the base's).
"""

from __future__ import annotations

import shutil
from pathlib import Path

TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "tokenizer.model",
    "special_tokens_map.json",
    "chat_template.jinja",
    "vocab.json",
    "merges.txt",
)


class AdapterMergeError(Exception):
    """PEFT or transformers could not merge the adapter; the message is their first line."""


def save_merged_adapter(base_dir: Path, adapter_dir: Path, destination: Path) -> Path:
    """Write the adapter of ``adapter_dir`` merged into the model of ``base_dir`` to
    ``destination`` (an existing, empty folder); ``destination``."""
    import torch  # noqa: F401  (transformers and peft need it; imported here, not at load)
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    try:
        model = AutoModelForCausalLM.from_pretrained(
            str(base_dir), dtype="auto", use_safetensors=True, local_files_only=True
        )
        merged = PeftModel.from_pretrained(
            model, str(adapter_dir), is_trainable=False
        ).merge_and_unload()
    except Exception as error:  # PEFT and transformers raise many kinds
        raise AdapterMergeError(_first_line(error)) from error
    merged.save_pretrained(str(destination), safe_serialization=True)
    for folder in (base_dir, adapter_dir):  # the adapter's tokenizer files win
        for name in TOKENIZER_FILES:
            if (folder / name).is_file():
                shutil.copyfile(folder / name, destination / name)
    return destination


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__
