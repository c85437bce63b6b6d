"""Shared fixtures: the model zoo on disk, a loopback Hub serving it, a fresh registry.

No test reaches the internet: the Hub is ``testkit.hub_server.FakeHub`` on 127.0.0.1,
driven through the real huggingface_hub client.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lineage.sources.hub import HubSource
from lineage.sources.retry import RetryPolicy
from registry.database import Registry
from testkit.hub_server import FakeHub
from tests.support.credentials import GOOD_TOKEN
from tests.support.zoo import Zoo, cached_zoo


@pytest.fixture(autouse=True)
def _no_real_hub_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    # A developer's own token or endpoint must never leak into (or change) a test.
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE", "LINEAGE_DB"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def zoo(tmp_path_factory: pytest.TempPathFactory) -> Zoo:
    return cached_zoo(tmp_path_factory)


@pytest.fixture
def hub(zoo: Zoo) -> Iterator[FakeHub]:
    with FakeHub(page_size=3, tokens={GOOD_TOKEN}) as server:
        server.add_local_tree(zoo.root)
        yield server


@pytest.fixture
def fast_policy() -> RetryPolicy:
    return RetryPolicy(base_delay_s=0.01, max_delay_s=0.05, timeout_s=5.0)


@pytest.fixture
def hub_source(hub: FakeHub, tmp_path: Path, fast_policy: RetryPolicy) -> HubSource:
    return HubSource(
        endpoint=hub.endpoint,
        token=False,
        cache_dir=tmp_path / "hf-cache",
        policy=fast_policy,
        offline=False,
    )


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    opened = Registry.open(f"sqlite:///{tmp_path / 'registry.db'}")
    yield opened
    opened.close()


@pytest.fixture(scope="session")
def weight_zoo():
    """Tiny models whose weights carry the truth (tests/support/weight_zoo.py); read only."""
    from tests.support.weight_zoo import cached_weight_zoo

    return cached_weight_zoo()


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory):
    """One `lineage demo` (it trains the safety family, about a minute and a half on two
    cores) for every test that reads what it did: the CLI's, and the family's own."""
    from tests.support.cli import run_lineage

    out = tmp_path_factory.mktemp("demo") / "demo"
    return out, run_lineage("demo", "--out", str(out), timeout=600)


@pytest.fixture(scope="session")
def shared_ray() -> Iterator[None]:
    """One local Ray instance of 2 workers, which the Ray executor joins, for the tests that
    do not check the executor's own start and shutdown (starting one costs ~11 s on 2
    cores). Tests that check those run before the first use (tests/test_executors.py)."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()
