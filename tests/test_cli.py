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


def test_demo_builds_crawls_audits_and_exports(tmp_path):
    """The quick start: the demo reproduces the shape of Farn et al. 2024 from its own audit."""
    out = tmp_path / "demo"
    result = run_lineage("demo", "--out", str(out), timeout=600)
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
