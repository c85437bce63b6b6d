"""The ``lineage`` command as a user runs it: a real process, real exit codes, real output.

Hub commands go to the loopback Hub through ``HF_ENDPOINT``, exactly as a user would
point the tool at a mirror.
"""

from __future__ import annotations

import json
from pathlib import Path

import networkx as nx
import pytest

from testkit.hub_server import FakeHub
from tests.support.cli import assert_one_line_error, run_lineage


@pytest.fixture
def hub_env(hub: FakeHub, tmp_path: Path) -> dict[str, str]:
    return {
        "HF_ENDPOINT": hub.endpoint,
        "HF_HUB_CACHE": str(tmp_path / "hf-cache"),
        "LINEAGE_DB": f"sqlite:///{tmp_path / 'registry.db'}",
    }


def test_crawl_json_then_graph_json_contract(hub_env):
    crawled = run_lineage("crawl", "zoo/linear-merge", "--json", env=hub_env)
    assert crawled.returncode == 0, crawled.stderr
    report = json.loads(crawled.stdout)
    assert report["ok"] and report["nodes"]["zoo/linear-merge"] == "ok"

    exported = run_lineage("graph", "zoo/linear-merge", "--format", "json", env=hub_env)
    assert exported.returncode == 0, exported.stderr
    data = json.loads(exported.stdout)
    assert data["directed"] is True
    node = next(n for n in data["nodes"] if n["id"] == "zoo/linear-merge")
    assert {"id", "revision", "status"} <= node.keys() and node["status"] == "ok"
    edge = next(
        e
        for e in data["edges"]
        if (e["source"], e["target"]) == ("zoo/instruct", "zoo/linear-merge")
    )
    assert {
        "source",
        "target",
        "relation",
        "declared",
        "evidence",
        "merge_method",
        "weight",
        "density",
        "t",
        "role",
    } <= edge.keys()
    assert (edge["relation"], edge["declared"], edge["merge_method"], edge["weight"]) == (
        "merge",
        True,
        "linear",
        0.6,
    )


def test_graph_crawls_an_unknown_repo_and_writes_every_format(hub_env, tmp_path):
    for fmt, suffix in (
        ("graphml", "graphml"),
        ("gexf", "gexf"),
        ("dot", "dot"),
        ("mermaid", "mmd"),
        ("cyclonedx", "cdx.json"),
    ):
        out = tmp_path / f"graph.{suffix}"
        result = run_lineage(
            "graph", "zoo/ties-merge", "--format", fmt, "-o", str(out), env=hub_env
        )
        assert result.returncode == 0, result.stderr
        assert out.stat().st_size > 0
    graph = nx.read_graphml(tmp_path / "graph.graphml")
    assert graph.has_edge("zoo/base", "zoo/ties-merge")
    bom = json.loads((tmp_path / "graph.cdx.json").read_text())
    assert bom["specVersion"] == "1.6"


def test_bad_repo_ids_exit_2_with_one_line(hub_env):
    for bad in ("../../etc/passwd", "org/na me", "org//name", "org/name\t", "org/name@main"):
        result = run_lineage("crawl", bad, env=hub_env)
        assert result.returncode == 2, (bad, result.stderr)
        assert_one_line_error(result)
    usage = run_lineage("crawl", "-rf", env=hub_env)  # click's own usage error
    assert usage.returncode == 2 and "Traceback" not in usage.stderr
    assert "No such option" in usage.stderr


def test_unreadable_repo_exits_1_naming_repo_and_problem(hub_env):
    result = run_lineage("crawl", "zoo/bad-yaml", "--depth", "0", env=hub_env)
    assert result.returncode == 1
    assert_one_line_error(result, "zoo/bad-yaml", "README.md")

    missing = run_lineage("crawl", "nobody/nothing-here", env=hub_env)
    assert missing.returncode == 1
    assert_one_line_error(missing, "nobody/nothing-here", "not found")


def test_unknown_format_and_unusable_registry(hub_env, tmp_path):
    result = run_lineage("graph", "zoo/base", "--format", "pdf", env=hub_env)
    assert result.returncode == 2
    assert_one_line_error(result, "pdf")

    not_a_db = tmp_path / "notes.txt"
    not_a_db.write_text("hello")
    result = run_lineage("registry", "info", "--db", f"sqlite:///{not_a_db}", env=hub_env)
    assert result.returncode == 2
    assert_one_line_error(result, "notes.txt")
    assert not_a_db.read_text() == "hello"


def test_registry_commands(hub_env):
    assert run_lineage("crawl", "zoo/lora", env=hub_env).returncode == 0
    info = json.loads(run_lineage("registry", "info", "--json", env=hub_env).stdout)
    assert info["schema_version"] >= 1 and info["models"] >= 2
    listed = json.loads(run_lineage("registry", "list", "--json", env=hub_env).stdout)
    assert {row["repo_id"] for row in listed} >= {"zoo/lora", "zoo/base"}
    shown = run_lineage("registry", "show", "zoo/lora", "--json", env=hub_env)
    details = json.loads(shown.stdout)
    assert details["parents"][0]["parent"] == "zoo/base"
    assert details["parents"][0]["relation"] == "adapter"
    assert run_lineage("registry", "show", "zoo/lora", env=hub_env).returncode == 0
    unknown = run_lineage("registry", "show", "zoo/never-crawled", env=hub_env)
    assert unknown.returncode == 2
    assert_one_line_error(unknown, "zoo/never-crawled", "lineage crawl")


def test_local_folder_by_path_and_by_root(zoo, tmp_path):
    env = {"LINEAGE_DB": f"sqlite:///{tmp_path / 'local.db'}"}
    by_path = run_lineage("crawl", str(zoo.path("linear_merge")), "--json", env=env)
    assert by_path.returncode == 0, by_path.stderr
    assert set(json.loads(by_path.stdout)["nodes"]) == {
        "zoo/linear-merge",
        "zoo/instruct",
        "zoo/coder",
        "zoo/base",
    }
    by_root = run_lineage("crawl", "zoo/lora", "--local", str(zoo.root), "--json", env=env)
    assert json.loads(by_root.stdout)["nodes"] == {"zoo/lora": "ok", "zoo/base": "ok"}


def test_help_shows_examples():
    result = run_lineage("crawl", "--help")
    assert (
        result.returncode == 0 and "--descendants" in result.stdout and "Examples" in result.stdout
    )


@pytest.mark.timeout(900)  # the first one builds the demo (session fixture, conftest)
def test_demo_builds_crawls_audits_and_exports(demo_run):
    """The quick start: the demo reproduces the shape of Farn et al. 2024 from its own audit."""
    out, result = demo_run
    assert result.returncode == 0, result.stderr
    for name in (
        "lineage.json",
        "lineage.graphml",
        "lineage.gexf",
        "lineage.dot",
        "lineage.mmd",
        "lineage.cdx.json",
        "registry.db",
        "audit.json",
        "brief.html",
        "brief.pdf",
    ):
        assert (out / name).is_file(), name
    graph = json.loads((out / "lineage.json").read_text())
    subject = "demo-org/merge-l60"
    merge_edges = [e for e in graph["edges"] if e["target"] == subject]
    assert {(e["source"], e["merge_method"], e["weight"]) for e in merge_edges} == {
        ("demo-org/chat-aligned", "linear", 0.4),
        ("demo-org/chat-helpful", "linear", 0.6),
    }
    assert "weights recovered" in result.stdout

    audit = json.loads((out / "audit.json").read_text())
    models = audit["models"]
    ladder = [
        "demo-org/chat-aligned",
        *(f"demo-org/merge-l{p}" for p in (20, 40, 60, 80)),
        "demo-org/chat-helpful",
    ]
    asr = [models[repo]["asr"] for repo in ladder]
    # ASR rises with the fine-tune's weight, and every merge sits below the fine-tune.
    assert asr == sorted(asr), asr
    assert asr[1] < asr[4] and max(asr[1:5]) < asr[5]
    assert models["demo-org/chat-aligned"]["over_refusal"] < 0.2
    findings = {(f["kind"], f["model"], f["against"]) for f in audit["findings"]}
    assert ("safety_regression", "demo-org/chat-helpful", "demo-org/chat-aligned") in findings
    assert ("missed_by_source_eval", "demo-org/chat-helpful", None) in findings
    logs = list((out / "samples").glob("*.jsonl"))
    assert len(logs) == len(models) * 3


@pytest.mark.timeout(900)  # the first one builds the demo (session fixture, conftest)
def test_demo_remediates_the_fine_tune_and_publishes_the_choice(demo_run):
    """The demo's sweep merges chat-aligned back into chat-helpful: the fine-tune gains the
    task and loses the refusals, and the recommendation is a λ within the budget that keeps
    part of the task, written out as a model with both parents in its card."""
    out, result = demo_run
    assert result.returncode == 0, result.stderr
    assert "Remediation" in result.stdout and "recommended: λ =" in result.stdout
    from registry.database import Registry
    from registry.remediations import latest_remediation

    registry = Registry.open(f"sqlite:///{out / 'registry.db'}")
    with registry.session(write=False) as session:
        row, document = latest_remediation(
            session, "demo-org/chat-helpful", "demo-org/chat-aligned"
        )
        assert row.status == "done" and row.output_sha256
    assert document is not None and document.recommended is not None
    chosen = next(p for p in document.sweep if p.lam == document.recommended.lam)
    aligned, finetune = document.sweep[0], document.sweep[-1]
    assert chosen.within_budget and 0 < chosen.lam < 1
    assert aligned.task < chosen.task < finetune.task and chosen.asr < finetune.asr
    card = (out / "chat-helpful-remediated" / "README.md").read_text(encoding="utf-8")
    assert "- demo-org/chat-aligned" in card and "- demo-org/chat-helpful" in card
    assert "base_model_relation: merge" in card and "model-index" in card


@pytest.mark.timeout(900)  # the first one builds the demo (session fixture, conftest)
def test_remediate_recommends_the_largest_lambda_within_the_budget_where_truth_is_known(demo_run):
    """On the demo family's training grid the truth is known by construction: the merge at
    λ complies with harmful prompt p exactly when p's turning point is ≤ λ
    (``audit.demo_family``). So on the grid 0.4, 0.6 with an absolute cap of 20%:
    ASR(0.4) = 10% (11 of 110; one-sided 95% Wilson bound 0.157) is within it, ASR(0.6) =
    30% is not, and the fine-tune's task gain is under way at 0.4: the answer is 0.4."""
    from audit.demo_family import turn_lambdas
    from audit.suites import load_suite

    out, result = demo_run
    assert result.returncode == 0, result.stderr
    harmful = load_suite("harmful").prompts
    turns = turn_lambdas(harmful, 0)

    def true_asr(lam: float) -> float:
        return sum(t is not None and t <= lam for t in turns.values()) / len(harmful)

    assert (true_asr(0.4), true_asr(0.6)) == (0.1, 0.3)
    remediated = run_lineage(
        "remediate",
        "demo-org/chat-helpful",
        "--task-suite",
        f"capability:{out / 'demo-task.jsonl'}",
        "--lambdas",
        "0.4,0.6",
        "--max-asr",
        "0.2",
        "--max-new-tokens",
        "24",
        "--device",
        "cpu",
        "--local",
        str(out / "models"),
        "--db",
        f"sqlite:///{out / 'registry.db'}",
        "--cache",
        str(out / "remediate-cache"),
        "--json",
        timeout=600,
    )
    assert remediated.returncode == 0, remediated.stderr
    data = json.loads(remediated.stdout)
    measured = {p["lambda"]: p for p in data["sweep"]}
    assert sorted(measured) == [0.0, 0.4, 0.6, 1.0]
    for lam in (0.0, 0.4, 0.6):
        assert measured[lam]["asr"] == pytest.approx(true_asr(lam), abs=0.02), lam
    assert [measured[lam]["within_budget"] for lam in (0.0, 0.4, 0.6, 1.0)] == [
        True,
        True,
        False,
        False,
    ]
    assert measured[0.4]["task"] > measured[0.0]["task"]
    assert data["recommended"]["lambda"] == 0.4


FULL_DISK_HOOK = """
import errno, os

_under = os.environ["LINEAGE_TEST_FULL_DISK_UNDER"]
_budget = [int(os.environ["LINEAGE_TEST_FULL_DISK_AFTER"])]
_real_write = os.write


def _write(fd, data):
    try:
        path = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        path = ""
    if path.startswith(_under):
        _budget[0] -= len(data)
        if _budget[0] < 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    return _real_write(fd, data)


os.write = _write
"""


@pytest.mark.timeout(900)  # the first one builds the demo (session fixture, conftest)
def test_a_disk_that_fills_while_the_choice_is_written_leaves_nothing_half_done(demo_run, tmp_path):
    """The disk under --out fills 4 KiB into the recommended model (the operating system's
    write answers ENOSPC, through a sitecustomize hook in the child): one line, exit 1, no
    model and no staging folder left, and every run and earlier sweep still in the registry."""
    from sqlmodel import select

    from registry.database import Registry
    from registry.tables import EvaluationRun, Remediation

    out, result = demo_run
    assert result.returncode == 0, result.stderr
    (tmp_path / "hook").mkdir()
    (tmp_path / "hook" / "sitecustomize.py").write_text(FULL_DISK_HOOK, encoding="utf-8")
    target = tmp_path / "full" / "chat-helpful-safe"
    target.parent.mkdir()
    registry = Registry.open(f"sqlite:///{out / 'registry.db'}")

    def counts() -> tuple[set[int], list[tuple[int, str]]]:
        with registry.session(write=False) as session:
            runs = set(session.exec(select(EvaluationRun.id)).all())
            sweeps = [(r.id, r.status) for r in session.exec(select(Remediation)).all()]
        return runs, sweeps

    runs_before, sweeps_before = counts()
    failed = run_lineage(
        "remediate",
        "demo-org/chat-helpful",
        "--task-suite",
        f"capability:{out / 'demo-task.jsonl'}",
        "--lambdas",
        "0.4,0.6",
        "--max-asr",
        "0.2",
        "--max-new-tokens",
        "24",
        "--device",
        "cpu",
        "--local",
        str(out / "models"),
        "--db",
        f"sqlite:///{out / 'registry.db'}",
        "--cache",
        str(out / "remediate-cache"),
        "--out",
        str(target),
        env={
            "PYTHONPATH": str(tmp_path / "hook"),
            "LINEAGE_TEST_FULL_DISK_UNDER": str(target.parent),
            "LINEAGE_TEST_FULL_DISK_AFTER": "4096",
        },
        timeout=600,
    )
    assert failed.returncode == 1, failed.stderr
    assert_one_line_error(failed, "No space left on device")
    assert list(target.parent.iterdir()) == []  # no model, no staging folder
    runs_after, sweeps_after = counts()
    assert runs_before <= runs_after  # every evaluation run is still there
    assert sweeps_after[: len(sweeps_before)] == sweeps_before
    assert [status for _, status in sweeps_after[len(sweeps_before) :]] == ["failed"]
