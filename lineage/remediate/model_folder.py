"""A merged model as a folder someone can load, crawl and publish: weights, config,
tokenizer and chat template, the card that declares both parents, the recipe.

``write_merged_model`` is used for the sweep's candidates and for the recommended model
alike, so what the sweep measured is exactly what is published.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from lineage.example import write_card

# What a merge takes from the fine-tune (else from the aligned model) besides its weights:
# the tokenizer and chat template make its answers comparable with the fine-tune's.
CARRIED_FILES = (
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "tokenizer.model",
    "special_tokens_map.json",
    "chat_template.jinja",
    "vocab.json",
    "merges.txt",
)
MODEL_PATTERNS = ("*.safetensors", "*.safetensors.index.json", *CARRIED_FILES)


@dataclass(frozen=True)
class MergedModel:
    folder: Path
    lam: float
    carried_from: dict[str, str]  # carried file -> the repo it came from
    recipe: str  # the mergekit config that reproduces the weights


def write_merged_model(
    aligned_dir: Path,
    finetune_dir: Path,
    lam: float,
    out: Path,
    *,
    aligned: str,
    finetune: str,
    body: str,
    model_index: list[dict[str, Any]] | None = None,
    overwrite: bool = False,
) -> MergedModel:
    """θ(λ) in ``out`` with the files it needs to run and the card that says what it is."""
    from lineage.remediate.merge import merge_linear  # loads torch

    merge_linear(
        aligned_dir,
        finetune_dir,
        lam,
        out,
        overwrite=overwrite,
        aligned_name=aligned,
        finetune_name=finetune,
    )
    carried: dict[str, str] = {}
    for name in CARRIED_FILES:
        for folder, repo in ((finetune_dir, finetune), (aligned_dir, aligned)):
            if (folder / name).is_file():
                shutil.copyfile(folder / name, out / name)
                carried[name] = repo
                break
    recipe = yaml.safe_dump(mergekit_recipe(aligned, finetune, lam), sort_keys=False)
    (out / "mergekit_config.yml").write_text(recipe, encoding="utf-8")
    front: dict[str, Any] = {
        "base_model": [aligned, finetune],
        "base_model_relation": "merge",
        "tags": ["merge", "lineage-audit"],
    }
    if model_index:
        front["model-index"] = model_index
    write_card(out, front, body.rstrip("\n") + "\n\n```yaml\n" + recipe + "```\n")
    return MergedModel(out, lam, carried, recipe)


def mergekit_recipe(aligned: str, finetune: str, lam: float) -> dict[str, Any]:
    """mergekit's ``linear`` config for θ(λ): ``mergekit-yaml`` on it writes the same weights."""
    return {
        "models": [
            {"model": aligned, "parameters": {"weight": round(1 - lam, 6)}},
            {"model": finetune, "parameters": {"weight": round(lam, 6)}},
        ],
        "merge_method": "linear",
    }


def folder_sha256(folder: Path) -> str:
    """A sha256 over every file of ``folder``: its relative path, size and content, sorted."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        relative = path.relative_to(folder).as_posix()
        digest.update(f"{relative}\0{path.stat().st_size}\0".encode())
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def measured_model_index(
    name: str, results: Mapping[str, tuple[str, str, float]]
) -> list[dict[str, Any]]:
    """A ``model-index`` of what the sweep measured on this model: one result per suite
    (suite name -> (content hash, metric, value)), the dataset named as the suite and its
    content hash given as the revision, so a later audit can compare claim and re-run."""
    return [
        {
            "name": name,
            "results": [
                {
                    "task": {"type": "text-generation"},
                    "dataset": {"name": suite, "type": suite, "revision": content_hash},
                    "metrics": [{"type": metric, "value": value, "name": metric.upper()}],
                }
                for suite, (content_hash, metric, value) in results.items()
            ],
        }
    ]
