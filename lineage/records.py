"""Plain data records that flow from sources and parsers into the registry.

Parsers turn hostile bytes into these; sources assemble one ``ModelSnapshot`` per node;
the crawler hands snapshots to the registry. Nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

Relation = Literal["finetune", "adapter", "merge", "quantized", "unknown"]
RELATIONS: tuple[str, ...] = ("finetune", "adapter", "merge", "quantized", "unknown")

NODE_STATUSES: tuple[str, ...] = ("ok", "missing", "gated", "private", "error")

# "intermediate": a model that only exists inside a multi-stage recipe (a stage's output).
# The source of a node that exists only inside a multi-stage recipe (an intermediate model).
RECIPE_SOURCE = "recipe"

ReferenceKind = Literal["repo", "local_path", "invalid", "intermediate"]

# A declared merge parameter: a scalar, or a per-layer gradient list as mergekit allows.
ParameterValue = float | int | list[float] | list[Any] | None


@dataclass(frozen=True)
class Evidence:
    """One statement, from one place, that supports an edge.

    ``source`` names the kind of statement: ``card.base_model``, ``card.base_model_relation``,
    ``card.tags``, ``mergekit_config`` (mergekit_config.yml), ``card.mergekit_yaml`` (the YAML
    block mergekit writes into a card), ``adapter_config``, ``config._name_or_path``, or
    ``weights`` (inferred, from fingerprints).
    """

    source: str
    file: str | None = None
    field: str | None = None
    value: str | None = None
    declared: bool = True
    detail: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "file": self.file,
            "field": self.field,
            "value": self.value,
            "declared": self.declared,
            "detail": self.detail,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Evidence:
        return cls(**{key: data.get(key) for key in cls.__dataclass_fields__})


# Evidence sources that name a parent (the others only say which relation it is).
PARENT_NAMING_SOURCES = frozenset(
    {
        "card.base_model",
        "card.mergekit_yaml",
        "mergekit_config",
        "adapter_config",
        "config._name_or_path",
        "card_prose",
        "weights",
    }
)


def naming_sources(evidence: list[Evidence] | list[dict[str, Any]]) -> set[str]:
    """The sources among ``evidence`` that name the parent (records or their dicts)."""
    sources = {e.get("source") if isinstance(e, dict) else e.source for e in evidence}
    return {source for source in sources if source in PARENT_NAMING_SOURCES}


@dataclass(frozen=True)
class ModelReference:
    """A parent reference as written in a card or config, classified.

    ``org/name@rev`` pins a revision; ``org/name+org/lora`` (mergekit) names a LoRA applied to
    the model. A local filesystem path is kept as written, never resolved.
    """

    raw: str
    kind: ReferenceKind
    repo_id: str | None = None
    revision: str | None = None
    lora: str | None = None
    problem: str | None = None
    local_path: str | None = None  # normalised, for kind "local_path"
    candidate: str | None = None  # the Hub repo a local path plausibly names (a guess)
    candidate_revision: str | None = None
    candidate_confidence: float | None = None

    @property
    def node_id(self) -> str:
        """The graph node this reference points at: the repo id, the normalised local path,
        else the raw text."""
        return self.repo_id or self.local_path or self.raw


@dataclass
class ParentLink:
    """A declared (or inferred) parent of a model, with everything said about the edge."""

    parent: str  # node id: a repo id, or the raw reference for local paths / invalid ids
    parent_kind: ReferenceKind = "repo"
    relation: str = "unknown"
    declared: bool = True
    revision: str | None = None  # pinned parent revision (repo@rev), if any
    lora: str | None = None  # mergekit "model+lora" reference
    evidence: list[Evidence] = field(default_factory=list)
    merge_method: str | None = None
    role: str | None = None  # "base" for a merge's base model
    weight: ParameterValue = None
    density: ParameterValue = None
    t: ParameterValue = None
    parameters: dict[str, Any] = field(default_factory=dict)  # all declared merge parameters
    confidence: float | None = None  # inferred edges; weaker declarations (prose, plain text)
    candidate: str | None = None  # a local parent's plausible Hub repo (a guess, see evidence)

    @property
    def prose_only(self) -> bool:
        """Named only in the card's sentences: weaker than any declaration."""
        return naming_sources(self.evidence) == {"card_prose"}


@dataclass(frozen=True)
class TensorInfo:
    dtype: str
    shape: tuple[int, ...]
    file: str
    data_offsets: tuple[int, int]

    @property
    def numel(self) -> int:
        count = 1
        for dim in self.shape:
            count *= dim
        return count


@dataclass
class SafetensorsSummary:
    """What the safetensors headers say: never the weight data itself."""

    files: list[str]
    tensors: dict[str, TensorInfo]
    metadata: dict[str, str] = field(default_factory=dict)  # the header's __metadata__

    @property
    def parameter_count(self) -> int:
        return sum(info.numel for info in self.tensors.values())

    @property
    def parameters_by_dtype(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for info in self.tensors.values():
            counts[info.dtype] = counts.get(info.dtype, 0) + info.numel
        return counts

    def to_dict(self, *, with_tensors: bool = True) -> dict[str, Any]:
        data: dict[str, Any] = {
            "files": list(self.files),
            "parameter_count": self.parameter_count,
            "parameters_by_dtype": self.parameters_by_dtype,
            "tensor_count": len(self.tensors),
            "metadata": dict(self.metadata),
        }
        if with_tensors:
            data["tensors"] = {
                name: {"dtype": info.dtype, "shape": list(info.shape), "file": info.file}
                for name, info in sorted(self.tensors.items())
            }
        return data


@dataclass
class ModelConfigSummary:
    """The lineage-relevant part of ``config.json``."""

    name_or_path: str | None = None
    architectures: list[str] = field(default_factory=list)
    model_type: str | None = None
    hidden_size: int | None = None
    num_hidden_layers: int | None = None
    num_attention_heads: int | None = None
    num_key_value_heads: int | None = None
    intermediate_size: int | None = None
    vocab_size: int | None = None
    max_position_embeddings: int | None = None
    torch_dtype: str | None = None
    quantization_config: dict[str, Any] | None = None


@dataclass
class DeclaredEvaluation:
    """One result a card's ``model-index`` declares about the model itself."""

    task_type: str | None
    task_name: str | None
    dataset_type: str | None
    dataset_name: str | None
    dataset_config: str | None
    dataset_split: str | None
    metric_type: str | None
    metric_name: str | None
    metric_value: float | str | None
    verified: bool | None = None
    source_name: str | None = None
    source_url: str | None = None


@dataclass(frozen=True)
class RecipeBlock:
    """A YAML text in a card body that holds a recipe key, and where it was found."""

    text: str
    line: int  # first line of the YAML in README.md
    fenced: bool = True  # False: plain markdown, no code fence (weaker evidence)
    in_configuration_section: bool = False
    heading: str | None = None  # the nearest heading above it: often the stage's model name


@dataclass(frozen=True)
class ProseMention:
    """A parent named only in a card's prose ("This is a merge of ...", "quantized from ...")."""

    reference: str  # the Hub repo id as linked or written
    relation: str  # finetune | merge | quantized | adapter, from the sentence's verb
    line: int
    sentence: str  # the sentence, cut to a bounded length


@dataclass
class CardMetadata:
    """The lineage-relevant part of a model card (README.md front matter and body)."""

    base_models: list[str] = field(default_factory=list)
    base_model_relation: str | None = None
    tags: list[str] = field(default_factory=list)
    license: str | None = None
    library_name: str | None = None
    datasets: list[str] = field(default_factory=list)
    pipeline_tag: str | None = None
    evaluations: list[DeclaredEvaluation] = field(default_factory=list)
    mergekit_yaml: str | None = None  # the YAML of the model's own (final) recipe in the body
    front_matter: dict[str, Any] = field(default_factory=dict)
    recipe_blocks: list[RecipeBlock] = field(default_factory=list)  # every recipe-like block
    prose_mentions: list[ProseMention] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # blocks that did not parse, ...
    says_trained: bool = False  # the card's own text says the model was fine-tuned / trained
    says_merged: bool = False  # the card's own text says the model is a merge

    def __post_init__(self) -> None:
        # Rebuilt from the registry's JSON, nested records arrive as dicts.
        self.recipe_blocks = [
            RecipeBlock(**block) if isinstance(block, dict) else block
            for block in self.recipe_blocks
        ]
        self.prose_mentions = [
            ProseMention(**mention) if isinstance(mention, dict) else mention
            for mention in self.prose_mentions
        ]


@dataclass
class MergeModelEntry:
    """One ``models[]`` entry of a mergekit config (or one slice source)."""

    reference: str
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass
class MergeRecipe:
    """A mergekit configuration, validated and normalised."""

    merge_method: str
    base_model: str | None = None
    models: list[MergeModelEntry] = field(default_factory=list)
    slices: list[dict[str, Any]] | None = None
    dtype: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)  # global parameters
    tokenizer_source: str | None = None
    source_file: str = "mergekit_config.yml"
    raw: dict[str, Any] = field(default_factory=dict)
    name: str | None = None  # a mergekit-mega stage's ``name`` (the model it produces)
    options: dict[str, Any] = field(default_factory=dict)  # moe: gate_mode, experts_per_token
    source_line: int | None = None  # where the recipe starts in its file
    fenced: bool = True  # False: plain markdown in a card, weaker evidence than a code block
    lenient: bool = False  # read line by line from YAML that does not parse: weaker still
    heading: str | None = None  # the card heading above the recipe (a stage's model name)


@dataclass
class AdapterConfig:
    """``adapter_config.json`` of a PEFT adapter."""

    base_model_name_or_path: str | None
    peft_type: str | None = None
    task_type: str | None = None
    r: int | None = None
    lora_alpha: float | None = None
    target_modules: list[str] = field(default_factory=list)


@dataclass
class ModelSnapshot:
    """Everything one source read about one repo at one revision.

    ``status`` is ``ok`` when every file was read and parsed; otherwise the reason says what
    failed, and the fields that could be read are still filled.
    """

    repo_id: str
    source: str  # "hub" or "local"
    status: str = "ok"
    status_reason: str | None = None
    revision: str | None = None  # commit sha (Hub) or content hash (local)
    requested_revision: str | None = None
    card: CardMetadata | None = None
    config: ModelConfigSummary | None = None
    mergekit: MergeRecipe | None = None
    adapter: AdapterConfig | None = None
    safetensors: SafetensorsSummary | None = None
    relation: str | None = None  # this model's relation to its parents
    parents: list[ParentLink] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    has_gguf: bool = False
    pickle_only: bool = False  # weights only as pickle checkpoints (never loaded here)
    created_at: datetime | None = None
    last_modified: datetime | None = None
    hub_parameter_count: int | None = None  # the Hub's own safetensors summary
    warnings: list[str] = field(default_factory=list)  # non-fatal, one line each
    unchanged: bool = False  # the sha is already recorded in full: nothing was re-read
    children_count: int | None = None  # the Hub's count of models declaring this one as base
    # Intermediate models of a multi-stage recipe (earliest first), recorded as nodes.
    stages: list[ModelSnapshot] = field(default_factory=list)

    @property
    def architecture(self) -> str | None:
        if self.config and self.config.architectures:
            return self.config.architectures[0]
        return None

    @property
    def parameter_count(self) -> int | None:
        if self.safetensors is not None and self.safetensors.tensors:
            return self.safetensors.parameter_count
        return self.hub_parameter_count

    @property
    def license(self) -> str | None:
        return self.card.license if self.card else None
