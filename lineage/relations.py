"""Which relation a model has to its parents, by the Hub's rule.

An explicit, valid ``base_model_relation`` in the card wins. Otherwise, in this order: an
adapter if the repo holds ``adapter_config.json``; a merge if it holds
``mergekit_config.yml``; quantized if ``config.json`` has a ``quantization_config`` (unless
it is bitsandbytes' and the card says the model was trained) or the repo holds a
quantizer's file (GPTQ, AWQ, EXL2) or GGUF files; a merge if the card carries a mergekit
recipe, names two or more base models, or is tagged ``merge``; an adapter if the card says
``library_name: peft`` (weaker); the relation the card's prose states when nothing else
declares a parent; a fine-tune otherwise.

>>> infer_relation(card=None, has_adapter_config=True, mergekit=None, config=None,
...                has_gguf=False)[0]
'adapter'
"""

from __future__ import annotations

import re

from lineage.cards import BASE_MODEL_RELATIONS
from lineage.records import CardMetadata, Evidence, MergeRecipe, ModelConfigSummary

CARD_FILE = "README.md"

# Files quantizers write beside the weights, and what each says.
QUANTIZATION_FILES: dict[str, str] = {
    "quantize_config.json": "GPTQ quantize_config.json (AutoGPTQ / GPTQModel)",
    "quant_config.json": "AWQ quant_config.json (AutoAWQ)",
    "measurement.json": "EXL2 measurement.json (exllamav2)",
}
# Tags and name endings that quantizers give their copies.
QUANTIZATION_TAGS = frozenset({"gguf", "gptq", "awq", "exl2", "quantized", "ggml"})
QUANTIZED_NAME = re.compile(
    r"[-_.](gguf|gptq|awq|exl2|ggml|bnb-4bit|[248]bit|int[48]|fp8|[0-9.]+bpw(?:-h\d+)?)$",
    re.IGNORECASE,
)
# Card tags the training libraries write: the model was trained, not only converted.
TRAINING_TAGS = frozenset(
    {
        "trl",
        "sft",
        "dpo",
        "orpo",
        "kto",
        "unsloth",
        "axolotl",
        "llama-factory",
        "autotrain",
        "generated_from_trainer",
        "fine-tuned",
        "finetuned",
    }
)


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
    quantization_files: tuple[str, ...] = (),
    repo_id: str | None = None,
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
    recipe_evidence = (
        Evidence(
            source=mergekit_source(mergekit),
            file=mergekit.source_file,
            field="merge_method",
            value=mergekit.merge_method,
            detail="the repo holds a mergekit configuration",
        )
        if mergekit is not None
        else None
    )
    if recipe_evidence is not None and mergekit_source(mergekit) == "mergekit_config":
        return "merge", recipe_evidence
    # A quantizer's files are facts about the weights in the repo; a quantized copy's card
    # often keeps the source's "merge" tags and pastes the source's card with its recipe.
    quantized = _quantization_evidence(card, config, has_gguf, quantization_files)
    if quantized is None:
        quantized = _quantization_stated(card, repo_id)
    if quantized is not None:
        return quantized
    if recipe_evidence is not None:
        return "merge", recipe_evidence
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
    if card is not None and (card.library_name or "").lower() == "peft":
        return "adapter", Evidence(
            source="card.library_name",
            file=CARD_FILE,
            field="library_name",
            value="peft",
            detail="the card says library_name: peft, but the repo has no adapter_config.json "
            "(weaker than the adapter config itself)",
        )
    prose = _prose_relation(card)
    if prose is not None:
        return prose
    return "finetune", Evidence(
        source="default", detail="no adapter, merge or quantization evidence: a fine-tune"
    )


def _quantization_evidence(
    card: CardMetadata | None,
    config: ModelConfigSummary | None,
    has_gguf: bool,
    quantization_files: tuple[str, ...],
) -> tuple[str, Evidence] | None:
    if config is not None and config.quantization_config:
        method = config.quantization_config.get("quant_method")
        method = method if isinstance(method, str) else None
        if method == "bitsandbytes" or _is_bitsandbytes(config.quantization_config):
            trained = _training_evidence(card)
            if trained is not None:
                # bitsandbytes quantizes at load time: a fine-tune trained and saved in 4 or
                # 8 bits carries the config too. The card saying it was trained decides.
                return "finetune", Evidence(
                    source=trained[0],
                    file=CARD_FILE,
                    field=trained[1],
                    value=trained[2],
                    detail="saved with a bitsandbytes quantization_config, but the card says "
                    "the model was trained: a fine-tune",
                )
        return "quantized", Evidence(
            source="config.quantization_config",
            file="config.json",
            field="quantization_config",
            value=method,
        )
    for name in quantization_files:
        return "quantized", Evidence(
            source="files.quantization",
            file=name,
            detail=QUANTIZATION_FILES.get(name.rsplit("/", 1)[-1], "a quantizer's file"),
        )
    if has_gguf:
        return "quantized", Evidence(source="files.gguf", detail="the repo holds GGUF files")
    return None


def _quantization_stated(
    card: CardMetadata | None, repo_id: str | None
) -> tuple[str, Evidence] | None:
    """What the card or the repo's name says of a quantized copy, when its files are not
    seen (weaker than the files): ``quantized_by``, a quantization tag, a ``-GGUF`` name."""
    if card is not None:
        quantizer = card.front_matter.get("quantized_by")
        if isinstance(quantizer, str) and quantizer.strip():
            return "quantized", Evidence(
                source="card.quantized_by", file=CARD_FILE, field="quantized_by", value=quantizer
            )
        for tag in card.tags:
            if tag.lower() in QUANTIZATION_TAGS and not _training_evidence(card):
                return "quantized", Evidence(
                    source="card.tags", file=CARD_FILE, field="tags", value=tag
                )
    name = (repo_id or "").rsplit("/", 1)[-1]
    suffix = QUANTIZED_NAME.search(name)
    if suffix:
        return "quantized", Evidence(
            source="repo.name",
            value=name,
            detail=f"the repo's name ends in {suffix.group(0)!r}, a quantizer's naming (weak)",
        )
    return None


def _is_bitsandbytes(quantization_config: dict) -> bool:
    return any(key in quantization_config for key in ("load_in_4bit", "load_in_8bit"))


def _training_evidence(card: CardMetadata | None) -> tuple[str, str, str] | None:
    """(source, field, value) of what in the card says the model was trained."""
    if card is None:
        return None
    for tag in card.tags:
        if tag.lower() in TRAINING_TAGS:
            return "card.tags", "tags", tag
    if card.datasets:
        return "card.datasets", "datasets", ", ".join(card.datasets[:3])
    if card.says_trained:
        return "card_prose", "body", "the card says the model was fine-tuned"
    for mention in card.prose_mentions:
        if mention.relation == "finetune":
            return "card_prose", f"line {mention.line}", mention.sentence
    return None


def _prose_relation(card: CardMetadata | None) -> tuple[str, Evidence] | None:
    """Without any declaration, the relation the card's own sentences state (weak)."""
    if card is None or card.base_models or not card.prose_mentions:
        return None
    mention = card.prose_mentions[0]
    return mention.relation, Evidence(
        source="card_prose",
        file=CARD_FILE,
        field=f"line {mention.line}",
        value=mention.reference,
        detail=mention.sentence,
    )
