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
import re
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
# How much a parent stated in weaker places is to be trusted, against 1.0 for a declaration.
PROSE_CONFIDENCE = 0.5
_SURROUNDING_JUNK = re.compile(r"^[\s`'\"*(<\[]+|[\s`'\"*)>\],;:-]+$")
UNFENCED_RECIPE_CONFIDENCE = 0.8
LENIENT_RECIPE_CONFIDENCE = 0.6


def declared_parents(
    repo_id: str,
    *,
    card: CardMetadata | None,
    mergekit: MergeRecipe | None,
    adapter: AdapterConfig | None,
    config: ModelConfigSummary | None,
    relation: str,
    relation_evidence: Evidence,
    intermediates: dict[str, str] | None = None,
    ancestors: set[str] | None = None,
) -> tuple[list[ParentLink], list[str]]:
    """The parents ``repo_id`` declares, and one-line warnings about what was declared.

    ``intermediates`` maps the names that a multi-stage recipe gives its earlier stages'
    outputs to their graph nodes: a recipe input of that name is that node, not a folder.
    """
    collector = _ParentCollector(repo_id, relation, relation_evidence, intermediates or {})
    collector.ancestors = {reference.lower() for reference in ancestors or ()}
    if card is not None:
        collector.add_card(card)
    if mergekit is not None:
        collector.add_mergekit(mergekit)
    if adapter is not None and adapter.base_model_name_or_path:
        collector.add_adapter(adapter.base_model_name_or_path)
    if card is not None and relation == "quantized":
        # A quantized copy keeps its source's config.json, whose _name_or_path names the
        # source's own parent; the card's "quantized from [X]" names the source itself.
        collector.add_prose(card)
    if config is not None and config.name_or_path:
        collector.add_name_or_path(config.name_or_path)
    if card is not None:
        collector.add_prose(card)
    return collector.finish()


def intermediate_node_id(repo_id: str, name: str) -> str:
    """The graph node of a recipe stage's output: the model's id, '#', the stage's name."""
    reference = parse_reference(name)
    return f"{repo_id}#{reference.local_path or reference.node_id}"


class _ParentCollector:
    def __init__(
        self,
        repo_id: str,
        relation: str,
        relation_evidence: Evidence,
        intermediates: dict[str, str],
    ):
        self.repo_id = repo_id
        self.relation = relation
        self.relation_evidence = relation_evidence
        self.intermediates = intermediates
        self.ancestors: set[str] = set()
        self.links: dict[str, ParentLink] = {}
        self.warnings: list[str] = []

    # -------------------------------------------------------------------- sources

    def add_card(self, card: CardMetadata) -> None:
        for index, raw in enumerate(card.base_models):
            if raw.lower() in self.ancestors:
                # Listed in base_model, but the card's multi-stage recipe uses it in an
                # earlier stage: an ancestor through that stage, not a direct parent.
                self._warn(
                    f"{self.repo_id}: base_model {_quote(raw)} is an input of an earlier "
                    "stage of the card's recipe; an ancestor, not a direct parent"
                )
                continue
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

        detail = f"merge_method: {recipe.merge_method}"
        if recipe.lenient:
            detail += "; read line by line from a recipe that is not valid YAML (weaker)"
        elif not recipe.fenced:
            detail += "; a recipe in the card's plain text, not in a code block (weaker)"
        for reference, field, is_base in declared:
            evidence = Evidence(
                source=source,
                file=file,
                field=field,
                value=reference,
                detail=detail,
            )
            intermediate = self.intermediates.get(reference)
            parsed = (
                ModelReference(raw=reference, kind="intermediate", local_path=intermediate)
                if intermediate
                else parse_reference(reference)
            )
            link = self._add(parsed, evidence, relation="merge", where=f"{file} {evidence.field}")
            if link is None:
                continue
            self._set_relation(link, "merge", file)
            link.merge_method = recipe.merge_method
            if recipe.lenient:
                link.confidence = LENIENT_RECIPE_CONFIDENCE
            elif not recipe.fenced:
                link.confidence = UNFENCED_RECIPE_CONFIDENCE
            if is_base:
                link.role = "base"
            entry = entries.get(reference)
            if entry is not None:
                if is_base and recipe.merge_method == "moe":
                    link.role = "base, expert"
                elif recipe.merge_method == "moe":
                    link.role = "expert"
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
        elif self.links:
            # A copy keeps the config of the model it was made from, so its _name_or_path
            # names that model's own parent (a quantized copy names its grandparent). What
            # the card or a recipe declares wins; the disagreement is worth a line.
            declared = ", ".join(_quote(link.parent) for link in self.links.values())
            self._warn(
                f"{self.repo_id}: config.json _name_or_path names {_quote(reference.raw)}, "
                f"not the declared parent {declared}; not taken as a parent"
            )
        elif "/" in (reference.repo_id or ""):
            self._add(
                reference, evidence, relation=self.relation, where="config.json _name_or_path"
            )

    def add_prose(self, card: CardMetadata) -> None:
        """Parents named only in the card's sentences, when nothing else declares one: the
        front matter, a recipe or a config always outranks a sentence."""
        if self.links:
            self._note_prose_disagreement(card)
            return
        for mention in card.prose_mentions:
            reference = parse_reference(mention.reference)
            if reference.kind != "repo" or _same_repo(reference.repo_id, self.repo_id):
                continue
            evidence = Evidence(
                source="card_prose",
                file=CARD_FILE,
                field=f"line {mention.line}",
                value=mention.reference,
                detail=mention.sentence,
            )
            relation = (
                mention.relation if self.relation_evidence.source == "default" else self.relation
            )
            link = self._add(reference, evidence, relation=relation, where="card prose")
            if link is not None:
                link.confidence = PROSE_CONFIDENCE

    def finish(self) -> tuple[list[ParentLink], list[str]]:
        self._fold_local_spellings()
        evidence = self.relation_evidence
        if evidence.source not in _UNINFORMATIVE_RELATION_SOURCES:
            for link in self.links.values():
                said_already = any(known.source == evidence.source for known in link.evidence)
                if link.relation == self.relation and not said_already:
                    self._append_evidence(link, evidence)
        return list(self.links.values()), self.warnings

    def _note_prose_disagreement(self, card: CardMetadata) -> None:
        """A copy whose card says "quantized version of X" while base_model names another
        model: the front matter stands, and the disagreement is said."""
        declared = {key for key in self.links}
        for mention in card.prose_mentions:
            if mention.relation != self.relation or self.relation not in ("quantized", "finetune"):
                continue
            reference = parse_reference(mention.reference)
            if reference.kind == "repo" and _key(reference) not in declared:
                self._warn(
                    f"{self.repo_id}: README.md line {mention.line} says the model is a "
                    f"{self.relation} copy of {_quote(mention.reference)}, which base_model "
                    "does not name; base_model is kept"
                )
                return

    def _fold_local_spellings(self) -> None:
        """A recipe's local folder that names a Hub parent the card declares is that parent.

        Merge authors run mergekit on downloaded folders (``/models/BASE/Tess-70B-v1.6``)
        and declare the Hub ids in ``base_model``: one parent each, not two.
        """
        repos = {
            link.parent.rsplit("/", 1)[-1].lower(): key
            for key, link in self.links.items()
            if link.parent_kind == "repo"
        }
        for key, link in list(self.links.items()):
            if link.parent_kind != "local_path":
                continue
            name = link.parent.rstrip("/").rsplit("/", 1)[-1].lower()
            candidate = (link.candidate or "").lower()
            target = repos.get(name) or next((k for k in repos.values() if k == candidate), None)
            if target is None:
                continue
            repo_link = self.links[target]
            for item in link.evidence:
                if item.source != "reference.candidate":
                    self._append_evidence(repo_link, item)
            for field in ("merge_method", "role", "weight", "density", "t"):
                if getattr(repo_link, field) is None:
                    setattr(repo_link, field, getattr(link, field))
            repo_link.parameters = repo_link.parameters or link.parameters
            if link.relation == "merge":
                repo_link.relation = "merge"
            del self.links[key]
            self.warnings = [
                w for w in self.warnings if _quote(link.evidence[0].value or "") not in w
            ]
            self._warn(
                f"{self.repo_id}: the local path {_quote(link.evidence[0].value or link.parent)} "
                f"is read as the declared parent {_quote(repo_link.parent)} (same name)"
            )

    # -------------------------------------------------------------------- helpers

    def _add(
        self, reference: ModelReference, evidence: Evidence, *, relation: str, where: str
    ) -> ParentLink | None:
        if reference.kind == "repo" and _same_repo(reference.repo_id, self.repo_id):
            self._warn(f"{self.repo_id} names itself as its own parent")
            return None
        if reference.kind == "local_path":
            maybe = f"; it may be {reference.candidate}" if reference.candidate else ""
            self._warn(
                f"{self.repo_id}: {where} names a local path {_quote(reference.raw)}, "
                f"not a Hub repo{maybe}"
            )
        elif reference.kind == "invalid":
            repaired = _repaired(reference.raw)
            if repaired is not None:
                self._warn(
                    f"{self.repo_id}: {where} names {_quote(reference.raw)}; read as "
                    f"{_quote(repaired.raw)}"
                )
                return self._add(repaired, evidence, relation=relation, where=where)
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
        if reference.candidate and link.candidate is None:
            link.candidate = reference.candidate
            link.confidence = reference.candidate_confidence
            pinned = f"@{reference.candidate_revision}" if reference.candidate_revision else ""
            self._append_evidence(
                link,
                Evidence(
                    source="reference.candidate",
                    value=reference.candidate + pinned,
                    declared=False,
                    detail=(
                        "the Hub repo this local name plausibly maps to; a guess until "
                        "lineage verify confirms it from weights"
                    ),
                ),
            )
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


def _repaired(raw: str) -> ModelReference | None:
    """A reference spoilt by what surrounds it in a card ("org/x -", "`org/x`,"), cleaned."""
    cleaned = _SURROUNDING_JUNK.sub("", raw)
    if not cleaned or cleaned == raw:
        return None
    reference = parse_reference(cleaned)
    return reference if reference.kind == "repo" else None


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _key(reference: ModelReference) -> str:
    # Hub repo ids resolve case-insensitively: "Org/Base" and "org/base" are one parent;
    # one folder written two ways ("D:\\m\\x", "d:/m/x/") is one parent too.
    return reference.repo_id.lower() if reference.repo_id else reference.node_id


def _same_repo(candidate: str | None, repo_id: str) -> bool:
    return candidate is not None and candidate.lower() == repo_id.lower()


def _quote(value: str) -> str:
    return repr(value) if len(value) <= 200 else repr(value[:200]) + "…"
