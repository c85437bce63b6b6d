"""Soak: crawl a 2,000-repo synthetic Hub through random faults, again and again.

Not part of the default run (it takes LINEAGE_SOAK_MINUTES, default 10). Run it with:

    LINEAGE_SOAK=1 python -m pytest tests/soak -q

Every round crawls the whole family from its root, with descendants and fingerprints, from a
FakeHub where a share of the requests (LINEAGE_SOAK_CHAOS, default 0.1) meet a random 429,
503, reset connection or body cut short. Each round must end exactly as a fault-free crawl
did: the same nodes with the same statuses, the same edges, nothing lost.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import networkx as nx
import pytest

from lineage.crawler import CrawlOptions, crawl
from lineage.graph import lineage_graph
from lineage.sources.hub import HubSource
from lineage.sources.retry import RetryPolicy
from registry.database import Registry
from testkit.hub_server import FakeHub
from testkit.synthetic_hub import ROOT, build_synthetic_hub

pytestmark = [
    pytest.mark.skipif(os.environ.get("LINEAGE_SOAK") != "1", reason="set LINEAGE_SOAK=1"),
    pytest.mark.timeout(0),
]

MINUTES = float(os.environ.get("LINEAGE_SOAK_MINUTES", "10"))
CHAOS = float(os.environ.get("LINEAGE_SOAK_CHAOS", "0.1"))
OPTIONS = CrawlOptions(descendants=True, max_nodes=100_000)


def _crawl(hub: FakeHub, folder: Path) -> tuple[dict[str, str], set[tuple[str, str, str]]]:
    registry = Registry.open(f"sqlite:///{folder / 'registry.db'}")
    source = HubSource(
        endpoint=hub.endpoint,
        token=False,
        cache_dir=folder / "cache",
        policy=RetryPolicy(base_delay_s=0.05, attempts=8),
        offline=False,
    )
    report = crawl(registry, source, [ROOT], OPTIONS)
    assert report.ok, report.problems[:5]
    with registry.session(write=False) as session:
        graph: nx.DiGraph = lineage_graph(session, ROOT)
    registry.close()
    edges = {(u, v, str(data.get("relation"))) for u, v, data in graph.edges(data=True)}
    return dict(report.nodes), edges


def test_mixed_faults_end_with_the_fault_free_graph(tmp_path: Path) -> None:
    with FakeHub(latency_s=0.005) as hub:
        repos = build_synthetic_hub(hub)
        nodes, edges = _crawl(hub, tmp_path / "clean")
        assert len(nodes) == repos
        deadline = time.monotonic() + MINUTES * 60
        round_number = 0
        while round_number == 0 or time.monotonic() < deadline:
            round_number += 1
            hub.set_chaos(CHAOS, seed=round_number)
            folder = tmp_path / f"round-{round_number}"
            faulty_nodes, faulty_edges = _crawl(hub, folder)
            hub.set_chaos(0.0)
            assert faulty_nodes == nodes, f"round {round_number}"
            assert faulty_edges == edges, f"round {round_number}"
            faults = sum(1 for r in hub.requests if r.status in (0, 429, 503))
            assert faults > 0
            hub.reset_log()
