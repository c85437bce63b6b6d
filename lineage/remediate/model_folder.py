"""A merged model as a folder someone can load, crawl and publish: weights, config,
tokenizer and chat template, the card that declares both parents, the recipe.

``write_merged_model`` is used for the sweep's candidates and for the recommended model
alike, so what the sweep measured is exactly what is published.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from lineage.errors import MalformedFileError
from lineage.example import write_card
from lineage.remediate.errors import NotMergeableError

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
    recipe_names: tuple[str, str] | None = None,
) -> MergedModel:
    """θ(λ) in ``out`` with the files it needs to run and the card that says what it is.

    ``recipe_names``: (aligned, fine-tune) as mergekit should name them in the recipe when
    that differs from the repo ids (``base+adapter`` for a PEFT adapter)."""
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
    recipe_aligned, recipe_finetune = recipe_names or (aligned, finetune)
    recipe = yaml.safe_dump(mergekit_recipe(recipe_aligned, recipe_finetune, lam), sort_keys=False)
    (out / "mergekit_config.yml").write_text(recipe, encoding="utf-8")
    front: dict[str, Any] = {
        "base_model": [aligned, finetune],
        "base_model_relation": "merge",
        "tags": ["merge", "lineage-audit"],
    }
    if model_index:
        front["model-index"] = model_index
    provenance = ", ".join(f"`{name}` from {repo}" for name, repo in carried.items())
    text = body.rstrip("\n") + (f"\n\nFiles carried over: {provenance}." if carried else "")
    write_card(out, front, text + "\n\n```yaml\n" + recipe + "```\n")
    return MergedModel(out, lam, carried, recipe)


def check_pair(aligned_dir: Path, finetune_dir: Path, *, aligned: str, finetune: str) -> None:
    """Refuse a pair that cannot be merged back, before anything is evaluated: another
    architecture, tensor names or shapes (``merge.check_mergeable``), or another vocabulary.
    One line naming both repos and the first mismatch."""
    from lineage.remediate.merge import check_mergeable, read_checkpoint  # loads torch

    check_mergeable(read_checkpoint(finetune_dir, finetune), read_checkpoint(aligned_dir, aligned))
    ft_vocab, al_vocab = _vocabulary(finetune_dir), _vocabulary(aligned_dir)
    if ft_vocab is None or al_vocab is None or ft_vocab == al_vocab:
        return  # no tokenizer.json on one side: the shapes above are all that can be said
    for token in sorted(set(ft_vocab) | set(al_vocab), key=lambda t: (ft_vocab.get(t, -1), t)):
        if ft_vocab.get(token) != al_vocab.get(token):
            raise NotMergeableError(
                finetune,
                aligned,
                f"the tokenizers differ: token {token!r} is id {ft_vocab.get(token)} in"
                f" {finetune}, {al_vocab.get(token)} in {aligned}",
            )


def _vocabulary(folder: Path) -> dict[str, int] | None:
    """token -> id from ``tokenizer.json`` (its model's vocab and the added tokens)."""
    path = folder / "tokenizer.json"
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise MalformedFileError(f"does not read as JSON ({error})", file=str(path)) from error
    vocab = (data.get("model") or {}).get("vocab")
    tokens: dict[str, int] = {}
    if isinstance(vocab, dict):
        tokens.update({str(k): int(v) for k, v in vocab.items()})
    elif isinstance(vocab, list):  # unigram: [[token, score], ...]
        tokens.update({str(entry[0]): i for i, entry in enumerate(vocab)})
    for added in data.get("added_tokens") or []:
        if isinstance(added, dict) and "content" in added and "id" in added:
            tokens[str(added["content"])] = int(added["id"])
    return tokens


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
