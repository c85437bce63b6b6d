"""The layered-graph layout of the lineage figure, on its own: positions, no drawing."""

from __future__ import annotations

import ast
import itertools
import random
from pathlib import Path

import networkx as nx
import pytest

from lineage.report import layout as layout_module
from lineage.report.layout import SPACING, Layout, layered_layout, node_slot


def _layer(layout: Layout, node: str) -> int:
    return layout.layer_of[node_slot(node)]


def _random_dag(seed: int, size: int) -> tuple[list[str], list[tuple[str, str]]]:
    rng = random.Random(seed)
    nodes = [f"org/model-{index:02d}" for index in range(size)]
    edges = [
        (nodes[i], nodes[j])
        for i, j in itertools.combinations(range(size), 2)
        if rng.random() < 0.2
    ]
    return nodes, edges


def _overlap(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return min(a[0] + a[2], b[0] + b[2]) > max(a[0], b[0]) and min(a[1] + a[3], b[1] + b[3]) > max(
        a[1], b[1]
    )


def test_layers_follow_ancestry_by_the_longest_path() -> None:
    nodes = ["root", "a", "b", "merge", "late"]
    edges = [("root", "a"), ("root", "b"), ("a", "merge"), ("b", "merge"), ("merge", "late")]
    edges.append(("root", "late"))  # a shortcut: "late" still sits below "merge"
    layout = layered_layout(nodes, edges)
    assert [_layer(layout, node) for node in nodes] == [0, 1, 1, 2, 3]
    for parent, child in edges:
        parent_box, child_box = layout.boxes[parent], layout.boxes[child]
        assert child_box[1] > parent_box[1] + parent_box[3]  # wholly below its parent


@pytest.mark.parametrize("seed", range(8))
def test_every_parent_sits_above_its_children_in_a_random_family(seed: int) -> None:
    nodes, edges = _random_dag(seed, 14)
    layout = layered_layout(nodes, edges)
    assert set(layout.boxes) == set(nodes)
    for parent, child in edges:
        assert _layer(layout, parent) < _layer(layout, child)


@pytest.mark.parametrize("seed", range(8))
def test_no_two_boxes_overlap_and_neighbours_keep_their_gap(seed: int) -> None:
    nodes, edges = _random_dag(seed, 18)
    layout = layered_layout(nodes, edges, width=640)
    for a, b in itertools.combinations(nodes, 2):
        assert not _overlap(layout.boxes[a], layout.boxes[b]), (a, b)
    for layer in layout.order:
        centres = [layout.x[slot] for slot in layer]
        assert centres == sorted(centres)  # the order is the order on the page
        for left, right in itertools.pairwise(layer):
            least = (layout.slot_width(left) + layout.slot_width(right)) / 2
            assert layout.x[right] - layout.x[left] >= least - 1e-6
    assert min(box[0] for box in layout.boxes.values()) == pytest.approx(SPACING.margin)


def test_the_same_graph_gives_the_same_layout_whatever_the_input_order() -> None:
    nodes, edges = _random_dag(3, 16)
    first = layered_layout(nodes, edges)
    rng = random.Random(0)
    for _ in range(3):
        shuffled_nodes, shuffled_edges = list(nodes), list(edges)
        rng.shuffle(shuffled_nodes)
        rng.shuffle(shuffled_edges)
        again = layered_layout(shuffled_nodes, shuffled_edges)
        assert again.boxes == first.boxes
        assert list(again.boxes) == list(first.boxes)  # str order, for a stable drawing
        assert again.order == first.order
        assert again.routes == first.routes


def test_an_edge_across_layers_is_routed_through_a_waypoint_per_layer() -> None:
    nodes = ["a", "b", "c", "d"]
    edges = [("a", "b"), ("a", "d"), ("b", "c"), ("c", "d")]
    layout = layered_layout(nodes, edges, box_height=40.0)
    assert [_layer(layout, node) for node in nodes] == [0, 1, 2, 3]
    # routes come back in sorted edge order: ("a", "d") is the second
    long_route = layout.routes[1]
    assert len(long_route) == 2 + 2 * 2  # two ends, two layers crossed, two points each
    top, bottom = layout.boxes["a"], layout.boxes["d"]
    assert long_route[0][1] == top[1] + top[3]  # leaves the bottom of "a"
    assert long_route[-1][1] == bottom[1]  # arrives at the top of "d"
    waypoints = [slot for layer in layout.order for slot in layer if slot[0] == "w"]
    assert sorted(slot[3] for slot in waypoints) == [1, 2]
    for x, y in long_route[1:-1]:  # it passes beside the boxes of "b" and "c", not through
        for node in ("b", "c"):
            left, box_top, width, height = layout.boxes[node]
            assert not (left < x < left + width and box_top < y < box_top + height)


def test_layer_order_removes_avoidable_crossings() -> None:
    # Id order would put a over x and b over y, crossing both edges.
    layout = layered_layout(["a", "b", "x", "y"], [("a", "y"), ("b", "x")])
    x = {node: layout.boxes[node][0] for node in "abxy"}
    assert (x["a"] < x["b"]) == (x["y"] < x["x"])


def test_a_cycle_is_laid_out_with_one_edge_turned() -> None:
    edges = [("a", "b"), ("b", "c"), ("c", "a"), ("c", "c")]
    layout = layered_layout(["a", "b", "c"], edges)
    assert [_layer(layout, node) for node in "abc"] == [0, 1, 2]
    assert len(layout.routes) == 3  # the self-loop is left out
    # the turned edge c -> a is routed from a (above) down to c
    turned = layout.routes[1]
    assert turned[0][1] < turned[-1][1]


def test_box_height_may_depend_on_the_box_width_and_boxes_share_the_width() -> None:
    widths: list[float] = []

    def height(width: float) -> float:
        widths.append(width)
        return 30.0 + width / 10

    narrow = layered_layout([f"n{i}" for i in range(8)], [], width=400, box_height=height)
    wide = layered_layout(["n0"], [], width=400, box_height=height)
    assert narrow.box_width == SPACING.min_box  # eight in a row: as narrow as allowed
    assert wide.box_width == SPACING.max_box
    assert widths == [narrow.box_width, wide.box_width]
    assert narrow.box_height == 30.0 + narrow.box_width / 10


def test_shift_moves_boxes_routes_and_centres_alike() -> None:
    layout = layered_layout(["a", "b"], [("a", "b")])
    boxes, routes, right = dict(layout.boxes), [list(r) for r in layout.routes], layout.right()
    layout.shift(10.0)
    assert layout.boxes["b"][0] == boxes["b"][0] + 10.0
    assert layout.routes[0][0][0] == routes[0][0][0] + 10.0
    assert layout.right() == pytest.approx(right + 10.0)


def test_an_empty_graph_has_an_empty_layout() -> None:
    layout = layered_layout([], [])
    assert layout.boxes == {} and layout.routes == [] and layout.order == []


def test_the_layout_module_knows_no_svg() -> None:
    tree = ast.parse(Path(layout_module.__file__).read_text(encoding="utf-8"))
    imported = {
        alias.name.split(".")[0] if isinstance(node, ast.Import) else (node.module or "")
        for node in ast.walk(tree)
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for alias in node.names
    }
    assert imported <= {"__future__", "itertools", "collections.abc", "dataclasses", "networkx"}
    assert nx.__name__ in imported
