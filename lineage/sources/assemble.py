"""Turn the files of one repo into a ``ModelSnapshot``: shared by every source.

A source only says how to list files, read a small text file and read byte ranges; this
module decides which files matter, parses them, and derives relation and parents. A
broken file never stops the rest: the snapshot gets ``status="error"`` with the reason,
and everything that could be read is kept.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, TypeVar

from lineage.adapter_config import parse_adapter_config
from lineage.bounded import as_text
from lineage.cards import parse_model_card
from lineage.errors import GatedRepoError, LineageError, MalformedFileError, PrivateRepoError
from lineage.mergekit_config import MAX_MERGEKIT_CONFIG_BYTES, parse_mergekit_config
from lineage.model_config import parse_model_config
from lineage.parents import declared_parents, intermediate_node_id
from lineage.recipes import RecipeStages, read_recipes
from lineage.records import (
    RECIPE_SOURCE,
    AdapterConfig,
    CardMetadata,
    Evidence,
    MergeRecipe,
    ModelConfigSummary,
    ModelSnapshot,
    RecipeBlock,
    SafetensorsSummary,
)
from lineage.relations import QUANTIZATION_FILES, infer_relation
from lineage.safetensors_header import (
    ByteRangeReader,
    parse_safetensors_index,
    read_safetensors_header,
    summarize_safetensors,
)

T = TypeVar("T")

CARD_FILE = "README.md"
CONFIG_FILE = "config.json"
MERGEKIT_FILE = "mergekit_config.yml"
ADAPTER_FILE = "adapter_config.json"
SAFETENSORS_INDEX = "model.safetensors.index.json"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
MAX_WEIGHT_FILES = 256  # more shards than any real checkpoint: a bound against hostile indexes


class RepoFiles(Protocol):
    """How one source reaches the files of one repo at one revision."""

    def names(self) -> list[str]: ...

    def read_text(self, name: str) -> str: ...

    def range_reader(self, name: str) -> ByteRangeReader: ...


@dataclass
class HubHints:
    """What the Hub's model info already told us, so that files need not be fetched."""

    card: CardMetadata | None = None
    config: ModelConfigSummary | None = None
    parameter_count: int | None = None


class _Problems:
    """Collects per-file failures; access problems outrank parse problems."""

    def __init__(self, repo_id: str):
        self.repo_id = repo_id
        self.status = "ok"
        self.reasons: list[str] = []

    def attempt(self, call: Callable[[], T]) -> T | None:
        try:
            return call()
        except LineageError as error:
            self.record(error)
        return None

    def record(self, error: LineageError) -> None:
        if isinstance(error, (GatedRepoError, PrivateRepoError)):
            self.status = "gated" if isinstance(error, GatedRepoError) else "private"
            self.reasons.append(error.reason)
            return
        if self.status == "ok":
            self.status = "error"
        self.reasons.append(str(error).removeprefix(f"{self.repo_id}: "))

    @property
    def reason(self) -> str | None:
        return "; ".join(dict.fromkeys(self.reasons)) if self.reasons else None


def read_snapshot(
    repo_id: str,
    files: RepoFiles,
    *,
    source: str,
    revision: str,
    requested_revision: str | None = None,
    hints: HubHints | None = None,
    created_at: datetime | None = None,
    last_modified: datetime | None = None,
) -> ModelSnapshot:
    """Read and parse what matters in ``files``; never raises for a broken file.

    ``hints`` (Hub only) lets the card and config come from the model info: README.md is
    then fetched only for a mergekit YAML block, and config.json only when no other file
    declares a parent (its ``_name_or_path`` is then the one clue left).
    """
    problems = _Problems(repo_id)
    names = files.names()
    present = set(names)
    warnings: list[str] = []

    card = _read_card(repo_id, files, present, hints, problems)
    stages = _read_recipes(repo_id, files, present, card, problems)
    mergekit = stages.final
    warnings.extend(card.warnings if card else [])
    warnings.extend(w for w in stages.warnings if not card or w not in card.warnings)
    adapter: AdapterConfig | None = None
    if ADAPTER_FILE in present:
        adapter = problems.attempt(
            lambda: parse_adapter_config(files.read_text(ADAPTER_FILE), repo_id=repo_id)
        )
    config = _read_config(repo_id, files, present, hints, card, mergekit, adapter, problems)
    safetensors = _read_safetensors(repo_id, files, names, problems)

    has_gguf = any(name.lower().endswith(".gguf") for name in names)
    pickle_only = _pickle_only(repo_id, names, safetensors, warnings)
    quantization_files = tuple(
        name for name in sorted(names) if name.rsplit("/", 1)[-1] in QUANTIZATION_FILES
    )
    relation, relation_evidence = infer_relation(
        card=card,
        has_adapter_config=ADAPTER_FILE in present,
        mergekit=mergekit,
        config=config,
        has_gguf=has_gguf,
        quantization_files=quantization_files,
        repo_id=repo_id,
    )
    if relation == "quantized" and mergekit is not None and mergekit.source_file == CARD_FILE:
        mergekit, stages = None, RecipeStages()
        warnings.append(_COPIED_RECIPE.format(repo_id=repo_id, card=CARD_FILE))
    intermediates = {
        stage.name: intermediate_node_id(repo_id, stage.name)
        for stage in stages.intermediates
        if stage.name
    }
    parents, parent_warnings = declared_parents(
        repo_id,
        card=card,
        mergekit=mergekit,
        adapter=adapter,
        config=config,
        relation=relation,
        relation_evidence=relation_evidence,
        intermediates=intermediates,
        ancestors=stages.ancestors,
    )
    warnings.extend(parent_warnings)
    warnings.extend(_weak_lineage_warnings(repo_id, card, relation_evidence, parents))
    stage_snapshots = _stage_snapshots(repo_id, stages, intermediates, source, revision)
    for stage in stage_snapshots:
        warnings.extend(w for w in stage.warnings if w not in warnings)

    return ModelSnapshot(
        repo_id=repo_id,
        source=source,
        status=problems.status,
        status_reason=problems.reason,
        revision=revision,
        requested_revision=requested_revision,
        card=card,
        config=config,
        mergekit=mergekit,
        adapter=adapter,
        safetensors=safetensors,
        relation=relation if parents else None,
        parents=parents,
        tags=list(card.tags) if card else [],
        files=sorted(names),
        has_gguf=has_gguf,
        pickle_only=pickle_only,
        created_at=created_at,
        last_modified=last_modified,
        hub_parameter_count=hints.parameter_count if hints else None,
        warnings=warnings,
        stages=stage_snapshots,
    )


# A quantized copy's card pastes its source's card, recipe included: that recipe made the
# source, not this copy. Its parents would be the copy's grandparents.
_COPIED_RECIPE = (
    "{repo_id}: {card} holds a mergekit recipe, but the repo is a quantized copy:"
    " the recipe is its source model's, not taken as this model's lineage"
)


def _pickle_only(
    repo_id: str, names: list[str], safetensors: object | None, warnings: list[str]
) -> bool:
    """Whether the weights are only pickle checkpoints (never read); warns when so."""
    pickle_only = safetensors is None and any(name.endswith(PICKLE_SUFFIXES) for name in names)
    if pickle_only:
        warnings.append(
            f"{repo_id}: weights only as pickle checkpoints; not read (safetensors only)"
        )
    return pickle_only


def _weak_lineage_warnings(
    repo_id: str, card: CardMetadata | None, relation_evidence: Evidence, parents: list
) -> list[str]:
    """Say so when what was read is weak, or when the card claims a lineage it does not
    name in any form a program can read: such a model is never read wrongly in silence."""
    warnings: list[str] = []
    if parents and relation_evidence.source == "card.library_name":
        warnings.append(
            f"{repo_id}: read as an adapter only because the card says library_name: peft; "
            "the repo has no adapter_config.json (a merged adapter would be a fine-tune)"
        )
    if not parents and card is not None and (card.says_merged or card.says_trained):
        claim = "a merge" if card.says_merged else "fine-tuned"
        warnings.append(
            f"{repo_id}: the card says the model is {claim} but names no parent in its front "
            "matter, a recipe, a config or a lineage sentence; its lineage is unknown"
        )
    return warnings


def _stage_snapshots(
    repo_id: str,
    stages: RecipeStages,
    intermediates: dict[str, str],
    source: str,
    revision: str,
) -> list[ModelSnapshot]:
    """One node per intermediate model of a multi-stage recipe, earliest first.

    Its id is the model's id and the stage's name (``org/model#./step1``), its revision the
    model's: the stage exists only in this revision's recipe. Its parents are the stage's
    own inputs, an earlier stage's output among them.
    """
    snapshots: list[ModelSnapshot] = []
    for stage in stages.intermediates:
        node_id = intermediates.get(stage.name or "")
        if node_id is None:
            continue
        relation, relation_evidence = infer_relation(
            card=None, has_adapter_config=False, mergekit=stage, config=None, has_gguf=False
        )
        earlier = {name: node for name, node in intermediates.items() if name != stage.name}
        parents, parent_warnings = declared_parents(
            node_id,
            card=None,
            mergekit=stage,
            adapter=None,
            config=None,
            relation=relation,
            relation_evidence=relation_evidence,
            intermediates=earlier,
        )
        snapshots.append(
            ModelSnapshot(
                repo_id=node_id,
                source=RECIPE_SOURCE,
                status="ok",
                status_reason=None,
                revision=revision,
                mergekit=stage,
                relation=relation if parents else None,
                parents=parents,
                warnings=parent_warnings,
            )
        )
    return snapshots


def _read_card(
    repo_id: str,
    files: RepoFiles,
    present: set[str],
    hints: HubHints | None,
    problems: _Problems,
) -> CardMetadata | None:
    """README.md in full whenever the repo has one: recipes and lineage sentences live in
    the body of cards of every kind, tagged or not. The Hub's cardData (front matter only)
    serves when there is no README, or when a mergekit or adapter config outranks the body."""
    hinted = hints.card if hints else None
    if CARD_FILE not in present:
        return hinted
    if hinted is not None and (MERGEKIT_FILE in present or ADAPTER_FILE in present):
        # The recipe or adapter file says exactly what the body could say, and outranks it:
        # the Hub's cardData is enough, and the crawl saves a request per such node.
        return hinted
    # The Hub drops cardData when the front matter is not valid YAML: reading the README
    # is then the only way to say what is wrong with it.
    return problems.attempt(lambda: parse_model_card(files.read_text(CARD_FILE), repo_id=repo_id))


def _read_recipes(
    repo_id: str,
    files: RepoFiles,
    present: set[str],
    card: CardMetadata | None,
    problems: _Problems,
) -> RecipeStages:
    """The stages of ``mergekit_config.yml`` (which mergekit writes beside the weights), else
    of the card's recipe blocks. A file that does not parse at all is the repo's error."""
    if MERGEKIT_FILE in present:
        text = problems.attempt(lambda: _bounded_text(files, repo_id))
        if text is None:
            return RecipeStages()
        block = RecipeBlock(text=text, line=1, fenced=True)
        stages = read_recipes([block], repo_id=repo_id, filename=MERGEKIT_FILE)
        if stages.final is None:
            # Nothing in the file is a usable recipe: the strict parser says why.
            problems.attempt(lambda: parse_mergekit_config(text, repo_id=repo_id))
        return stages
    if card is not None and card.recipe_blocks:
        return read_recipes(card.recipe_blocks, repo_id=repo_id, filename=CARD_FILE)
    return RecipeStages()


def _bounded_text(files: RepoFiles, repo_id: str) -> str:
    return as_text(
        files.read_text(MERGEKIT_FILE),
        repo_id=repo_id,
        filename=MERGEKIT_FILE,
        max_bytes=MAX_MERGEKIT_CONFIG_BYTES,
    )


def _read_config(
    repo_id: str,
    files: RepoFiles,
    present: set[str],
    hints: HubHints | None,
    card: CardMetadata | None,
    mergekit: MergeRecipe | None,
    adapter: AdapterConfig | None,
    problems: _Problems,
) -> ModelConfigSummary | None:
    hinted = hints.config if hints else None
    if CONFIG_FILE not in present:
        return hinted
    declares_parent = bool(card and card.base_models) or mergekit is not None or adapter is not None
    if hinted is not None and declares_parent:
        return hinted
    parsed = problems.attempt(
        lambda: parse_model_config(files.read_text(CONFIG_FILE), repo_id=repo_id)
    )
    if parsed is None:
        return hinted
    if hinted is not None and parsed.quantization_config is None:
        parsed.quantization_config = hinted.quantization_config
    return parsed


def _weight_files(
    repo_id: str, files: RepoFiles, names: list[str], problems: _Problems
) -> list[str]:
    present = set(names)
    if SAFETENSORS_INDEX in present:
        weight_map = problems.attempt(
            lambda: parse_safetensors_index(files.read_text(SAFETENSORS_INDEX), repo_id=repo_id)
        )
        if weight_map is None:
            return []
        shards = sorted(set(weight_map.values()))
        missing = [shard for shard in shards if shard not in present]
        if missing:
            problems.record(
                MalformedFileError(
                    f"index names shard(s) not in the repo: {', '.join(missing[:3])}",
                    repo_id=repo_id,
                    file=SAFETENSORS_INDEX,
                )
            )
        return [shard for shard in shards if shard in present]
    # Top-level safetensors only: nested folders hold other artefacts (onnx, checkpoints).
    return sorted(name for name in names if name.endswith(".safetensors") and "/" not in name)


def _read_safetensors(
    repo_id: str, files: RepoFiles, names: list[str], problems: _Problems
) -> SafetensorsSummary | None:
    weight_files = _weight_files(repo_id, files, names, problems)
    if not weight_files:
        return None
    if len(weight_files) > MAX_WEIGHT_FILES:
        weight_files = weight_files[:MAX_WEIGHT_FILES]
        problems.reasons.append(f"more than {MAX_WEIGHT_FILES} safetensors files; rest not read")
    per_file = []
    for name in weight_files:
        header = problems.attempt(
            lambda name=name: read_safetensors_header(
                files.range_reader(name), filename=name, repo_id=repo_id
            )
        )
        if header is not None:
            tensors, metadata = header
            per_file.append((name, tensors, metadata))
    return summarize_safetensors(per_file) if per_file else None
