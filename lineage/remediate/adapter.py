"""A PEFT adapter as one end of the merge-back: the adapter folded into its base.

The linear merge works on full weights, so a LoRA (or any PEFT adapter PEFT can merge) is
first made the model its users deploy: ``PeftModel.from_pretrained(base).merge_and_unload()``,
saved as safetensors in the base's dtype, with the base's config and the adapter's tokenizer
(else the base's). With the adapter's base as the aligned model,

    θ(λ) = (1−λ)·θ_base + λ·(θ_base + Δ) = θ_base + λ·Δ

so λ scales the adapter's delta; the sweep's document says so (``adapter_note``).

The folded model is written once per (adapter, revision) into the sweep's cache, through a
staging folder renamed into place, and reused by every later sweep of that adapter.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from lineage.remediate.errors import RemediationError

COPIED_FROM_ADAPTER = (
    "tokenizer.json",
    "tokenizer_config.json",
    "tokenizer.model",
    "special_tokens_map.json",
    "chat_template.jinja",
    "vocab.json",
    "merges.txt",
)
DONE_MARK = ".folded"  # written last: a folder without it is an interrupted fold


def fold_adapter(base_dir: Path, adapter_dir: Path, out: Path, *, adapter: str, base: str) -> Path:
    """``out`` holding the adapter merged into its base (reused when already folded)."""
    if (out / DONE_MARK).is_file():
        return out
    import torch  # noqa: F401  (transformers and peft need it; imported here, not at load)
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        try:
            model = AutoModelForCausalLM.from_pretrained(
                str(base_dir), dtype="auto", use_safetensors=True, local_files_only=True
            )
            folded = PeftModel.from_pretrained(
                model, str(adapter_dir), is_trainable=False
            ).merge_and_unload()
        except Exception as error:  # PEFT and transformers raise many kinds
            raise RemediationError(
                f"the adapter {adapter} cannot be folded into its base {base}: {_first_line(error)}"
            ) from error
        folded.save_pretrained(str(staging), safe_serialization=True)
        for folder in (base_dir, adapter_dir):  # the adapter's tokenizer files win
            for name in COPIED_FROM_ADAPTER:
                if (folder / name).is_file():
                    shutil.copyfile(folder / name, staging / name)
        (staging / DONE_MARK).write_text(f"{adapter} on {base}\n", encoding="utf-8")
        shutil.rmtree(out, ignore_errors=True)  # an interrupted fold of an earlier run
        staging.rename(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out


def adapter_note(adapter: str, base: str, aligned: str) -> str:
    """What λ means when the fine-tune is an adapter: said in the output, never implied."""
    if aligned == base:
        return (
            f"{adapter} is a PEFT adapter on {base}: θ_finetune is the adapter merged into its"
            " base, so θ(λ) = θ_base + λ·Δ_adapter and λ scales the adapter's delta"
        )
    return (
        f"{adapter} is a PEFT adapter on {base}: θ_finetune is the adapter merged into {base},"
        f" and θ(λ) = (1−λ)·θ_aligned + λ·(θ_base + Δ_adapter) with {aligned} as the aligned"
        " model, so λ does not scale the adapter's delta alone"
    )


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__
