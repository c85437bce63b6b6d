"""Crawl throughput: default workers vs one worker, side by side in one run.

A synthetic Hub of >= 2,000 repos (cards + tiny safetensors, a tenth of them mergekit merges
with their config file) runs on loopback with 30 ms injected latency per request, in a
process of its own (the real Hub is remote: its CPU is not the crawler's). A full
descendant crawl from the root is timed at the default worker count and at one worker, each
into a fresh registry and a fresh Hub cache. Prints nodes/s, HTTP requests per node (counted
by the server) and the ratio. Targets: <= 3 metadata requests per node, >= 6x over one worker.

    python benchmarks/crawl.py [--repos 2000] [--latency-ms 30]
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lineage.crawler import CrawlOptions, crawl
from lineage.sources.hub import HubSource
from lineage.sources.retry import RetryPolicy
from registry.database import Registry
from testkit.hub_server import FakeHub
from testkit.synthetic_hub import ROOT, build_synthetic_hub


def serve_synthetic_hub(latency_s: float, conn) -> None:
    """The Hub's process: build, serve, and answer the benchmark's questions on ``conn``."""
    with FakeHub(latency_s=latency_s) as hub:
        conn.send((hub.endpoint, build_synthetic_hub(hub)))
        while (command := conn.recv()) != "stop":
            if command == "reset":
                hub.reset_log()
                conn.send(None)
            elif command == "count":
                conn.send(len(hub.requests))


def run_once(endpoint: str, conn, workers: int, workdir: Path) -> tuple[float, int, int]:
    """One full descendant crawl; returns (seconds, nodes crawled, requests served)."""
    registry = Registry.open(f"sqlite:///{workdir / f'registry-{workers}.db'}")
    source = HubSource(
        endpoint=endpoint,
        token=False,
        cache_dir=workdir / f"cache-{workers}",
        policy=RetryPolicy(base_delay_s=0.05),
        offline=False,
    )
    conn.send("reset")
    conn.recv()
    started = time.perf_counter()
    # Metadata only: weight fingerprints have a benchmark of their own (benchmarks/fingerprint.py).
    options = CrawlOptions(descendants=True, workers=workers, max_nodes=100_000, fingerprint=False)
    report = crawl(registry, source, [ROOT], options)
    elapsed = time.perf_counter() - started
    if not report.ok:
        raise SystemExit(f"crawl with {workers} worker(s) failed: {report.problems[:3]}")
    conn.send("count")
    return elapsed, len(report.nodes), conn.recv()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-ms", type=float, default=30.0)
    parser.add_argument("--workers", type=int, default=CrawlOptions().workers)
    args = parser.parse_args()

    context = multiprocessing.get_context("spawn")
    conn, child_conn = context.Pipe()
    server = context.Process(
        target=serve_synthetic_hub, args=(args.latency_ms / 1000, child_conn), daemon=True
    )
    server.start()
    endpoint, repos = conn.recv()
    print(f"synthetic Hub: {repos} repos, {args.latency_ms:.0f} ms latency per request")
    results = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for workers in (args.workers, 1):
                seconds, nodes, requests = run_once(endpoint, conn, workers, Path(tmp))
                results[workers] = seconds
                print(
                    f"workers={workers:>2}: {nodes} nodes in {seconds:6.1f} s = "
                    f"{nodes / seconds:6.1f} nodes/s, {requests / nodes:.2f} HTTP requests/node"
                )
    finally:
        conn.send("stop")
        server.join(timeout=10)
    ratio = results[1] / results[args.workers]
    print(f"speed-up of {args.workers} workers over 1: {ratio:.1f}x (target >= 6x)")


if __name__ == "__main__":
    main()
