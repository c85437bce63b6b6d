"""Evaluations planned, then run by an executor: in process, or as Ray tasks on a local
Ray instance of 2 workers. The findings must not depend on where the evaluations ran."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from audit.auditor import AuditOptions, audit
from audit.errors import AuditError
from audit.executors import (
    EXECUTORS,
    EvaluationContext,
    ExecutorOptions,
    LocalExecutor,
    RayExecutor,
)
from audit.judges import get_judge
from lineage.crawler import CrawlOptions, crawl
from registry.database import Registry
from tests.support.audit_family import ORG, SETTINGS, SUITES, Family, build_family

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def family(tmp_path_factory: pytest.TempPathFactory) -> Family:
    tmp = tmp_path_factory.mktemp("executors")
    return build_family(tmp / "models", tmp / "local.db")


def _registry(family: Family, path: Path) -> Registry:
    """A registry of its own, crawled from the same models: nothing evaluated yet."""
    registry = Registry.open(f"sqlite:///{path}")
    report = crawl(
        registry,
        family.source,
        [f"{ORG}/base"],
        CrawlOptions(descendants=True, fingerprint=False),
    )
    assert report.ok, report.problems
    return registry


def _findings(report) -> list[tuple]:
    data = report.to_json()
    return sorted(
        (f["kind"], f["model"], f.get("against"), f.get("suite"), f.get("p_value"))
        for f in data["findings"]
    )


def _rates(report) -> dict:
    return {
        repo: {name: (s["n"], s["events"]) for name, s in model["suites"].items()}
        for repo, model in report.to_json()["models"].items()
    }


def test_ray_gives_the_findings_of_the_local_executor(family: Family, tmp_path: Path) -> None:
    # The executor shuts down only an instance it started; under another test order the
    # session's shared instance (conftest.shared_ray) may already be up, and must stay up.
    ray_was_running = ray.is_initialized()
    judge = get_judge("refusal")
    options = AuditOptions(descendants=True)
    local_registry = _registry(family, tmp_path / "local.db")
    local = audit(
        local_registry,
        family.source,
        f"{ORG}/base",
        SUITES,
        judge,
        SETTINGS,
        options,
        executor=LocalExecutor(),
    )
    ray_registry = _registry(family, tmp_path / "ray.db")
    messages: list[str] = []
    distributed = audit(
        ray_registry,
        family.source,
        f"{ORG}/base",
        SUITES,
        judge,
        SETTINGS,
        options,
        progress=messages.append,
        executor=RayExecutor(ExecutorOptions(workers=2)),
    )
    assert _findings(distributed) == _findings(local)
    assert _rates(distributed) == _rates(local)
    # The driver generated nothing: every run came from the Ray workers through the registry.
    assert not any(m.startswith(("loading", "generating")) for m in messages), messages
    assert {
        s["reused"] for m in distributed.to_json()["models"].values() for s in m["suites"].values()
    } == {"run"}
    assert ray.is_initialized() == ray_was_running  # what it started, it shut down

    # Planned again, nothing is missing: no task runs, and the findings stand.
    again = audit(
        ray_registry,
        family.source,
        f"{ORG}/base",
        SUITES,
        judge,
        SETTINGS,
        options,
        executor=RayExecutor(ExecutorOptions(workers=2)),
    )
    assert _findings(again) == _findings(local)


def test_a_cluster_with_a_sqlite_registry_is_refused_before_ray_starts(
    family: Family, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_start(*args: object, **kwargs: object) -> None:
        raise AssertionError("ray.init was called before the registry was checked")

    monkeypatch.setattr(ray, "init", no_start)
    executor = RayExecutor(ExecutorOptions(address="ray://10.0.0.1:10001"))
    context = EvaluationContext("sqlite:////tmp/registry.db", family.source, SETTINGS, "refusal")
    from audit.executors import EvaluationTask
    from audit.plan import AuditNode

    task = EvaluationTask(AuditNode(f"{ORG}/a", "0" * 40, 1, None), SUITES)
    with pytest.raises(AuditError, match="postgresql") as raised:
        executor.run([task], context)
    assert "\n" not in str(raised.value)


def test_executors_are_plugins_keyed_by_name() -> None:
    assert set(EXECUTORS.names()) >= {"local", "ray"}
    assert EXECUTORS.get("ray").build(ExecutorOptions(workers=2)).name == "ray"


def test_a_model_that_fails_on_a_worker_is_reported_and_the_audit_goes_on(
    family: Family, tmp_path: Path, shared_ray: None
) -> None:
    """fam/b's weights are unreadable: its task fails twice (one retry) and fam/b is
    reported as not evaluated, as the local executor reports it; fam/a is still compared."""
    models = tmp_path / "models"
    shutil.copytree(family.root, models)
    (models / ORG / "b" / "model.safetensors").write_bytes(b"\x00" * 64)
    reports = {}
    for name, executor in (
        ("local", LocalExecutor()),
        ("ray", RayExecutor(ExecutorOptions(workers=2))),
    ):
        registry = Registry.open(f"sqlite:///{tmp_path / f'{name}.db'}")
        from lineage.sources.local import LocalSource

        source = LocalSource(models)
        crawl(registry, source, [f"{ORG}/merge"], CrawlOptions(fingerprint=False))
        reports[name] = audit(
            registry,
            source,
            f"{ORG}/merge",
            SUITES,
            get_judge("refusal"),
            SETTINGS,
            AuditOptions(),
            executor=executor,
        )
    for report in reports.values():
        assert any(line.startswith(f"{ORG}/b") for line in report.plan.skipped), report.plan
        assert f"{ORG}/a" in report.to_json()["models"]
    assert reports["ray"].plan.skipped == reports["local"].plan.skipped
    assert _findings(reports["ray"]) == _findings(reports["local"])


@pytest.mark.postgres
def test_ray_workers_write_their_runs_to_a_postgresql_registry(
    family: Family, tmp_path: Path, shared_ray: None
) -> None:
    """A shared registry on a server: the workers write their runs there, the driver reads
    them, and the findings equal those of the local executor on SQLite."""
    from tests.support.databases import fresh_postgres_database, skip_without_postgres

    base = skip_without_postgres()
    judge = get_judge("refusal")
    options = AuditOptions(descendants=True)
    local = audit(
        _registry(family, tmp_path / "local.db"),
        family.source,
        f"{ORG}/base",
        SUITES,
        judge,
        SETTINGS,
        options,
    )
    with fresh_postgres_database(base) as url, Registry.open(url) as pg:
        crawl(pg, family.source, [f"{ORG}/base"], CrawlOptions(descendants=True, fingerprint=False))
        distributed = audit(
            pg,
            family.source,
            f"{ORG}/base",
            SUITES,
            judge,
            SETTINGS,
            options,
            executor=RayExecutor(ExecutorOptions(workers=2)),
        )
    assert _findings(distributed) == _findings(local)
    assert _rates(distributed) == _rates(local)


def test_only_what_is_missing_is_planned_and_run(family: Family, tmp_path: Path) -> None:
    """Runs already recorded (an earlier audit, or the tasks that finished before a killed
    one) are not planned again: only the missing (model, suite) pairs become tasks."""
    from audit.auditor import _missing_evaluations
    from audit.plan import build_plan
    from audit.runner import NodeEvaluator

    registry = _registry(family, tmp_path / "partial.db")
    judge = get_judge("refusal")
    audit(registry, family.source, f"{ORG}/a", SUITES[:1], judge, SETTINGS)  # a and base
    with registry.session(write=False) as session:
        plan = build_plan(session, f"{ORG}/base", descendants=True)
    evaluator = NodeEvaluator(registry, family.source, SETTINGS, judge)
    tasks = {
        t.node.repo_id: [s.name for s in t.suites]
        for t in _missing_evaluations(evaluator, plan, SUITES)
    }
    rest = [s.name for s in SUITES[1:]]
    everything = [s.name for s in SUITES]
    assert tasks == {
        f"{ORG}/base": rest,
        f"{ORG}/a": rest,
        f"{ORG}/b": everything,
        f"{ORG}/merge": everything,
    }

    class Recording(LocalExecutor):
        def run(self, tasks, context, *, progress=lambda m: None):
            self.seen = {t.node.repo_id: [s.name for s in t.suites] for t in tasks}
            return super().run(tasks, context, progress=progress)

    recording = Recording()
    audit(
        registry,
        family.source,
        f"{ORG}/base",
        SUITES,
        judge,
        SETTINGS,
        AuditOptions(descendants=True),
        executor=recording,
    )
    assert recording.seen == tasks
    assert _missing_evaluations(evaluator, plan, SUITES) == []
