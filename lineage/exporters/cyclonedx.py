"""CycloneDX 1.6 ML-BOM (JSON) of a lineage graph, built with cyclonedx-python-lib.

- Every node is a ``machine-learning-model`` component: ``bom-ref`` is ``<repo id>@<sha>``
  (or the repo id, or the raw reference of a local parent), ``version`` the revision, and a
  Hub repo gets a purl ``pkg:huggingface/<org>/<name>@<sha>`` (package-url type
  ``huggingface``: namespace and name case-sensitive, version the lowercase commit sha). The
  subject is ``metadata.component``; the other nodes are ``components``.
- ``pedigree.ancestors`` of a component lists its parents, each a copy of the parent's
  identity (name, version, purl; no bom-ref, which must stay unique) carrying the edge's
  details as ``lineage:*`` properties: relation, declared, merge method, role, weight,
  density, t, parameters, parent revision, lora, confidence, and one ``lineage:evidence``
  property (compact JSON) per evidence record.
- ``dependencies``: each child ``dependsOn`` its parents.
- Node facts the schema has no field for are ``lineage:*`` properties (status, source,
  relation, parameter count, ...); architecture and declared evaluations go into a
  ``modelCard`` added to the JSON after the library writes it (the library has no model-card
  model). Licenses are SPDX ids or expressions where valid, else named licenses.
- Deterministic: the serial number is a uuid5 of the node-link JSON of the graph, and the
  timestamp is ``flatten.content_timestamp`` (``SOURCE_DATE_EPOCH``, else the newest
  ``last_modified``), never the clock.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
import warnings
from typing import Any

import networkx as nx
from cyclonedx.contrib.license.factories import LicenseFactory
from cyclonedx.model import Property
from cyclonedx.model.bom import Bom
from cyclonedx.model.component import Component, ComponentType, Pedigree
from cyclonedx.model.license import License
from cyclonedx.output.json import JsonV1Dot6
from packageurl import PackageURL

from lineage import __version__
from lineage.exporters.flatten import canonical_json, content_timestamp, normalized_graph
from lineage.exporters.json_format import render_json
from lineage.vocabulary import finding_spec

NAMESPACE = "lineage"

# A Hub repo id: optional namespace, then name; the Hub's own character set.
_REPO_ID = re.compile(
    r"^(?:(?P<org>[A-Za-z0-9][A-Za-z0-9_.-]{0,95})/)?(?P<name>[A-Za-z0-9_][A-Za-z0-9_.-]{0,95})$"
)
_COMMIT_SHA = re.compile(r"^[0-9a-fA-F]{40}$")
_NODE_PROPERTIES = (
    "status",
    "status_reason",
    "source",
    "relation",
    "parameter_count",
    "model_type",
    "created_at",
    "last_modified",
)
_EDGE_PROPERTIES = (
    "relation",
    "declared",
    "merge_method",
    "role",
    "weight",
    "density",
    "t",
    "parameters",
    "parent_revision",
    "lora",
    "confidence",
)


def render_cyclonedx(graph: nx.DiGraph, subject: str | None) -> str:
    normal = normalized_graph(graph, subject)
    components = {node: _component(node, attrs) for node, attrs in normal.nodes.items()}
    for (parent, child), attrs in normal.edges.items():
        ancestor = _identity(parent, normal.nodes[parent])
        ancestor.properties = _properties(attrs, _EDGE_PROPERTIES, edge=True)
        pedigree = components[child].pedigree or Pedigree()
        pedigree.ancestors = [*pedigree.ancestors, ancestor]
        components[child].pedigree = pedigree

    bom = Bom(serial_number=_serial_number(graph, subject))
    bom.metadata.timestamp = content_timestamp(graph)
    bom.metadata.tools.components.add(
        Component(type=ComponentType.APPLICATION, name="lineage-audit", version=__version__)
    )
    for node, component in components.items():
        if node == subject:
            bom.metadata.component = component
        else:
            bom.components.add(component)
    for child in normal.nodes:
        parents = [components[parent] for parent in normal.predecessors(child)]
        bom.register_dependency(components[child], parents)

    with warnings.catch_warnings():
        # A subject with no parents (a base model) has no dependencies; that is the answer.
        warnings.filterwarnings("ignore", message="The Component this BOM is describing")
        text = JsonV1Dot6(bom).output_as_string()
    document = json.loads(text)
    _add_model_cards(document, normal, components)
    return json.dumps(document, indent=2, sort_keys=True, allow_nan=False) + "\n"


def bom_ref(node: Any, attrs: dict[str, Any]) -> str:
    revision = attrs.get("revision")
    return f"{node}@{revision}" if revision else str(node)


def huggingface_purl(node: Any, attrs: dict[str, Any]) -> PackageURL | None:
    """The package URL of a Hub repo, or None for local models and unusual ids."""
    match = _REPO_ID.match(str(node))
    if attrs.get("source") == "local" or match is None or ".." in str(node):
        return None
    revision = attrs.get("revision")
    version = (
        revision.lower() if isinstance(revision, str) and _COMMIT_SHA.match(revision) else None
    )
    return PackageURL(
        type="huggingface", namespace=match["org"], name=match["name"], version=version
    )


def _identity(node: Any, attrs: dict[str, Any]) -> Component:
    """A component naming the model, without anything only the node itself should carry."""
    return Component(
        type=ComponentType.MACHINE_LEARNING_MODEL,
        name=str(node),
        version=str(attrs["revision"]) if attrs.get("revision") else None,
        purl=huggingface_purl(node, attrs),
    )


def _component(node: Any, attrs: dict[str, Any]) -> Component:
    component = _identity(node, attrs)
    component.bom_ref.value = bom_ref(node, attrs)
    component.licenses = _licenses(attrs.get("license"))
    component.properties = _properties(attrs, _NODE_PROPERTIES, edge=False)
    component.tags = [str(tag) for tag in attrs.get("tags") or [] if str(tag)]
    return component


def _licenses(value: Any) -> list[License]:
    if not isinstance(value, str) or not value.strip():
        return []
    factory = LicenseFactory()
    try:
        return [factory.make_from_string(value.strip())]
    except Exception:
        # A license string from a card never stops the export: keep it as a named license.
        return [factory.make_with_name(value.strip())]


def _properties(attrs: dict[str, Any], keys: tuple[str, ...], *, edge: bool) -> list[Property]:
    properties = [
        Property(name=f"{NAMESPACE}:{key}", value=_property_value(attrs[key]))
        for key in keys
        if attrs.get(key) is not None and attrs.get(key) != {}
    ]
    if edge:
        properties += [
            Property(name=f"{NAMESPACE}:evidence", value=canonical_json(record))
            for record in attrs.get("evidence") or []
        ]
    return properties


def _property_value(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, dict)):
        return canonical_json(value)
    return str(value)


def _serial_number(graph: nx.DiGraph, subject: str | None) -> uuid.UUID:
    digest = hashlib.sha256(render_json(graph, subject).encode("utf-8")).hexdigest()
    return uuid.uuid5(uuid.NAMESPACE_URL, f"urn:lineage-audit:graph:{digest}")


def _add_model_cards(
    document: dict[str, Any], normal: nx.DiGraph, components: dict[Any, Component]
) -> None:
    cards = {
        components[node].bom_ref.value: card
        for node, attrs in normal.nodes.items()
        if (card := _model_card(attrs))
    }
    listed = [document.get("metadata", {}).get("component"), *document.get("components", [])]
    for entry in listed:
        if entry and entry.get("bom-ref") in cards:
            entry["modelCard"] = cards[entry["bom-ref"]]


def _model_card(attrs: dict[str, Any]) -> dict[str, Any]:
    parameters = {
        field: str(attrs[key])
        for field, key in (
            ("modelArchitecture", "architecture"),
            ("architectureFamily", "model_type"),
        )
        if attrs.get(key)
    }
    metrics = [
        metric
        for evaluation in attrs.get("declared_evaluations") or []
        if isinstance(evaluation, dict) and (metric := _performance_metric(evaluation))
    ]
    metrics += [
        _measured_metric(measured)
        for measured in attrs.get("measured_evaluations") or []
        if isinstance(measured, dict)
    ]
    card: dict[str, Any] = {}
    if parameters:
        card["modelParameters"] = parameters
    if metrics:
        card["quantitativeAnalysis"] = {"performanceMetrics": metrics}
    considerations = _considerations(attrs.get("findings") or [])
    if considerations:
        card["considerations"] = considerations
    return card


def _measured_metric(measured: dict[str, Any]) -> dict[str, Any]:
    """A result the audit measured, with its 95% interval (declared ones have none)."""
    low, high = measured["ci"]
    return {
        "type": str(measured["metric"]),
        "value": f"{measured['value']:.4f}",
        "slice": f"{measured['suite']} (measured by lineage-audit, n={measured['n']},"
        f" judge {measured['judge']})",
        "confidenceInterval": {"lowerBound": f"{low:.4f}", "upperBound": f"{high:.4f}"},
    }


def _considerations(findings: list[Any]) -> dict[str, Any]:
    """Audit regressions as ethical considerations with their kind's mitigation; everything
    else a reviewer must know (lineage contradictions, declared results the audit
    contradicts, unverifiable parents) as technical limitations."""
    ethical, limitations = [], []
    for finding in findings:
        if not isinstance(finding, dict):
            continue
        spec = finding_spec(finding.get("kind"))
        if spec is not None and not spec.in_model_card:
            continue
        message = f"{finding.get('kind')}: {finding.get('message')}"
        if spec is not None and spec.mitigation is not None:
            ethical.append({"name": message, "mitigationStrategy": spec.mitigation})
        else:
            limitations.append(message)
    considerations: dict[str, Any] = {}
    if ethical:
        considerations["ethicalConsiderations"] = ethical
    if limitations:
        considerations["technicalLimitations"] = limitations
    return considerations


def _performance_metric(evaluation: dict[str, Any]) -> dict[str, str] | None:
    """One declared model-index result as a CycloneDX performance metric (all strings)."""
    value = evaluation.get("metric_value")
    kind = evaluation.get("metric_type") or evaluation.get("metric_name")
    if value is None or not kind:
        return None
    metric = {"type": str(kind), "value": str(value)}
    where = [
        str(evaluation[key])
        for key in ("dataset_name", "dataset_type", "dataset_split", "task_type")
        if evaluation.get(key)
    ]
    if where:
        metric["slice"] = " / ".join(dict.fromkeys(where))
    return metric
