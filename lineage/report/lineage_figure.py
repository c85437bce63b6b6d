"""The lineage graph as inline SVG: parents above children, the subject highlighted.

    >>> verdicts = {"org/a->org/merged-7b": "confirmed"}  # doctest: +SKIP
    >>> svg = lineage_svg(graph, "org/merged-7b", verification=verdicts)  # doctest: +SKIP

A big family is cut to what fits a page, grown outward from the subject; the layered
layout itself is ``lineage.report.layout`` (pure positions), and this module draws on it:
boxes with the repo id, revision and relation, edges as curves with arrowheads, edge
labels placed where they cover nothing, verdict markers and a legend. Declared, inferred
and contradicted edges differ by dash pattern and words as well as colour. Every string
from a repository goes through the escaping builder in ``lineage.report.svg``; the same
graph gives the same bytes.
"""

from __future__ import annotations

import heapq
import itertools
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from lineage.exporters.flatten import (
    normalized_graph,
    resolve_subject,
    short_revision,
    summarize_value,
)
from lineage.report.layout import (
    Box,
    Spacing,
    compressed,
    cycle_closing_edges,
    generations,
    place,
)
from lineage.report.style import (
    ACCENT,
    ACCENT_TINT,
    CONTRADICTED_DASH,
    FAINT,
    FONT,
    GREEN,
    GRID,
    INFERRED_DASH,
    INK,
    MARGIN,
    MISSING_DASH,
    MUTED,
    PAPER,
    RED,
)
from lineage.report.svg import (
    Markup,
    clean_text,
    element,
    ellipsize,
    group,
    path_data,
    svg_document,
    text,
    text_width,
    wrap,
    wrap_words,
)
from lineage.report.svg import title as svg_title

MAX_NODES = 60
MAX_LAYERS = 7  # generations drawn; a long chain would otherwise run over several pages
VERDICTS = ("confirmed", "contradicted", "unverifiable")
SPACING = Spacing(margin=MARGIN)

_MARGIN = MARGIN
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_ORG_SIZE = 8.5
_NAME_SIZE = 10.5
_META_SIZE = 8.5
_LABEL_SIZE = 8.5


@dataclass
class _Route:
    """One drawn edge: parent -> child, laid out from its upper end to its lower end."""

    parent: str
    child: str
    attrs: dict[str, Any]
    upper: str  # the parent, unless the edge closes a cycle and was turned for layout
    lower: str
    points: list[tuple[float, float]] = field(default_factory=list)  # upper -> lower

    @property
    def turned(self) -> bool:
        return self.upper != self.parent


def lineage_svg(
    graph: nx.DiGraph,
    subject: str,
    *,
    verification: dict[str, str] | None = None,
    width: int = 720,
) -> str:
    """The lineage graph as a layered SVG: parents above children, the subject highlighted.

    ``verification`` maps ``"<parent>-><child>"`` to ``confirmed``, ``contradicted`` or
    ``unverifiable`` (what ``lineage verify`` concluded about a declared edge); other keys
    and values are ignored. A big family is cut to what fits a page (``MAX_NODES`` models,
    ``MAX_LAYERS`` generations, a width-dependent number per generation), grown outward
    from the subject and its parents, nearest first; the figure says how many were left out.
    """
    width = max(int(width), 360)
    subject = resolve_subject(graph, subject)
    normal = normalized_graph(graph, subject)
    turned = cycle_closing_edges(normal)
    generation = generations(normal, turned)
    kept, hidden = _select_nodes(normal, subject, generation, _per_layer_cap(width))
    view = normal.subgraph(kept)
    verdicts = _verdicts(view, verification)
    routes = _routes(view, turned)
    layout = place(
        compressed(generation, kept),
        [(route.upper, route.lower) for route in routes],
        width=width,
        box_height=lambda box_width: 34.0 + 13.0 * _name_lines(view, box_width),
        spacing=SPACING,
    )
    name_lines = _name_lines(view, layout.box_width)
    content_right = layout.right()
    canvas_width = max(float(width), content_right + _MARGIN)
    shift = (canvas_width - content_right - _MARGIN) / 2  # centre a narrow drawing
    if shift > 0:
        layout.shift(shift)
    for route, points in zip(routes, layout.routes, strict=True):
        route.points = points
    boxes = layout.boxes

    edge_marks = [
        _edge_markup(route, verdicts.get((route.parent, route.child))) for route in routes
    ]
    node_marks = [
        _node_markup(node, view.nodes[node], boxes[node], name_lines, view) for node in boxes
    ]
    labels = _edge_labels(routes, verdicts, boxes)

    bottom = max([box[1] + box[3] for box in boxes.values()], default=_MARGIN)
    footer, height = _lineage_footer(bottom + 22, canvas_width, hidden, verification is not None)

    summary = f"Lineage graph of {subject}" if subject else "Lineage graph"
    summary += f": {len(kept)} models, {len(routes)} links"
    if hidden:
        summary += f"; {hidden} more models not drawn"
    return str(
        svg_document(
            canvas_width,
            height,
            summary,
            element("rect", {"width": canvas_width, "height": height, "fill": PAPER}),
            group(edge_marks, class_="edges"),
            group(node_marks, class_="nodes"),
            group(labels, class_="edge-labels"),
            footer,
            font_family=FONT,
        )
    )


def _name_lines(view: nx.DiGraph, box_width: float) -> int:
    """Lines the longest model name takes in a box this wide (every box gets as many)."""
    inner = box_width - 16
    return max(
        (len(wrap(_split_id(str(n))[1], _NAME_SIZE, inner, bold=True)) for n in view.nodes),
        default=1,
    )


# ------------------------------------------------------------------------------ selection


def _per_layer_cap(width: int) -> int:
    """Models per layer before the drawing gets too wide to read once scaled to ``width``."""
    gap, box = SPACING.node_gap, SPACING.min_box
    return max(3, round(1.3 * (width - 2 * SPACING.margin + gap) / (box + gap)))


def _select_nodes(
    normal: nx.DiGraph, subject: str | None, generation: Mapping[str, int], per_layer: int
) -> tuple[list[str], int]:
    """The models drawn, and how many were left out.

    Grown outward from the subject, nearest first (its parents, then by distance, ancestors
    before descendants): a model is drawn only next to one already drawn, so nothing floats
    unconnected. At most ``MAX_NODES`` models, ``per_layer`` per generation and
    ``MAX_LAYERS`` generations.
    """
    nodes = list(normal.nodes)
    if subject is None:

        def nearness(node: Any) -> tuple:
            return (generation[node], str(node))

    else:
        parents = set(normal.predecessors(subject))
        ancestors = nx.ancestors(normal, subject)
        distance = nx.single_source_shortest_path_length(
            normal.to_undirected(as_view=True), subject
        )

        def nearness(node: Any) -> tuple:
            return (
                node != subject,
                node not in parents,
                distance.get(node, math.inf),
                node not in ancestors,
                str(node),
            )

    ranked = sorted(nodes, key=nearness)
    rank = {node: index for index, node in enumerate(ranked)}
    component = {
        node: index
        for index, members in enumerate(nx.weakly_connected_components(normal))
        for node in members
    }
    seeds = iter(ranked)  # where the next unconnected part starts, once one is done
    grown: set[int] = set()
    frontier: list[tuple[int, Any]] = []
    seen: set[Any] = set()
    kept: list[Any] = []
    per_generation: dict[int, int] = {}
    while len(kept) < MAX_NODES:
        if not frontier:
            seed = next((node for node in seeds if component[node] not in grown), None)
            if seed is None:
                break
            grown.add(component[seed])
            seen.add(seed)
            frontier.append((rank[seed], seed))
        _, node = heapq.heappop(frontier)
        count = per_generation.get(generation[node])
        if (count is None and len(per_generation) == MAX_LAYERS) or (count or 0) >= per_layer:
            continue
        kept.append(node)
        per_generation[generation[node]] = (count or 0) + 1
        for neighbour in (*normal.predecessors(node), *normal.successors(node)):
            if neighbour not in seen:
                seen.add(neighbour)
                heapq.heappush(frontier, (rank[neighbour], neighbour))
    return sorted(kept, key=str), len(nodes) - len(kept)


def _verdicts(
    view: nx.DiGraph, verification: Mapping[str, str] | None
) -> dict[tuple[str, str], str]:
    if not verification:
        return {}
    verdicts = {}
    for parent, child in view.edges:
        verdict = verification.get(f"{parent}->{child}")
        if isinstance(verdict, str) and verdict.strip().lower() in VERDICTS:
            verdicts[(parent, child)] = verdict.strip().lower()
    return verdicts


def _routes(view: nx.DiGraph, turned: set[tuple[str, str]]) -> list[_Route]:
    """Every drawn edge but self-loops; an edge that closes a cycle is turned for layout."""
    routes = []
    for parent, child in sorted(view.edges, key=lambda e: (str(e[0]), str(e[1]))):
        if parent == child:
            continue
        upper, lower = (child, parent) if (parent, child) in turned else (parent, child)
        routes.append(_Route(parent, child, dict(view.edges[parent, child]), upper, lower))
    return routes


# ------------------------------------------------------------------------------- drawing


def _drawn_points(route: _Route) -> list[tuple[float, float]]:
    """The route from parent to child (a turned edge is drawn upward, into its child)."""
    return list(reversed(route.points)) if route.turned else list(route.points)


def _curve(points: list[tuple[float, float]], *, arrow: float) -> str:
    """Vertical-tangent cubic curves between layers, straight lines through waypoints."""
    points = list(points)
    x_end, y_end = points[-1]
    direction = 1.0 if y_end >= points[-2][1] else -1.0
    points[-1] = (x_end, y_end - direction * arrow)  # stop where the arrowhead starts
    commands: list[tuple] = [("M", *points[0])]
    for index, ((x1, y1), (x2, y2)) in enumerate(itertools.pairwise(points)):
        if index % 2:  # through a waypoint: straight down its layer
            commands.append(("L", x2, y2))
        else:
            middle = (y2 - y1) / 2
            commands.append(("C", x1, y1 + middle, x2, y2 - middle, x2, y2))
    return path_data(commands)


def _arrowhead(points: list[tuple[float, float]], size: float) -> str:
    x, y = points[-1]
    direction = 1.0 if y >= points[-2][1] else -1.0
    base = y - direction * size
    return path_data(
        [("M", x, y), ("L", x - size * 0.45, base), ("L", x + size * 0.45, base), ("Z",)]
    )


def _edge_markup(route: _Route, verdict: str | None) -> Markup:
    inferred = route.attrs.get("declared") is False
    contradicted = verdict == "contradicted"
    colour = RED if contradicted else (FAINT if inferred else MUTED)
    dash = CONTRADICTED_DASH if contradicted else (INFERRED_DASH if inferred else None)
    points = _drawn_points(route)
    classes = ["edge", "inferred" if inferred else "declared"]
    if verdict:
        classes.append(verdict)
    return group(
        svg_title(_edge_description(route, verdict)),
        element(
            "path",
            {
                "d": _curve(points, arrow=6.0),
                "fill": "none",
                "stroke": colour,
                "stroke-width": 1.8 if contradicted else 1.2,
                "stroke-dasharray": dash,
            },
        ),
        element("path", {"d": _arrowhead(points, 7.0), "fill": colour}),
        class_=" ".join(classes),
        data_parent=str(route.parent),
        data_child=str(route.child),
    )


def _edge_description(route: _Route, verdict: str | None) -> str:
    attrs = route.attrs
    parts = [f"{route.parent} → {route.child}", str(attrs.get("relation") or "unknown")]
    merge = _merge_text(attrs)
    if merge:
        parts.append(merge)
    if attrs.get("declared") is False:
        parts.append(_inferred_text(attrs))
    else:
        parts.append("declared")
    if verdict:
        parts.append(f"weights: {verdict}")
    if route.turned:
        parts.append("closes a cycle in the recorded lineage")
    return " · ".join(parts)


def _merge_text(attrs: Mapping[str, Any]) -> str:
    """``linear w=0.4``, ``ties, base``, ``slerp t=[0, 0.5, 1]``: what the recipe declares."""
    method = attrs.get("merge_method")
    if not method and attrs.get("relation") != "merge":
        return ""
    text_parts = [str(method or "merge")]
    if attrs.get("role"):
        text_parts[0] += f", {attrs['role']}"
    for name, short in (("weight", "w"), ("density", "d"), ("t", "t")):
        if attrs.get(name) is not None:
            text_parts.append(f"{short}={summarize_value(attrs[name], items=3)}")
    return " ".join(text_parts)


def _inferred_text(attrs: Mapping[str, Any]) -> str:
    """``weights, conf 0.91``: where the inference came from and how sure it is."""
    evidence = [e for e in attrs.get("evidence") or [] if isinstance(e, Mapping)]
    undeclared = [e for e in evidence if e.get("declared") is False] or evidence
    source = str(undeclared[0].get("source") or "inferred") if undeclared else "inferred"
    source = source.split(".")[0] if source.startswith("weights") else source
    confidence = attrs.get("confidence")
    known = isinstance(confidence, (int, float)) and not isinstance(confidence, bool)
    if known and math.isfinite(confidence):
        return f"{source}, conf {confidence:.2f}"
    return source


def _node_relation(node: str, attrs: Mapping[str, Any], view: nx.DiGraph) -> str:
    relation = attrs.get("relation")
    if relation:
        return str(relation)
    incoming = {str(view.edges[p, node].get("relation") or "") for p in view.predecessors(node)}
    incoming.discard("")
    incoming.discard("unknown")
    return incoming.pop() if len(incoming) == 1 else ""


def _split_id(node: str) -> tuple[str, str]:
    """``("org/", "name")`` for a Hub repo id; ``("", text)`` for anything else."""
    if _HUB_ID.match(node):
        owner, _, name = node.partition("/")
        return owner + "/", name
    return "", node


def _node_markup(
    node: str,
    attrs: Mapping[str, Any],
    box: Box,
    name_lines: int,
    view: nx.DiGraph,
) -> Markup:
    left, top, box_width, box_height = box
    is_subject = bool(attrs.get("subject"))
    status = str(attrs.get("status") or "ok")
    absent = status in ("missing", "error", "pending")
    inner = box_width - 16
    owner, name = _split_id(clean_text(node))

    relation = _node_relation(node, attrs, view)
    meta = [short_revision(attrs.get("revision"))]
    if relation:
        meta.append(relation)
    if status not in ("ok", "unknown"):
        meta.append(status)
    meta_text = ellipsize(" · ".join(clean_text(part) for part in meta), _META_SIZE, inner)

    tag_room = 46.0 if is_subject else 0.0
    marks = [
        svg_title(_node_description(node, attrs, relation)),
        element(
            "rect",
            {
                "x": left,
                "y": top,
                "width": box_width,
                "height": box_height,
                "rx": 5,
                "fill": ACCENT_TINT if is_subject else ("#f5f7fa" if absent else PAPER),
                "stroke": ACCENT if is_subject else (FAINT if absent else "#9aa5b1"),
                "stroke-width": 2.2 if is_subject else 1,
                "stroke-dasharray": MISSING_DASH if absent else None,
            },
        ),
    ]
    if owner:
        marks.append(
            text(
                left + 8,
                top + 13,
                ellipsize(owner, _ORG_SIZE, inner - tag_room),
                font_size=_ORG_SIZE,
                fill=MUTED,
            )
        )
    if is_subject:
        marks.append(
            text(
                left + box_width - 8,
                top + 13,
                "SUBJECT",
                font_size=7.5,
                font_weight="bold",
                letter_spacing=0.6,
                fill=ACCENT,
                text_anchor="end",
            )
        )
    lines = wrap(name, _NAME_SIZE, inner, lines=name_lines, bold=True)
    name_top = top + 27 + 6.5 * (name_lines - len(lines))  # centred in the box
    for index, line in enumerate(lines):
        marks.append(
            text(
                left + 8,
                name_top + 13 * index,
                line,
                font_size=_NAME_SIZE,
                font_weight="bold",
                fill=FAINT if absent else INK,
            )
        )
    marks.append(text(left + 8, top + box_height - 8, meta_text, font_size=_META_SIZE, fill=MUTED))
    return group(marks, class_="node subject" if is_subject else "node", data_repo=clean_text(node))


def _node_description(node: str, attrs: Mapping[str, Any], relation: str) -> str:
    parts = [str(node), f"revision {attrs.get('revision') or 'unknown'}"]
    if relation:
        parts.append(relation)
    parts.append(f"status {attrs.get('status') or 'unknown'}")
    if attrs.get("status_reason"):
        parts.append(str(attrs["status_reason"])[:200])
    if attrs.get("license"):
        parts.append(f"license {str(attrs['license'])[:80]}")
    return " · ".join(parts)


@dataclass
class _Label:
    lines: list[tuple[str, str]]  # (text, style): "plain", "inferred", "contradicted"
    verdict: str | None
    width: float
    height: float


def _label_for(route: _Route, verdict: str | None) -> _Label | None:
    lines: list[tuple[str, str]] = []
    merge = _merge_text(route.attrs)
    if merge:
        lines.append((merge, "plain"))
    if route.attrs.get("declared") is False:
        lines.append((_inferred_text(route.attrs), "inferred"))
    if verdict == "contradicted":
        lines.append(("contradicted", "contradicted"))
    if not lines and not verdict:
        return None
    lines = [(ellipsize(clean_text(line), _LABEL_SIZE, 150), style) for line, style in lines]
    marker = 13.0 if verdict else 0.0
    text_w = max((_label_text_width(line, style) for line, style in lines), default=0.0)
    width = marker + text_w + (8 if lines else 4)
    height = max(11.0 * len(lines), 11.0) + 4
    return _Label(lines, verdict, width, height)


def _label_text_width(line: str, style: str) -> float:
    return text_width(line, _LABEL_SIZE, bold=style == "contradicted")


def _edge_labels(
    routes: list[_Route],
    verdicts: Mapping[tuple[str, str], str],
    boxes: Mapping[str, tuple[float, float, float, float]],
) -> list[Markup]:
    """Labels on the first stretch of each edge, moved along it to avoid boxes and labels."""
    taken = [(left - 2, top - 2, w + 4, h + 4) for left, top, w, h in boxes.values()]
    # arrowheads too: a label over one hides which box an edge goes into
    taken += [(x - 6, y - 12, 12, 24) for route in routes for x, y in (_drawn_points(route)[-1],)]
    marks = []
    for route in routes:
        verdict = verdicts.get((route.parent, route.child))
        label = _label_for(route, verdict)
        if label is None:
            continue
        points = _drawn_points(route)
        (x1, y1), (x2, y2) = points[0], points[1]
        candidates = []
        for nudge in (0.0, 1.0, -1.0, 2.0, -2.0):  # along the curve first, then sideways
            for share in (0.42, 0.58, 0.28, 0.72, 0.5):
                # the curve's point at `share`: vertical tangents make x a smoothstep of y
                ease = 3 * share**2 - 2 * share**3
                x = x1 + (x2 - x1) * ease + nudge * (label.width / 2 + 6)
                y = y1 + (y2 - y1) * share
                candidates.append(
                    (x - label.width / 2, y - label.height / 2, label.width, label.height)
                )
        # the first free place, else the one least covered (never dropped: it is evidence)
        rect = min(candidates, key=lambda c: sum(_overlap_area(c, t) for t in taken))
        taken.append(rect)
        marks.append(_label_markup(route, label, rect))
    return marks


def _overlap_area(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    width = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    height = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    return max(width, 0.0) * max(height, 0.0)


def _label_markup(route: _Route, label: _Label, rect: tuple[float, float, float, float]) -> Markup:
    left, top, width, height = rect
    marks = [
        element(
            "rect",
            {
                "x": left,
                "y": top,
                "width": width,
                "height": height,
                "rx": 3,
                "fill": PAPER,
                "fill-opacity": 0.94,
                "stroke": RED if label.verdict == "contradicted" else None,
                "stroke-width": 0.8 if label.verdict == "contradicted" else None,
            },
        )
    ]
    text_left = left + 4
    if label.verdict:
        marks.append(_verdict_marker(label.verdict, left + 8.5, top + height / 2))
        text_left += 13
    for index, (line, style) in enumerate(label.lines):
        marks.append(
            text(
                text_left,
                top + 11 + 11 * index,
                line,
                font_size=_LABEL_SIZE,
                fill=RED if style == "contradicted" else (MUTED if style == "inferred" else INK),
                font_style="italic" if style == "inferred" else None,
                font_weight="bold" if style == "contradicted" else None,
            )
        )
    return group(
        marks,
        class_=f"edge-label {label.verdict}" if label.verdict else "edge-label",
        data_parent=str(route.parent),
        data_child=str(route.child),
    )


def _verdict_marker(verdict: str, x: float, y: float) -> Markup:
    """✓, ✗ or ? drawn as shapes: no glyph a reader's fonts might lack."""
    if verdict == "contradicted":
        d = path_data(
            [
                ("M", x - 2.4, y - 2.4),
                ("L", x + 2.4, y + 2.4),
                ("M", x + 2.4, y - 2.4),
                ("L", x - 2.4, y + 2.4),
            ]
        )
        return group(
            element("circle", {"cx": x, "cy": y, "r": 5.2, "fill": RED}),
            element("path", {"d": d, "stroke": PAPER, "stroke-width": 1.5, "fill": "none"}),
            class_="marker contradicted",
        )
    if verdict == "confirmed":
        d = path_data([("M", x - 2.6, y + 0.2), ("L", x - 0.7, y + 2.2), ("L", x + 2.8, y - 2.2)])
        return group(
            element("circle", {"cx": x, "cy": y, "r": 5, "fill": PAPER, "stroke": GREEN}),
            element("path", {"d": d, "stroke": GREEN, "stroke-width": 1.5, "fill": "none"}),
            class_="marker confirmed",
        )
    return group(
        element("circle", {"cx": x, "cy": y, "r": 5, "fill": PAPER, "stroke": FAINT}),
        text(x, y + 2.8, "?", font_size=7.5, font_weight="bold", fill=MUTED, text_anchor="middle"),
        class_="marker unverifiable",
    )


def _lineage_footer(
    top: float, canvas_width: float, hidden: int, with_verdicts: bool
) -> tuple[Markup, float]:
    """The "+N more" note and the legend; returns them and the figure's height."""
    marks: list[Markup] = []
    y = top
    if hidden:
        marks.append(
            text(
                _MARGIN,
                y,
                f"+{hidden} more models not drawn (the nearest to the subject are shown)",
                font_size=9,
                font_style="italic",
                fill=MUTED,
                class_="more-note",
            )
        )
        y += 18
    marks.append(
        element(
            "line",
            {"x1": _MARGIN, "y1": y - 9, "x2": canvas_width - _MARGIN, "y2": y - 9, "stroke": GRID},
        )
    )
    items = [
        _legend_line("declared parent", MUTED, None),
        _legend_line("inferred from weights", FAINT, INFERRED_DASH),
        _legend_box("subject of the brief"),
    ]
    if with_verdicts:
        items += [
            _legend_marker("confirmed by weights", "confirmed"),
            _legend_marker("unverifiable", "unverifiable"),
            _legend_line("contradicted by weights", RED, CONTRADICTED_DASH, marker="contradicted"),
        ]
    x = _MARGIN
    for item_width, draw in items:
        if x + item_width > canvas_width - _MARGIN and x > _MARGIN:
            x, y = _MARGIN, y + 16
        marks.append(draw(x, y))
        x += item_width + 18
    caption = (
        "Edge labels: merge method with the parent's declared weight (w), density (d) or"
        " interpolation factor (t); inferred edges give their evidence and confidence."
    )
    for line in wrap_words(caption, 8, canvas_width - 2 * _MARGIN):
        y += 12
        marks.append(text(_MARGIN, y, line, font_size=8, fill=MUTED))
    return group(marks, class_="legend"), y + 10


def _legend_line(label: str, colour: str, dash: str | None, marker: str | None = None):
    def draw(x: float, y: float) -> Markup:
        parts = [
            element(
                "line",
                {
                    "x1": x,
                    "y1": y - 3,
                    "x2": x + 26,
                    "y2": y - 3,
                    "stroke": colour,
                    "stroke-width": 1.8 if marker else 1.2,
                    "stroke-dasharray": dash,
                },
            ),
            element(
                "path",
                {
                    "d": path_data(
                        [
                            ("M", x + 33, y - 3),
                            ("L", x + 26, y - 6.2),
                            ("L", x + 26, y + 0.2),
                            ("Z",),
                        ]
                    ),
                    "fill": colour,
                },
            ),
        ]
        offset = 36.0
        if marker:
            parts.append(_verdict_marker(marker, x + offset + 6, y - 3))
            offset += 15
        parts.append(text(x + offset, y, label, font_size=8.5, fill=INK))
        return group(parts)

    width = 36 + (15 if marker else 0) + text_width(label, 8.5)
    return width, draw


def _legend_box(label: str):
    def draw(x: float, y: float) -> Markup:
        return group(
            element(
                "rect",
                {
                    "x": x,
                    "y": y - 9,
                    "width": 22,
                    "height": 12,
                    "rx": 3,
                    "fill": ACCENT_TINT,
                    "stroke": ACCENT,
                    "stroke-width": 2,
                },
            ),
            text(x + 28, y, label, font_size=8.5, fill=INK),
        )

    return 28 + text_width(label, 8.5), draw


def _legend_marker(label: str, verdict: str):
    def draw(x: float, y: float) -> Markup:
        return group(
            _verdict_marker(verdict, x + 6, y - 3),
            text(x + 15, y, label, font_size=8.5, fill=INK),
        )

    return 15 + text_width(label, 8.5), draw
