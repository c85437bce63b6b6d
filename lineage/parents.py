"""Collect a model's declared parents from its card, mergekit recipe, adapter and config.

One ``ParentLink`` per parent node, whatever the number of places that name it: the
evidence of every place is kept, in order (card, mergekit, adapter config, config.json),
and the merge details (method, weight, density, t, all parameters) come from the recipe.
Problems that do not stop the crawl come back as one-line warnings.

>>> from lineage.records import CardMetadata, Evidence
>>> links, warnings = declared_parents(
...     "org/child", card=CardMetadata(base_models=["org/base", "/home/me/ckpt"]),
...     mergekit=None, adapter=None, config=None,
...     relation="finetune", relation_evidence=Evidence(source="default"))
>>> [(link.parent, link.parent_kind) for link in links]
[('org/base', 'repo'), ('/home/me/ckpt', 'local_path')]
>>> warnings
["org/child: base_model names a local path '/home/me/ckpt', not a Hub repo"]
"""

from __future__ import annotations

import contextlib
from typing import Any

from lineage.mergekit_config import merge_parameter, reference_text
from lineage.records import (
    AdapterConfig,
    CardMetadata,
    Evidence,
    MergeRecipe,
    ModelConfigSummary,
    ModelReference,
    ParentLink,
)
from lineage.references import parse_reference
from lineage.relations import CARD_FILE, mergekit_source

# Relation evidence that adds nothing to a parent's own evidence: "default" is the absence
# of evidence, and "card.base_model" repeats the per-entry card evidence. Nor is it added to
# a parent that already has evidence from the same source (the adapter or mergekit config).
_UNINFORMATIVE_RELATION_SOURCES = ("default", "card.base_model")


def declared_parents(
    repo_id: str,
    *,
    card: CardMetadata | None,
    mergekit: MergeRecipe | None,
    adapter: AdapterConfig | None,
    config: ModelConfigSummary | None,
    relation: str,
    relation_evidence: Evidence,
) -> tuple[list[ParentLink], list[str]]:
    """The parents ``repo_id`` declares, and one-line warnings about what was declared."""
    collector = _ParentCollector(repo_id, relation, relation_evidence)
    if card is not None:
        collector.add_card(card)
    if mergekit is not None:
        collector.add_mergekit(mergekit)
    if adapter is not None and adapter.base_model_name_or_path:
        collector.add_adapter(adapter.base_model_name_or_path)
    if config is not None and config.name_or_path:
        collector.add_name_or_path(config.name_or_path)
    return collector.finish()


class _ParentCollector:
    def __init__(self, repo_id: str, relation: str, relation_evidence: Evidence):
        self.repo_id = repo_id
        self.relation = relation
        self.relation_evidence = relation_evidence
        self.links: dict[str, ParentLink] = {}
        self.warnings: list[str] = []

    # -------------------------------------------------------------------- sources

    def add_card(self, card: CardMetadata) -> None:
        for index, raw in enumerate(card.base_models):
            field = "base_model" if len(card.base_models) == 1 else f"base_model[{index}]"
            evidence = Evidence(source="card.base_model", file=CARD_FILE, field=field, value=raw)
            self._add(parse_reference(raw), evidence, relation=self.relation, where="base_model")

    def add_mergekit(self, recipe: MergeRecipe) -> None:
        source, file = mergekit_source(recipe), recipe.source_file
        fields = _reference_fields(recipe.raw)
        entries = {entry.reference: entry for entry in reversed(recipe.models)}  # first wins
        declared = [
            (entry.reference, fields.get(entry.reference, "models"), False)
            for entry in recipe.models
        ]
        if recipe.base_model:
            declared.insert(0, (recipe.base_model, "base_model", True))

        for reference, field, is_base in declared:
            evidence = Evidence(
                source=source,
                file=file,
                field=field,
                value=reference,
                detail=f"merge_method: {recipe.merge_method}",
            )
            link = self._add(
                parse_reference(reference),
                evidence,
                relation="merge",
                where=f"{file} {evidence.field}",
            )
            if link is None:
                continue
            self._set_relation(link, "merge", file)
            link.merge_method = recipe.merge_method
            if is_base:
                link.role = "base"
            entry = entries.get(reference)
            if entry is not None:
                link.parameters = {**recipe.parameters, **entry.parameters}
                link.weight = merge_parameter(entry.parameters, recipe.parameters, "weight")
                link.density = merge_parameter(entry.parameters, recipe.parameters, "density")
                link.t = merge_parameter(entry.parameters, recipe.parameters, "t")

    def add_adapter(self, raw: str) -> None:
        reference = parse_reference(raw)
        field = "base_model_name_or_path"
        if reference.kind == "local_path" and any(
            link.parent_kind == "repo" for link in self.links.values()
        ):
            # PEFT writes the path the base was loaded from; with a Hub parent declared
            # elsewhere, a training machine's path is not a second parent.
            self._warn(
                f"{self.repo_id}: adapter_config.json {field} names a local path "
                f"{_quote(reference.raw)}; ignored, a Hub parent is declared"
            )
            return
        evidence = Evidence(
            source="adapter_config", file="adapter_config.json", field=field, value=raw
        )
        link = self._add(
            reference, evidence, relation="adapter", where=f"adapter_config.json {field}"
        )
        if link is not None:
            self._set_relation(link, "adapter", "adapter_config.json")

    def add_name_or_path(self, raw: str) -> None:
        # transformers records where the weights were loaded from; a local path (common) or
        # the repo itself says nothing about lineage, and a bare single-part name
        # ("checkpoint-500", "output") is a directory far more often than a Hub repo.
        reference = parse_reference(raw)
        if reference.kind != "repo" or _same_repo(reference.repo_id, self.repo_id):
            return
        evidence = Evidence(
            source="config._name_or_path", file="config.json", field="_name_or_path", value=raw
        )
        key = _key(reference)
        if key in self.links:
            self._append_evidence(self.links[key], evidence)
        elif "/" in (reference.repo_id or ""):
            self._add(
                reference, evidence, relation=self.relation, where="config.json _name_or_path"
            )

    def finish(self) -> tuple[list[ParentLink], list[str]]:
        evidence = self.relation_evidence
        if evidence.source not in _UNINFORMATIVE_RELATION_SOURCES:
            for link in self.links.values():
                said_already = any(known.source == evidence.source for known in link.evidence)
                if link.relation == self.relation and not said_already:
                    self._append_evidence(link, evidence)
        return list(self.links.values()), self.warnings

    # -------------------------------------------------------------------- helpers

    def _add(
        self, reference: ModelReference, evidence: Evidence, *, relation: str, where: str
    ) -> ParentLink | None:
        if reference.kind == "repo" and _same_repo(reference.repo_id, self.repo_id):
            self._warn(f"{self.repo_id} names itself as its own parent")
            return None
        if reference.kind == "local_path":
            self._warn(
                f"{self.repo_id}: {where} names a local path {_quote(reference.raw)}, "
                "not a Hub repo"
            )
        elif reference.kind == "invalid":
            self._warn(
                f"{self.repo_id}: {where} names an invalid reference {_quote(reference.raw)}: "
                f"{reference.problem}"
            )
        key = _key(reference)
        link = self.links.get(key)
        if link is None:
            link = self.links[key] = ParentLink(
                parent=reference.node_id,
                parent_kind=reference.kind,
                relation=relation,
                revision=reference.revision,
                lora=reference.lora,
            )
        link.revision = link.revision or reference.revision
        link.lora = link.lora or reference.lora
        self._append_evidence(link, evidence)
        return link

    def _set_relation(self, link: ParentLink, relation: str, file: str) -> None:
        explicit = self.relation_evidence.source == "card.base_model_relation"
        if explicit and self.relation != relation:
            self._warn(
                f"{self.repo_id}: the card declares base_model_relation {self.relation!r} but "
                f"{file} makes {_quote(link.parent)} a {relation} parent"
            )
        link.relation = relation

    @staticmethod
    def _append_evidence(link: ParentLink, evidence: Evidence) -> None:
        if evidence not in link.evidence:
            link.evidence.append(evidence)

    def _warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)


def _reference_fields(raw: dict[str, Any]) -> dict[str, str]:
    """Reference text -> where it first appears in the config (``models[1].model``)."""
    fields: dict[str, str] = {}

    def note(value: Any, field: str) -> None:
        with contextlib.suppress(ValueError):  # the recipe validated; skip what is not a reference
            fields.setdefault(reference_text(value), field)

    def walk(container: dict[str, Any], prefix: str) -> None:
        for i, model in enumerate(_list(container.get("models"))):
            if isinstance(model, dict):
                note(model.get("model"), f"{prefix}models[{i}].model")
        for i, output_slice in enumerate(_list(container.get("slices"))):
            if not isinstance(output_slice, dict):
                continue
            for j, source in enumerate(_list(output_slice.get("sources"))):
                if isinstance(source, dict):
                    note(source.get("model"), f"{prefix}slices[{i}].sources[{j}].model")

    walk(raw, "")
    modules = raw.get("modules")
    if isinstance(modules, dict):
        for name, module in modules.items():
            if isinstance(module, dict):
                walk(module, f"modules.{name}.")
    return fields


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _key(reference: ModelReference) -> str:
    # Hub repo ids resolve case-insensitively: "Org/Base" and "org/base" are one parent.
    return reference.repo_id.lower() if reference.repo_id else reference.raw


def _same_repo(candidate: str | None, repo_id: str) -> bool:
    return candidate is not None and candidate.lower() == repo_id.lower()


def _quote(value: str) -> str:
    return repr(value) if len(value) <= 200 else repr(value[:200]) + "…"
