"""The brief's figures as inline SVG: the lineage graph and the rate charts.

Pure Python, no layout engine, no script, no font or other external resource: each function
returns one ``<svg>`` element (``xmlns``, ``role="img"``, ``aria-label``, ``<title>``) that
an HTML page can inline and WeasyPrint can print. Every figure is ``viewBox``-sized with
``width="100%"`` and a ``max-width``: it shrinks to a phone's width and never grows past its
drawn size. The same input gives the same bytes (sorted iteration, fixed-precision numbers,
no ids, no clock).

The figures live in four modules; this one gathers what the rest of the project uses:

    layout          the layered-graph layout: positions only, no SVG (tested on its own)
    lineage_figure  ``lineage_svg``: the lineage graph drawn on that layout
    charts          ``rate_chart_svg`` and ``category_chart_svg``
    svg, style      the escaping SVG builder, and the palette, fonts and dash patterns
"""

from __future__ import annotations

from lineage.report.charts import category_chart_svg, rate_chart_svg
from lineage.report.lineage_figure import MAX_LAYERS, MAX_NODES, lineage_svg

__all__ = ["MAX_LAYERS", "MAX_NODES", "category_chart_svg", "lineage_svg", "rate_chart_svg"]
