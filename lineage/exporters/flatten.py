"""Groundwork shared by the exporters: one normal form of a lineage graph, and its flat form.

``normalized_graph`` gives every exporter the same input: nodes and edges in sorted order,
every attribute of the schema present (missing ones as ``None``), values made of plain JSON
types only, and the ``subject`` flag set on exactly the subject node. Exporters that render
the same graph twice therefore write the same bytes.

``flatten_graph`` is the form GraphML and GEXF can carry, since both hold scalars only:

- ``None`` values are dropped (both formats say "absent" by leaving a value out);
- each attribute gets one type across all nodes (or all edges), since GEXF declares one:
  an attribute that holds a list or dict anywhere (tags, declared evaluations, evidence,
  parameters), or mixes types, is canonical JSON text (sorted keys, no spaces) on every
  element; where only ints and floats mix, ints are widened to floats;
- the merge parameters ``weight``, ``density`` and ``t`` are always JSON text, a number or a
  per-layer list alike (``"0.6"``, ``"[0.1,0.5,0.9]"``);
- the edge attribute ``weight`` is renamed ``merge_weight``: GEXF stores ``weight`` as the
  edge's float weight, and Gephi or yEd read it as a layout weight, which a merge
  coefficient (possibly a list) is not; other names the formats reserve (``id``, ``label``,
  ``type``, ``start``, ``end``, ...) get an ``attr_`` prefix;
- strings lose what XML 1.0 cannot carry: ``\\r\\n`` and ``\\r`` become ``\\n`` (an XML parser
  normalises them anyway) and other control characters become U+FFFD. Node ids get the
  same treatment, so two ids differing only in such characters would merge.

The module also holds the short text summaries that DOT and Mermaid labels are built from.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
from datetime import datetime, timezone
from typing import Any

import networkx as nx

from lineage import __version__
from lineage.errors import LineageError
from lineage.records import naming_sources

GENERATOR = f"lineage-audit {__version__}"
XML_DECLARATION = '<?xml version="1.0" encoding="utf-8"?>\n'

# The node and edge schema of a lineage graph, with the value each takes when absent.
NODE_FIELDS: dict[str, Any] = {
    "revision": None,
    "status": None,
    "status_reason": None,
    "source": None,
    "architecture": None,
    "model_type": None,
    "parameter_count": None,
    "license": None,
    "relation": None,
    "tags": list,
    "declared_evaluations": list,
    "created_at": None,
    "last_modified": None,
    "subject": False,
}
EDGE_FIELDS: dict[str, Any] = {
    "relation": "unknown",
    "declared": None,
    "evidence": list,
    "merge_method": None,
    "weight": None,
    "density": None,
    "t": None,
    "role": None,
    "parent_revision": None,
    "lora": None,
    "parameters": dict,
    "confidence": None,
}

MERGE_PARAMETERS = ("weight", "density", "t")

# Names GEXF (and networkx's GEXF/GraphML writers) give a meaning of their own.
_RENAMED = {"weight": "merge_weight"}
_RESERVED = frozenset({"id", "label", "type", "start", "end", "pid", "viz", "key", "networkx_key"})

_XML_INVALID = re.compile("[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
_LABEL_LIMIT = 120


# ---------------------------------------------------------------------------- normal form


def plain(value: Any) -> Any:
    """``value`` as plain JSON types: dicts with str keys, lists, str, int, float, bool, None."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        # JSON has no NaN or infinities; keep them visible rather than invalid.
        return value if math.isfinite(value) else str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "to_dict"):
        return plain(value.to_dict())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return plain(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in sorted(value.items(), key=_str_key)}
    if isinstance(value, (set, frozenset)):
        return sorted((plain(item) for item in value), key=repr)
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    return str(value)


def resolve_subject(graph: nx.DiGraph, subject: str | None) -> str | None:
    """The subject node: ``subject`` if given, else the node flagged ``subject=True``."""
    if subject is not None:
        if subject not in graph:
            raise LineageError("the subject is not a node of the lineage graph", repo_id=subject)
        return subject
    flagged = sorted(str(node) for node, flag in graph.nodes(data="subject") if flag)
    return flagged[0] if flagged else None


def normalized_graph(graph: nx.DiGraph, subject: str | None) -> nx.DiGraph:
    """A sorted copy of ``graph`` with every schema attribute present and plain values."""
    if graph.is_multigraph() or not graph.is_directed():
        raise TypeError("lineage exporters take a networkx.DiGraph (parent -> child)")
    normal = nx.DiGraph()
    normal.graph["generator"] = GENERATOR
    normal.graph["subject"] = subject
    for node in sorted(graph.nodes, key=str):
        attrs = _with_schema(graph.nodes[node], NODE_FIELDS)
        attrs["subject"] = node == subject
        normal.add_node(node, **attrs)
    for parent, child in sorted(graph.edges, key=lambda edge: (str(edge[0]), str(edge[1]))):
        normal.add_edge(parent, child, **_with_schema(graph.edges[parent, child], EDGE_FIELDS))
    return normal


def _with_schema(attrs: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for key, default in schema.items():
        value = attrs.get(key)
        if value is None:
            value = default() if callable(default) else default
        merged[key] = plain(value)
    for key in sorted(str(key) for key in attrs if key not in schema):
        merged[key] = plain(attrs[key])
    return merged


def _str_key(item: tuple[Any, Any]) -> str:
    return str(item[0])


def content_timestamp(graph: nx.DiGraph) -> datetime:
    """A timestamp for generated documents that never reads the clock.

    ``SOURCE_DATE_EPOCH`` (reproducible-builds.org) wins; otherwise the newest
    ``last_modified`` in the graph; otherwise the Unix epoch.
    """
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch is not None and epoch.strip():
        if not epoch.strip().isdigit():
            raise LineageError(f"SOURCE_DATE_EPOCH={epoch!r} is not a count of seconds")
        return datetime.fromtimestamp(int(epoch), tz=timezone.utc)
    newest: datetime | None = None
    for _, value in graph.nodes(data="last_modified"):
        moment = _parse_moment(value)
        if moment is not None and (newest is None or moment > newest):
            newest = moment
    return newest or datetime.fromtimestamp(0, tz=timezone.utc)


def _parse_moment(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
    else:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)  # the Hub reports UTC
    return moment.astimezone(timezone.utc).replace(microsecond=0)


# ------------------------------------------------------------------------------ flat form


def canonical_json(value: Any) -> str:
    """Compact JSON with sorted keys: the one text form of a list or dict attribute."""
    return json.dumps(plain(value), sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def xml_text(text: str) -> str:
    """``text`` as XML 1.0 can carry it, unchanged through a write and a read."""
    return _XML_INVALID.sub("\ufffd", text.replace("\r\n", "\n").replace("\r", "\n"))


def flatten_graph(graph: nx.DiGraph, subject: str | None) -> nx.DiGraph:
    """The scalar-only form of ``graph`` that GraphML and GEXF write (see module doc)."""
    normal = normalized_graph(graph, subject)
    flat = nx.DiGraph()
    flat.graph.update(_flat_scalars([dict(normal.graph)], json_keys=())[0])
    nodes = list(normal.nodes)
    node_attrs = _flat_scalars([normal.nodes[node] for node in nodes], json_keys=())
    for node, attrs in zip(nodes, node_attrs, strict=True):
        flat.add_node(xml_text(str(node)), **attrs)
    edges = list(normal.edges)
    edge_attrs = _flat_scalars([normal.edges[edge] for edge in edges], json_keys=MERGE_PARAMETERS)
    for (parent, child), attrs in zip(edges, edge_attrs, strict=True):
        flat.add_edge(xml_text(str(parent)), xml_text(str(child)), **attrs)
    return flat


def _flat_scalars(
    elements: list[dict[str, Any]], *, json_keys: tuple[str, ...]
) -> list[dict[str, Any]]:
    """Drop ``None``, rename reserved names and give each attribute one scalar type."""
    renamed = [
        {_flat_name(key): value for key, value in attrs.items() if value is not None}
        for attrs in elements
    ]
    types: dict[str, set[type]] = {}
    for attrs in renamed:
        for key, value in attrs.items():
            types.setdefault(key, set()).add(type(value))
    as_json = {
        key
        for key, found in types.items()
        if key in {_flat_name(name) for name in json_keys}
        or found & {list, dict}
        or (len(found) > 1 and found != {int, float})
    }
    for attrs in renamed:
        for key, value in attrs.items():
            if key in as_json:
                attrs[key] = xml_text(canonical_json(value))
            elif isinstance(value, str):
                attrs[key] = xml_text(value)
            elif types[key] == {int, float}:
                attrs[key] = float(value)
    return renamed


def _flat_name(key: str) -> str:
    return _RENAMED.get(key) or (f"attr_{key}" if key in _RESERVED else key)


# ----------------------------------------------------------------------- text summaries


def short_revision(revision: Any) -> str:
    return str(revision)[:7] if revision else "no revision"


def clean_label(text: Any, limit: int = _LABEL_LIMIT) -> str:
    """One line of label text: no control characters, bounded length."""
    line = _CONTROL.sub("\ufffd", " ".join(str(text).splitlines()))
    return line if len(line) <= limit else line[: limit - 1] + "…"


def summarize_value(value: Any, items: int = 6) -> str:
    """A short human form of a merge parameter: ``0.6``, ``[0.1, 0.5, 0.9]``, ``{a=1}``."""
    if isinstance(value, bool) or value is None:
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        shown = ", ".join(summarize_value(item, items) for item in value[:items])
        more = f", … ({len(value)} values)" if len(value) > items else ""
        return f"[{shown}{more}]"
    if isinstance(value, dict):
        pairs = list(value.items())
        shown = ", ".join(f"{key}={summarize_value(item, items)}" for key, item in pairs[:items])
        return "{" + shown + (", …" if len(pairs) > items else "") + "}"
    return str(value)


def node_label_lines(node: Any, attrs: dict[str, Any]) -> list[str]:
    """Repo id, then short sha and status: what a reader needs to find the node."""
    status = attrs.get("status") or "unknown"
    lines = [clean_label(node), clean_label(f"{short_revision(attrs.get('revision'))} · {status}")]
    return lines


def edge_label_lines(attrs: dict[str, Any]) -> list[str]:
    """Relation, merge method and role, merge parameters, and how the edge is known."""
    head = str(attrs.get("relation") or "unknown")
    if attrs.get("merge_method"):
        head += f" ({attrs['merge_method']})"
    if attrs.get("role"):
        head += f", {attrs['role']}"
    lines = [head]
    parameters = [
        f"{name}={summarize_value(attrs[name])}"
        for name in MERGE_PARAMETERS
        if attrs.get(name) is not None
    ]
    if parameters:
        lines.append(" ".join(parameters))
    if attrs.get("declared") is False:
        confidence = attrs.get("confidence")
        known = isinstance(confidence, (int, float)) and not isinstance(confidence, bool)
        lines.append(f"inferred, confidence {confidence:.2f}" if known else "inferred")
    weak = weak_evidence_note(attrs)
    if weak:
        lines.append(weak)
    return [clean_label(line) for line in lines]


# Evidence sources that name a parent less firmly than the front matter or a config file.
WEAK_SOURCES = {"card_prose": "stated only in the card's prose"}


def weak_evidence_note(attrs: dict[str, Any]) -> str | None:
    """How a declared edge is weaker than a declaration, or None: a parent named only in
    the card's sentences, or only by a recipe outside a code block or read line by line."""
    if attrs.get("declared") is False:
        return None
    evidence = [e for e in attrs.get("evidence") or [] if isinstance(e, dict)]
    sources = naming_sources(evidence)
    confidence = attrs.get("confidence")
    shown = (
        f", confidence {confidence:.2f}"
        if isinstance(confidence, (int, float)) and not isinstance(confidence, bool)
        else ""
    )
    if sources and sources <= set(WEAK_SOURCES):
        return WEAK_SOURCES[next(iter(sorted(sources)))] + shown
    details = " ".join(str(e.get("detail") or "") for e in evidence)
    if shown and "not valid YAML" in details:
        return "from a recipe read line by line" + shown
    if shown and "not in a code block" in details:
        return "from a recipe outside a code block" + shown
    return None
