"""Parse model cards: README.md front matter, the Hub's ``cardData``, mergekit's YAML block.

The front matter is the YAML between the leading ``---`` lines of README.md; the Hub serves
the same mapping as ``cardData`` JSON. Both go through one normalisation that keeps the
lineage-relevant fields and tolerates anything else a card may hold.

>>> card = parse_model_card("---\\nbase_model: org/base\\ntags: [merge]\\n---\\n# Model\\n")
>>> card.base_models, card.tags
(['org/base'], ['merge'])
"""

from __future__ import annotations

from typing import Any

from lineage.bounded import MIB, as_text, load_yaml, type_name
from lineage.errors import MalformedFileError
from lineage.prose import find_prose_mentions, says_merged, says_trained
from lineage.recipes import find_recipe_blocks, read_recipes
from lineage.records import CardMetadata, DeclaredEvaluation, RecipeBlock

MAX_CARD_BYTES = 2 * MIB
BASE_MODEL_RELATIONS: tuple[str, ...] = ("adapter", "merge", "quantized", "finetune")


def parse_model_card(
    text: str | bytes, *, repo_id: str | None = None, filename: str = "README.md"
) -> CardMetadata:
    """Parse README.md: front matter (if any), and the recipes and prose of the body."""
    text = as_text(text, repo_id=repo_id, filename=filename, max_bytes=MAX_CARD_BYTES)
    split = _split_front_matter(text)
    if split is None:
        return card_metadata_from_dict({}, repo_id=repo_id, body=text)
    front_matter, first_line, body, body_line = split
    data = load_yaml(
        front_matter,
        repo_id=repo_id,
        filename=filename,
        what="YAML front matter",
        first_line=first_line,
    )
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise MalformedFileError(
            f"front matter is {type_name(data)}, not a mapping", repo_id=repo_id, file=filename
        )
    return card_metadata_from_dict(
        data, repo_id=repo_id, body=body, filename=filename, body_line=body_line
    )


def card_metadata_from_dict(
    data: dict[str, Any],
    *,
    repo_id: str | None = None,
    body: str | None = None,
    filename: str = "README.md",
    body_line: int = 1,
) -> CardMetadata:
    """Normalise a card's metadata mapping (front matter, or the Hub's ``cardData``).

    With the ``body``, also every recipe block in it (the final one as ``mergekit_yaml``),
    the parents its prose names, and a warning for each block that does not parse.
    """
    if not isinstance(data, dict):
        raise MalformedFileError(
            f"card metadata is {type_name(data)}, not a mapping", repo_id=repo_id, file=filename
        )
    relation = data.get("base_model_relation")
    relation = relation.strip().lower() if isinstance(relation, str) else None
    blocks = find_recipe_blocks(body, first_line=body_line) if body else []
    stages = read_recipes(blocks, repo_id=repo_id, filename=filename)
    final_block = _block_of(blocks, stages.final.source_line) if stages.final else None
    return CardMetadata(
        base_models=_strings(data.get("base_model")),
        base_model_relation=relation if relation in BASE_MODEL_RELATIONS else None,
        tags=_strings(data.get("tags")),
        license=_license(data),
        library_name=_string(data.get("library_name")),
        datasets=_strings(data.get("datasets")),
        pipeline_tag=_string(data.get("pipeline_tag")),
        evaluations=declared_evaluations(data.get("model-index")),
        mergekit_yaml=final_block.text if final_block else None,
        front_matter={str(key): value for key, value in data.items()},
        recipe_blocks=blocks,
        prose_mentions=find_prose_mentions(body, first_line=body_line) if body else [],
        says_trained=says_trained(body) if body else False,
        says_merged=says_merged(body) if body else False,
        warnings=stages.warnings,
    )


def declared_evaluations(model_index: Any) -> list[DeclaredEvaluation]:
    """Flatten ``model-index`` into one record per metric; skip malformed entries."""
    evaluations: list[DeclaredEvaluation] = []
    for model in _dicts(model_index):
        for result in _dicts(model.get("results")):
            task = _dict(result.get("task"))
            dataset = _dict(result.get("dataset"))
            source = _dict(result.get("source"))
            for metric in _dicts(result.get("metrics")):
                verified = metric.get("verified")
                evaluations.append(
                    DeclaredEvaluation(
                        task_type=_string(task.get("type")),
                        task_name=_string(task.get("name")),
                        dataset_type=_string(dataset.get("type")),
                        dataset_name=_string(dataset.get("name")),
                        dataset_config=_string(dataset.get("config")),
                        dataset_split=_string(dataset.get("split")),
                        metric_type=_string(metric.get("type")),
                        metric_name=_string(metric.get("name")),
                        metric_value=_metric_value(metric.get("value")),
                        verified=verified if isinstance(verified, bool) else None,
                        source_name=_string(source.get("name")),
                        source_url=_string(source.get("url")),
                    )
                )
    return evaluations


def extract_mergekit_yaml(body: str) -> str | None:
    """The YAML of the model's own (final) mergekit recipe in a card body, or None."""
    return card_metadata_from_dict({}, body=body).mergekit_yaml


def _block_of(blocks: list[RecipeBlock], line: int | None) -> RecipeBlock | None:
    """The block holding the document that starts at ``line``: the last one starting at or
    before it. A block of several documents is the whole block (as mergekit-mega reads it)."""
    found = None
    for block in blocks:
        if line is not None and block.line <= line:
            found = block
    return found


# ----------------------------------------------------------------------------- helpers


def _split_front_matter(text: str) -> tuple[str, int, str, int] | None:
    """(front matter, its first line, body, the body's first line), or None when the card
    has none.

    As huggingface_hub reads cards: blank lines may precede the opening ``---``; the front
    matter ends at the next ``---`` line. An unclosed front matter is no front matter.
    """
    lines = text.splitlines(keepends=True)
    start = 0
    while start < len(lines) and not lines[start].strip():
        start += 1
    if start == len(lines) or lines[start].strip() != "---":
        return None
    for end in range(start + 1, len(lines)):
        if lines[end].rstrip() == "---":
            front_matter = "".join(lines[start + 1 : end])
            return front_matter, start + 2, "".join(lines[end + 1 :]), end + 2
    return None


def _license(data: dict[str, Any]) -> str | None:
    # "license: other" with "license_name: llama3" is how the Hub names a custom license;
    # the name is what a compliance reader needs.
    license_id = _string(data.get("license"))
    if isinstance(data.get("license"), list):
        license_id = next(iter(_strings(data.get("license"))), None)
    license_name = _string(data.get("license_name"))
    if license_name and license_id in (None, "other"):
        return license_name
    return license_id


def _string(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def _strings(value: Any) -> list[str]:
    """A string or a list of strings; anything else inside is dropped."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        return []
    return [item.strip() for item in value if isinstance(item, str) and item.strip()]


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _dicts(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, dict)]


def _metric_value(value: Any) -> float | str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        return value.strip()
    return None
