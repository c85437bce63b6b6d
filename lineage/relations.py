"""Which relation a model has to its parents, by the Hub's rule.

An explicit, valid ``base_model_relation`` in the card wins. Otherwise the Hub infers it:
an adapter if the repo holds ``adapter_config.json``; a merge if it holds a mergekit config
(or the card carries mergekit's YAML block), names two or more base models, or is tagged
``merge``; quantized if ``config.json`` has a ``quantization_config`` or the repo holds GGUF
files; a fine-tune otherwise.

>>> infer_relation(card=None, has_adapter_config=True, mergekit=None, config=None,
...                has_gguf=False)[0]
'adapter'
"""

from __future__ import annotations

from lineage.cards import BASE_MODEL_RELATIONS
from lineage.records import CardMetadata, Evidence, MergeRecipe, ModelConfigSummary

CARD_FILE = "README.md"


def mergekit_source(recipe: MergeRecipe) -> str:
    """The evidence source of a recipe: the card's YAML block or ``mergekit_config.yml``."""
    return "card.mergekit_yaml" if recipe.source_file == CARD_FILE else "mergekit_config"


def infer_relation(
    *,
    card: CardMetadata | None,
    has_adapter_config: bool,
    mergekit: MergeRecipe | None,
    config: ModelConfigSummary | None,
    has_gguf: bool,
) -> tuple[str, Evidence]:
    """The model's relation to its parents, and the evidence of the rule that decided it."""
    if card is not None and card.base_model_relation in BASE_MODEL_RELATIONS:
        return card.base_model_relation, Evidence(
            source="card.base_model_relation",
            file=CARD_FILE,
            field="base_model_relation",
            value=card.base_model_relation,
        )
    if has_adapter_config:
        return "adapter", Evidence(
            source="adapter_config",
            file="adapter_config.json",
            detail="the repo holds a PEFT adapter config",
        )
    if mergekit is not None:
        return "merge", Evidence(
            source=mergekit_source(mergekit),
            file=mergekit.source_file,
            field="merge_method",
            value=mergekit.merge_method,
            detail="the repo holds a mergekit configuration",
        )
    if card is not None and len(card.base_models) >= 2:
        return "merge", Evidence(
            source="card.base_model",
            file=CARD_FILE,
            field="base_model",
            value=", ".join(card.base_models),
            detail=f"the card names {len(card.base_models)} base models",
        )
    if card is not None and any(tag.lower() == "merge" for tag in card.tags):
        return "merge", Evidence(source="card.tags", file=CARD_FILE, field="tags", value="merge")
    if config is not None and config.quantization_config:
        method = config.quantization_config.get("quant_method")
        return "quantized", Evidence(
            source="config.quantization_config",
            file="config.json",
            field="quantization_config",
            value=method if isinstance(method, str) else None,
        )
    if has_gguf:
        return "quantized", Evidence(source="files.gguf", detail="the repo holds GGUF files")
    return "finetune", Evidence(
        source="default", detail="no adapter, merge or quantization evidence: a fine-tune"
    )
