"""A PEFT adapter as one end of the merge-back: the adapter folded into its base.

The linear merge works on full weights, so a LoRA (or any PEFT adapter PEFT can merge) is
first made the model its users deploy (``audit.adapter_merge``: PEFT's own
``merge_and_unload``). With the adapter's base as the aligned model,

    θ(λ) = (1−λ)·θ_base + λ·(θ_base + Δ) = θ_base + λ·Δ

so λ scales the adapter's delta; the sweep's document says so (``adapter_note``).

The folded model is written once per (adapter, revision) into the sweep's cache, through a
staging folder renamed into place, and reused by every later sweep of that adapter.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from audit.adapter_merge import AdapterMergeError, save_merged_adapter
from lineage.remediate.errors import RemediationError

DONE_MARK = ".folded"  # written last: a folder without it is an interrupted fold


def fold_adapter(base_dir: Path, adapter_dir: Path, out: Path, *, adapter: str, base: str) -> Path:
    """``out`` holding the adapter merged into its base (reused when already folded)."""
    if (out / DONE_MARK).is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        try:
            save_merged_adapter(base_dir, adapter_dir, staging)
        except AdapterMergeError as error:
            raise RemediationError(
                f"the adapter {adapter} cannot be folded into its base {base}: {error}"
            ) from error
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
