"""GEXF 1.2: the flattened lineage graph, for Gephi.

GEXF carries scalars only and declares one type per attribute, so the graph is flattened
first (``flatten.flatten_graph``, same rules as GraphML): ``None`` values are left out,
lists and dicts are canonical JSON text, merge parameters are JSON text, and the edge
``weight`` is called ``merge_weight`` because GEXF's own edge ``weight`` is a float.

GEXF requires a label on every node and an id on every edge: the label is the node id (the
repo id) and edge ids count edges in sorted (parent, child) order, so ``nx.read_gexf`` reports
them as a ``label`` node attribute and an ``id`` edge attribute on top of the flattened
graph. The ``lastmodifieddate`` networkx stamps from the clock is replaced by the content date
(``flatten.content_timestamp``) so that the same registry gives the same bytes.
"""

from __future__ import annotations

import re

import networkx as nx

from lineage.exporters.flatten import XML_DECLARATION, content_timestamp, flatten_graph

_MODIFIED_DATE = re.compile(r'lastmodifieddate="[0-9-]*"')


def render_gexf(graph: nx.DiGraph, subject: str | None) -> str:
    flat = flatten_graph(graph, subject)
    body = "\n".join(nx.generate_gexf(flat, encoding="utf-8", prettyprint=True))
    text = XML_DECLARATION + body + "\n"
    # The first match is the <meta> element, which precedes every node and edge; their
    # values cannot match because XML escapes their quotes.
    date = content_timestamp(graph).date().isoformat()
    return _MODIFIED_DATE.sub(f'lastmodifieddate="{date}"', text, count=1)
