"""Graphviz DOT, written by hand (no pygraphviz or pydot): ``dot -Tsvg lineage.dot``.

Parents sit above children (``rankdir=TB``). A node reads repo id, short sha and status;
missing, gated, private, error and pending nodes are styled apart, the subject has a thick
border. An edge reads relation, merge method and role, and merge parameters; an inferred
edge (``declared`` false) is dashed.

Every id and label is a double-quoted string: ``\\`` is doubled and ``"`` escaped, so a
repo name cannot end the string early (Graphviz's scanner reads backslash pairs), and a
doubled backslash also keeps label escapes such as ``\\N`` from expanding. Line breaks in
labels are the ``\\n`` escape; control characters are replaced.
"""

from __future__ import annotations

from typing import Any

import networkx as nx

from lineage.exporters.flatten import (
    GENERATOR,
    clean_label,
    edge_label_lines,
    node_label_lines,
    normalized_graph,
)

# Node attributes per status; statuses not listed (ok, unknown) keep the default look.
_STATUS_STYLE: dict[str, dict[str, str]] = {
    "missing": {"style": "dashed,rounded", "color": "#888888", "fontcolor": "#555555"},
    "gated": {"style": "rounded,filled", "fillcolor": "#fff3cd", "color": "#b8860b"},
    "private": {"style": "rounded,filled", "fillcolor": "#e8e8f8", "color": "#5555aa"},
    "error": {"style": "rounded,filled", "fillcolor": "#f8d7da", "color": "#b02a37"},
    "pending": {"style": "dotted,rounded", "color": "#888888"},
}


def render_dot(graph: nx.DiGraph, subject: str | None) -> str:
    normal = normalized_graph(graph, subject)
    lines = [
        f"// {GENERATOR}",
        "digraph lineage {",
        '  graph [rankdir=TB, fontname="Helvetica"'
        + (f", labelloc=t, label={quote('lineage of ' + clean_label(subject))}" if subject else "")
        + "];",
        '  node [shape=box, style="rounded,filled", fillcolor="#ffffff", fontname="Helvetica"];',
        '  edge [fontname="Helvetica", fontsize=10];',
    ]
    for node, attrs in normal.nodes.items():
        lines.append(f"  {quote(str(node))} [{_attributes(_node_attributes(node, attrs))}];")
    for (parent, child), attrs in normal.edges.items():
        edge = f"{quote(str(parent))} -> {quote(str(child))}"
        lines.append(f"  {edge} [{_attributes(_edge_attributes(attrs))}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def quote(text: str) -> str:
    """``text`` as a DOT double-quoted string whose content reads back as ``text``."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    # A raw line break is legal inside a DOT string, but one line per statement keeps the
    # file greppable; in labels "\n" is the line-break escape Graphviz draws.
    return '"' + escaped.replace("\r\n", "\\n").replace("\r", "\\n").replace("\n", "\\n") + '"'


def _label(lines: list[str]) -> str:
    return quote("\n".join(lines))


def _node_attributes(node: Any, attrs: dict[str, Any]) -> dict[str, str]:
    styled = {"label": _label(node_label_lines(node, attrs))}
    for key, value in _STATUS_STYLE.get(str(attrs.get("status")), {}).items():
        styled[key] = quote(value)
    if attrs.get("status_reason"):
        styled["tooltip"] = quote(clean_label(attrs["status_reason"]))
    if attrs.get("subject"):
        styled["penwidth"] = "2.5"
    return styled


def _edge_attributes(attrs: dict[str, Any]) -> dict[str, str]:
    styled = {"label": _label(edge_label_lines(attrs))}
    if attrs.get("declared") is False:
        styled["style"] = "dashed"
    return styled


def _attributes(attrs: dict[str, str]) -> str:
    return ", ".join(f"{key}={value}" for key, value in attrs.items())
