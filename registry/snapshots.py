"""Reading a recorded revision back as the snapshot it was written from.

>>> with registry.session(write=False) as session:
...     revision = recorded_revision(session, "org/child", sha)
...     snapshot = snapshot_from_revision(session, revision)   # parents, stages, card...

The crawler uses this to skip re-reading a sha it has; the verifier to get a family's
recorded snapshots. ``registry.store`` writes what is read here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, TypeVar

from sqlmodel import Session, col, select

from lineage.records import (
    AdapterConfig,
    CardMetadata,
    DeclaredEvaluation,
    Evidence,
    MergeModelEntry,
    MergeRecipe,
    ModelConfigSummary,
    ModelSnapshot,
    ParentLink,
    SafetensorsSummary,
    TensorInfo,
)
from registry.tables import Edge, EdgeEvidence, Model, Revision
from registry.values import clean_node_id, id_of

MAX_STAGE_DEPTH = 16  # stages of one recipe naming earlier stages; a bound against cycles


def recorded_revision(session: Session, repo_id: str, sha: str) -> Revision | None:
    """The fully processed (``ok``) revision ``sha`` of ``repo_id``, if recorded."""
    return session.exec(
        select(Revision)
        .join(Model, col(Model.id) == col(Revision.model_id))
        .where(
            Model.repo_id == clean_node_id(repo_id),
            Revision.sha == sha,
            Revision.status == "ok",
        )
    ).first()


def snapshot_from_revision(session: Session, revision: Revision) -> ModelSnapshot:
    """Rebuild the snapshot ``revision`` was recorded from, declared parents included.

    ``unchanged`` is set: the crawler uses this to skip re-reading a sha it has.
    """
    model = session.get(Model, revision.model_id)
    if model is None:  # the foreign key makes this impossible short of a corrupt database
        raise LookupError(f"revision {revision.id} has no model row")
    parents = _declared_parents(session, revision)
    return ModelSnapshot(
        repo_id=model.repo_id,
        source=model.source,
        status=revision.status,
        status_reason=revision.status_reason,
        revision=revision.sha,
        requested_revision=revision.requested_revision,
        card=_card_from(revision.card, revision.declared_evaluations),
        config=_build(ModelConfigSummary, revision.config),
        mergekit=_merge_recipe_from(revision.mergekit),
        adapter=_build(AdapterConfig, revision.adapter),
        safetensors=_safetensors_from(revision.safetensors),
        relation=revision.relation,
        parents=parents,
        tags=list(revision.tags or []),
        files=list(revision.files or []),
        has_gguf=revision.has_gguf,
        pickle_only=revision.pickle_only,
        created_at=revision.created_at,
        last_modified=revision.last_modified,
        hub_parameter_count=revision.hub_parameter_count,
        warnings=list(revision.warnings or []),
        unchanged=True,
        stages=_recorded_stages(session, parents, revision.sha),
    )


def _recorded_stages(
    session: Session, parents: list[ParentLink], sha: str, depth: int = 0
) -> list[ModelSnapshot]:
    """The intermediate models a recorded revision's recipe names, earliest first."""
    stages: list[ModelSnapshot] = []
    for link in parents:
        if link.parent_kind != "intermediate" or depth > MAX_STAGE_DEPTH:
            continue
        revision = recorded_revision(session, link.parent, sha)
        if revision is None:
            continue
        stage = snapshot_from_revision(session, revision)
        stages.extend(_recorded_stages(session, stage.parents, sha, depth + 1))
        stages.append(dataclasses.replace(stage, stages=[]))
    return list({stage.repo_id: stage for stage in stages}.values())


def _declared_parents(session: Session, revision: Revision) -> list[ParentLink]:
    rows = session.exec(
        select(Edge, Model.repo_id)
        .join(Model, col(Model.id) == col(Edge.parent_model_id))
        .where(Edge.child_revision_id == id_of(revision), col(Edge.declared).is_(True))
        .order_by(col(Edge.position), col(Edge.id))
    ).all()
    return [edge_to_link(session, edge, parent) for edge, parent in rows]


def edge_to_link(session: Session, edge: Edge, parent_repo_id: str) -> ParentLink:
    """The ``ParentLink`` an edge row was written from, evidence included."""
    evidence = [Evidence.from_dict(row.model_dump()) for row in edge_evidence(session, id_of(edge))]
    return ParentLink(
        parent=parent_repo_id,
        parent_kind=edge.parent_kind,  # type: ignore[arg-type]
        relation=edge.relation,
        declared=edge.declared,
        revision=edge.parent_revision,
        lora=edge.lora,
        evidence=evidence,
        merge_method=edge.merge_method,
        role=edge.role,
        weight=edge.weight,
        density=edge.density,
        t=edge.t,
        parameters=dict(edge.parameters or {}),
        confidence=edge.confidence,
        candidate=next(
            (
                e.value.partition("@")[0]
                for e in evidence
                if e.source == "reference.candidate" and e.value
            ),
            None,
        ),
    )


def edge_evidence(session: Session, edge_id: int) -> list[EdgeEvidence]:
    return list(
        session.exec(
            select(EdgeEvidence)
            .where(EdgeEvidence.edge_id == edge_id)
            .order_by(col(EdgeEvidence.position), col(EdgeEvidence.id))
        ).all()
    )


Record = TypeVar("Record")


def _build(cls: type[Record], data: Mapping[str, Any] | None) -> Record | None:
    """``cls`` from a stored dict; keys this version does not know are ignored."""
    if data is None:
        return None
    known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    return cls(**{key: value for key, value in data.items() if key in known})


def _card_from(
    data: Mapping[str, Any] | None, evaluations: list[dict[str, Any]] | None
) -> CardMetadata | None:
    card = _build(CardMetadata, data)
    if card is not None:
        card.evaluations = [
            built for e in evaluations or [] if (built := _build(DeclaredEvaluation, e))
        ]
    return card


def _merge_recipe_from(data: Mapping[str, Any] | None) -> MergeRecipe | None:
    recipe = _build(MergeRecipe, data)
    if recipe is not None:
        recipe.models = [
            entry
            for item in recipe.models
            if (entry := _build(MergeModelEntry, item)) is not None  # type: ignore[arg-type]
        ]
    return recipe


def _safetensors_from(data: Mapping[str, Any] | None) -> SafetensorsSummary | None:
    if data is None:
        return None
    tensors = {
        name: TensorInfo(
            dtype=info["dtype"],
            shape=tuple(info["shape"]),
            file=info["file"],
            data_offsets=tuple(info.get("data_offsets") or (0, 0)),  # type: ignore[arg-type]
        )
        for name, info in (data.get("tensors") or {}).items()
    }
    return SafetensorsSummary(
        files=list(data.get("files") or []),
        tensors=tensors,
        metadata=dict(data.get("metadata") or {}),
    )
