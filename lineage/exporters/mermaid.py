"""Mermaid flowchart (``flowchart TD``, parents above children), for Markdown that renders it.

Node ids are generated (``n0``, ``n1``, ... in sorted repo-id order) so that no repository
string is ever Mermaid syntax; the repo id lives in the label. Labels are double-quoted with
every character Mermaid or HTML could read as syntax written as a Mermaid entity code
(``#quot;``, ``#lt;``, ``#35;`` ...), which Mermaid renders as the character itself. Lines of
a label are joined with `` · `` because a ``<br>`` would need a raw ``<``. Inferred edges
(``declared`` false) are dotted (``-.->``); statuses are ``classDef`` classes.
"""

from __future__ import annotations

from typing import Any

import networkx as nx

from lineage.exporters.flatten import (
    GENERATOR,
    edge_label_lines,
    node_label_lines,
    normalized_graph,
)

# Entity codes Mermaid decodes (#name; or #decimal;). '#' itself must be coded first.
_ENTITIES = {
    "#": "#35;",
    '"': "#quot;",
    "&": "#amp;",
    "<": "#lt;",
    ">": "#gt;",
    "|": "#124;",
    "`": "#96;",
    "[": "#91;",
    "]": "#93;",
    "{": "#123;",
    "}": "#125;",
    "(": "#40;",
    ")": "#41;",
    "\\": "#92;",
}
_STATUS_CLASSES: dict[str, str] = {
    "ok": "fill:#ffffff,stroke:#333333",
    "missing": "fill:#f4f4f4,stroke:#888888,stroke-dasharray:4 3,color:#555555",
    "gated": "fill:#fff3cd,stroke:#b8860b",
    "private": "fill:#e8e8f8,stroke:#5555aa",
    "error": "fill:#f8d7da,stroke:#b02a37",
    "pending": "fill:#ffffff,stroke:#888888,stroke-dasharray:2 2",
}


def render_mermaid(graph: nx.DiGraph, subject: str | None) -> str:
    normal = normalized_graph(graph, subject)
    ids = {node: f"n{index}" for index, node in enumerate(normal.nodes)}
    lines = [f"%% {GENERATOR}", "flowchart TD"]
    for node, attrs in normal.nodes.items():
        lines.append(f'  {ids[node]}["{_text(node_label_lines(node, attrs))}"]')
    for (parent, child), attrs in normal.edges.items():
        arrow = "-.->" if attrs.get("declared") is False else "-->"
        label = _text(edge_label_lines(attrs))
        lines.append(f'  {ids[parent]} {arrow}|"{label}"| {ids[child]}')
    lines.extend(_classes(normal, ids))
    return "\n".join(lines) + "\n"


def escape(text: str) -> str:
    """``text`` with every character that is Mermaid or HTML syntax as an entity code."""
    return "".join(_ENTITIES.get(char, char) for char in text)


def _text(lines: list[str]) -> str:
    return escape(" · ".join(lines))


def _classes(normal: nx.DiGraph, ids: dict[Any, str]) -> list[str]:
    lines = [f"  classDef {status} {style};" for status, style in _STATUS_CLASSES.items()]
    lines.append("  classDef subject stroke-width:3px;")
    by_status: dict[str, list[str]] = {}
    for node, status in normal.nodes(data="status"):
        if status in _STATUS_CLASSES:
            by_status.setdefault(status, []).append(ids[node])
    for status, members in by_status.items():
        lines.append(f"  class {','.join(members)} {status};")
    subjects = [ids[node] for node, flag in normal.nodes(data="subject") if flag]
    if subjects:
        lines.append(f"  class {','.join(subjects)} subject;")
    return lines
