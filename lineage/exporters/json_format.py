"""Node-link JSON: the lineage graph as networkx writes it, a public contract.

Shape (``nx.node_link_data(G, edges="edges")``)::

    {"directed": true, "multigraph": false,
     "graph": {"generator": "lineage-audit <version>", "subject": "<repo id or null>"},
     "nodes": [{"id": ..., "revision": ..., "status": ..., ...}],
     "edges": [{"source": parent, "target": child, "relation": ..., "declared": ..., ...}]}

Every node and edge carries every schema key (see ``flatten.NODE_FIELDS`` and
``EDGE_FIELDS``), ``null`` where unknown. Nodes and edges are sorted and keys are sorted, with
no timestamp, so the same registry gives the same bytes. Read it back with
``nx.node_link_graph(json.loads(text), edges="edges")``.
"""

from __future__ import annotations

import json

import networkx as nx

from lineage.exporters.flatten import normalized_graph


def render_json(graph: nx.DiGraph, subject: str | None) -> str:
    data = nx.node_link_data(normalized_graph(graph, subject), edges="edges")
    return json.dumps(data, indent=2, sort_keys=True, allow_nan=False) + "\n"
