"""GraphML: the flattened lineage graph, for yEd, Gephi, Cytoscape and other graph tools.

GraphML carries scalars only, so the graph is flattened first (``flatten.flatten_graph``):
``None`` values are left out, lists and dicts (tags, declared evaluations, evidence, merge
parameters) are canonical JSON text, the edge ``weight`` is called ``merge_weight`` and is
JSON text like ``density`` and ``t`` (a number or a per-layer list), and strings hold only
what XML 1.0 can. The graph data holds ``generator`` and ``subject``.
``nx.read_graphml(path, node_type=str)`` gives the flattened graph back unchanged.
"""

from __future__ import annotations

import networkx as nx

from lineage.exporters.flatten import XML_DECLARATION, flatten_graph


def render_graphml(graph: nx.DiGraph, subject: str | None) -> str:
    flat = flatten_graph(graph, subject)
    body = "\n".join(nx.generate_graphml(flat, encoding="utf-8", prettyprint=True))
    return XML_DECLARATION + body + "\n"
