"""A layered (Sugiyama-style) layout of a small directed graph: positions only, no drawing.

    >>> layout = layered_layout(["base", "a", "b", "merge"],
    ...     [("base", "a"), ("base", "b"), ("a", "merge"), ("b", "merge")], width=720)
    >>> layout.layer_of[node_slot("merge")], layout.boxes["merge"]  # (left, top, w, h)
    (2, (118.0, 220.0, 176.0, 40.0))

- A node's layer is the longest path from a root, so every parent sits above its children.
  An edge that closes a cycle (possible in a registry fed by hostile cards) is turned for
  the layout: a DFS from the roots, in id order, finds those edges as back edges.
- An edge that spans several layers gets a waypoint in each layer between its ends, so that
  it is routed around the boxes, never through them.
- A few barycentre sweeps down and up order each layer to reduce crossings, ties broken by
  node id; the order with the fewest crossings is kept.
- x positions pull each node toward its neighbours' mean under a minimum spacing: isotonic
  regression, solved exactly by pool-adjacent-violators. Nodes of one layer never overlap.

Everything is deterministic: sorted iteration, no randomness, no clock, so the same graph
always gives the same positions. The lineage figure (``lineage.report.lineage_figure``) draws
on top of this; nothing here knows SVG, fonts or repositories.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import networkx as nx

# Slots are the items a layer orders: ("n", node) for a node, ("w", upper, lower, layer) for
# a waypoint of an edge that crosses the layer.
Slot = tuple
Point = tuple[float, float]
Box = tuple[float, float, float, float]  # (left, top, width, height)


@dataclass(frozen=True)
class Spacing:
    """The distances of a layout, in drawing units."""

    margin: float = 16.0  # around the drawing
    node_gap: float = 28.0  # between two boxes of one layer
    waypoint_gap: float = 12.0  # between a waypoint and its neighbour in the layer
    waypoint_width: float = 10.0
    layer_gap: float = 60.0  # between the bottom of a layer's boxes and the next layer
    min_box: float = 124.0  # box width bounds: boxes share the width, within these
    max_box: float = 176.0


SPACING = Spacing()


def node_slot(node: Hashable) -> Slot:
    return ("n", node)


def is_node(slot: Slot) -> bool:
    return slot[0] == "n"


@dataclass
class Layout:
    """Where everything goes: boxes by node, and each edge's polyline, upper end first."""

    layer_of: dict[Slot, int]
    order: list[list[Slot]]  # each layer's slots, left to right
    x: dict[Slot, float]  # slot centres
    box_width: float
    box_height: float
    spacing: Spacing
    boxes: dict[Hashable, Box] = field(default_factory=dict)  # in str(node) order
    routes: list[list[Point]] = field(default_factory=list)  # one per edge, in edge order

    def slot_width(self, slot: Slot) -> float:
        return self.box_width if is_node(slot) else self.spacing.waypoint_width

    def layer_top(self, layer: int) -> float:
        return self.spacing.margin + 4 + layer * (self.box_height + self.spacing.layer_gap)

    def box(self, slot: Slot) -> Box:
        """(left, top, width, height) of a node's box."""
        top = self.layer_top(self.layer_of[slot])
        return (self.x[slot] - self.box_width / 2, top, self.box_width, self.box_height)

    def right(self) -> float:
        """The right edge of the rightmost slot (the margin when there is none)."""
        return max(
            (value + self.slot_width(slot) / 2 for slot, value in self.x.items()),
            default=self.spacing.margin,
        )

    def shift(self, dx: float) -> None:
        """Move everything ``dx`` to the right (to centre a narrow drawing on its canvas)."""
        self.x = {slot: value + dx for slot, value in self.x.items()}
        self.routes = [[(x + dx, y) for x, y in points] for points in self.routes]
        self.boxes = {
            node: (left + dx, top, w, h) for node, (left, top, w, h) in self.boxes.items()
        }


def layered_layout(
    nodes: Iterable[Hashable],
    edges: Iterable[tuple[Hashable, Hashable]],
    *,
    width: float = 720,
    box_height: float | Callable[[float], float] = 40.0,
    spacing: Spacing = SPACING,
) -> Layout:
    """The layout of a whole graph: layers by ancestry, then ``place``.

    ``edges`` are (parent, child) pairs; self-loops are left out, and an edge that closes a
    cycle is laid out turned (its route then runs from the child down to the parent).
    ``box_height`` is a height, or a function of the box width (text wrapped to it).
    """
    graph = nx.DiGraph()
    graph.add_nodes_from(nodes)
    graph.add_edges_from(edges)
    turned = cycle_closing_edges(graph)
    layer_of = generations(graph, turned)
    pairs = sorted(
        ((child, parent) if (parent, child) in turned else (parent, child))
        for parent, child in graph.edges
        if parent != child
    )
    return place(layer_of, pairs, width=width, box_height=box_height, spacing=spacing)


# ------------------------------------------------------------------------------- layers


def cycle_closing_edges(graph: nx.DiGraph) -> set[tuple[Hashable, Hashable]]:
    """Edges that close a cycle (a DFS from the roots, in id order, finds them as back edges).

    Lineage is acyclic, but a registry fed by hostile cards can hold a cycle; turning these
    edges for the layout keeps it drawable.
    """
    state: dict[Hashable, int] = {}  # 1 while on the DFS path, 2 when finished
    turned: set[tuple[Hashable, Hashable]] = set()
    done = object()
    for root in sorted(graph.nodes, key=lambda n: (graph.in_degree(n) > 0, str(n))):
        if root in state:
            continue
        state[root] = 1
        stack = [(root, iter(sorted(graph.successors(root), key=str)))]
        while stack:  # iterative: a hostile chain may be deeper than Python's recursion
            node, children = stack[-1]
            child = next(children, done)
            if child is done:
                state[node] = 2
                stack.pop()
            elif child != node and state.get(child) == 1:
                turned.add((node, child))
            elif child not in state:
                state[child] = 1
                stack.append((child, iter(sorted(graph.successors(child), key=str))))
    return turned


def generations(graph: nx.DiGraph, turned: set[tuple[Hashable, Hashable]]) -> dict[Hashable, int]:
    """Longest path from a root, over the whole graph (cycles turned)."""
    dag = nx.DiGraph()
    dag.add_nodes_from(graph.nodes)
    for parent, child in graph.edges:
        if parent != child:
            dag.add_edge(*((child, parent) if (parent, child) in turned else (parent, child)))
    generation: dict[Hashable, int] = {}
    for node in nx.lexicographical_topological_sort(dag, key=str):
        generation[node] = max((generation[p] + 1 for p in dag.predecessors(node)), default=0)
    return generation


def compressed(generation: Mapping[Hashable, int], kept: Iterable[Hashable]) -> dict:
    """Layers of the nodes kept: their generations, with the emptied ones closed up."""
    kept = list(kept)
    rank = {value: index for index, value in enumerate(sorted({generation[n] for n in kept}))}
    return {node: rank[generation[node]] for node in kept}


# ------------------------------------------------------------------------------- placing


def place(
    layer_of_node: Mapping[Hashable, int],
    edges: Sequence[tuple[Hashable, Hashable]],
    *,
    width: float,
    box_height: float | Callable[[float], float],
    spacing: Spacing = SPACING,
) -> Layout:
    """Boxes and edge routes for nodes already assigned to layers.

    ``edges`` are (upper, lower) pairs, the upper end on a lower-numbered layer, in the order
    their routes come back. The boxes share ``width`` (between ``spacing.min_box`` and
    ``max_box`` wide); ``box_height`` is a height, or a function of the box width.
    """
    layer_of: dict[Slot, int] = {node_slot(n): layer for n, layer in layer_of_node.items()}
    up: dict[Slot, list[Slot]] = {slot: [] for slot in layer_of}
    down: dict[Slot, list[Slot]] = {slot: [] for slot in layer_of}
    waypoints: list[list[Slot]] = []
    for upper, lower in edges:
        top, bottom = layer_of_node[upper], layer_of_node[lower]
        chain = [node_slot(upper)]
        for layer in range(top + 1, bottom):
            waypoint = ("w", upper, lower, layer)
            layer_of[waypoint] = layer
            up[waypoint], down[waypoint] = [], []
            chain.append(waypoint)
        chain.append(node_slot(lower))
        waypoints.append(chain[1:-1])
        for a, b in itertools.pairwise(chain):
            down[a].append(b)
            up[b].append(a)

    depth = max(layer_of.values(), default=-1) + 1
    layers: list[list[Slot]] = [[] for _ in range(depth)]
    for slot in sorted(layer_of, key=slot_key):
        layers[layer_of[slot]].append(slot)
    order = _order_layers(layers, up, down)

    widest = max((sum(1 for s in layer if is_node(s)) for layer in order), default=1)
    room = (width - 2 * spacing.margin - (widest - 1) * spacing.node_gap) / max(widest, 1)
    box_width = min(spacing.max_box, max(spacing.min_box, room))
    height = box_height(box_width) if callable(box_height) else float(box_height)
    layout = Layout(layer_of, order, {}, box_width, height, spacing)
    layout.x = _x_positions(order, up, down, layout)
    layout.boxes = {node: layout.box(node_slot(node)) for node in sorted(layer_of_node, key=str)}
    layout.routes = _route_points(list(edges), waypoints, layout)
    return layout


def slot_key(slot: Slot) -> tuple:
    return (slot[0], *(str(part) for part in slot[1:]))


def _order_layers(
    layers: list[list[Slot]], up: dict[Slot, list[Slot]], down: dict[Slot, list[Slot]]
) -> list[list[Slot]]:
    """Barycentre sweeps down and up, keeping the order with the fewest crossings."""
    order = [list(layer) for layer in layers]
    best, best_crossings = [list(layer) for layer in order], crossings(order, down)
    for _ in range(4):
        for index in range(1, len(order)):
            order[index] = _by_barycentre(order[index], order[index - 1], up)
        for index in range(len(order) - 2, -1, -1):
            order[index] = _by_barycentre(order[index], order[index + 1], down)
        count = crossings(order, down)
        if count < best_crossings:
            best, best_crossings = [list(layer) for layer in order], count
        if best_crossings == 0:
            break
    return best


def _by_barycentre(
    layer: list[Slot], reference: list[Slot], neighbours: dict[Slot, list[Slot]]
) -> list[Slot]:
    position = {slot: index for index, slot in enumerate(reference)}

    def barycentre(item: tuple[int, Slot]) -> tuple:
        index, slot = item
        placed = [position[n] for n in neighbours[slot] if n in position]
        centre = sum(placed) / len(placed) if placed else float(index)
        return (centre, slot_key(slot))

    return [slot for _, slot in sorted(enumerate(layer), key=barycentre)]


def crossings(order: list[list[Slot]], down: Mapping[Slot, list[Slot]]) -> int:
    """How many pairs of links between consecutive layers cross, for this order."""
    total = 0
    for upper, lower in itertools.pairwise(order):
        position = {slot: index for index, slot in enumerate(lower)}
        pairs = [
            (a, position[b]) for a, slot in enumerate(upper) for b in down[slot] if b in position
        ]
        total += sum(
            1
            for i, (a1, b1) in enumerate(pairs)
            for a2, b2 in pairs[i + 1 :]
            if (a1 - a2) * (b1 - b2) < 0
        )
    return total


def _x_positions(
    order: list[list[Slot]],
    up: dict[Slot, list[Slot]],
    down: dict[Slot, list[Slot]],
    layout: Layout,
) -> dict[Slot, float]:
    """Centres pulled toward their neighbours' mean, never closer than the spacing."""
    gaps = [_gaps(layer, layout) for layer in order]
    x: dict[Slot, float] = {}
    for layer, layer_gaps in zip(order, gaps, strict=True):
        position = 0.0
        for slot, gap in zip(layer, layer_gaps, strict=True):
            position += gap
            x[slot] = position

    def settle(index: int, neighbours: dict[Slot, list[Slot]]) -> None:
        wanted = []
        for slot in order[index]:
            placed = [x[n] for n in neighbours[slot] if n in x]
            wanted.append(sum(placed) / len(placed) if placed else x[slot])
        for slot, value in zip(order[index], _spaced(wanted, gaps[index]), strict=True):
            x[slot] = value

    for _ in range(6):
        for index in range(1, len(order)):
            settle(index, up)
        for index in range(len(order) - 2, -1, -1):
            settle(index, down)
    left = min((x[s] - layout.slot_width(s) / 2 for s in x), default=0.0)
    return {slot: value - left + layout.spacing.margin for slot, value in x.items()}


def _gaps(layer: list[Slot], layout: Layout) -> list[float]:
    """The least distance of each slot's centre from the previous one's (0 for the first)."""
    gaps = [0.0]
    for previous, slot in itertools.pairwise(layer):
        both_nodes = is_node(previous) and is_node(slot)
        gaps.append(
            (layout.slot_width(previous) + layout.slot_width(slot)) / 2
            + (layout.spacing.node_gap if both_nodes else layout.spacing.waypoint_gap)
        )
    return gaps


def _spaced(wanted: list[float], gaps: list[float]) -> list[float]:
    """The positions nearest to ``wanted`` (least squares) that keep the ``gaps``.

    Subtracting the running sum of gaps turns it into isotonic regression, which
    pool-adjacent-violators solves exactly.
    """
    offsets, running = [], 0.0
    for gap in gaps:
        running += gap
        offsets.append(running)
    blocks: list[list[float]] = []  # [sum, count]
    for value, offset in zip(wanted, offsets, strict=True):
        blocks.append([value - offset, 1.0])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] > blocks[-1][0] / blocks[-1][1]:
            total, count = blocks.pop()
            blocks[-1][0] += total
            blocks[-1][1] += count
    fitted: list[float] = []
    for total, count in blocks:
        fitted.extend([total / count] * int(count))
    return [value + offset for value, offset in zip(fitted, offsets, strict=True)]


def _route_points(
    edges: list[tuple[Hashable, Hashable]], waypoints: list[list[Slot]], layout: Layout
) -> list[list[Point]]:
    """Ports spread along a box's edge (in the order of where the lines go), then waypoints."""
    leaving: dict[Slot, list[int]] = {}
    arriving: dict[Slot, list[int]] = {}
    for index, (upper, lower) in enumerate(edges):
        leaving.setdefault(node_slot(upper), []).append(index)
        arriving.setdefault(node_slot(lower), []).append(index)

    def next_x(index: int) -> tuple:
        slot = waypoints[index][0] if waypoints[index] else node_slot(edges[index][1])
        return (layout.x[slot], slot_key(slot))

    def previous_x(index: int) -> tuple:
        slot = waypoints[index][-1] if waypoints[index] else node_slot(edges[index][0])
        return (layout.x[slot], slot_key(slot))

    start: dict[int, float] = {}
    end: dict[int, float] = {}
    for slot, indices in leaving.items():
        ports = _ports(layout.x[slot], len(indices), layout)
        for index, port in zip(sorted(indices, key=next_x), ports, strict=True):
            start[index] = port
    for slot, indices in arriving.items():
        ports = _ports(layout.x[slot], len(indices), layout)
        for index, port in zip(sorted(indices, key=previous_x), ports, strict=True):
            end[index] = port

    routes = []
    for index, (upper, lower) in enumerate(edges):
        upper_box = layout.box(node_slot(upper))
        lower_box = layout.box(node_slot(lower))
        points = [(start[index], upper_box[1] + upper_box[3])]
        for waypoint in waypoints[index]:
            top = layout.layer_top(layout.layer_of[waypoint])
            points += [(layout.x[waypoint], top), (layout.x[waypoint], top + layout.box_height)]
        points.append((end[index], lower_box[1]))
        routes.append(points)
    return routes


def _ports(centre: float, count: int, layout: Layout) -> list[float]:
    if count == 1:
        return [centre]
    spread = min(18.0 * (count - 1), layout.box_width - 36)
    return [centre - spread / 2 + spread * index / (count - 1) for index in range(count)]
