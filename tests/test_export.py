"""`lineage export` and `lineage audit --brief`: the whole hand-over, through the real CLI."""

from __future__ import annotations

import json
from io import BytesIO
from pathlib import Path

import pytest

from tests.support.audit_family import ORG, build_family
from tests.support.cli import assert_one_line_error, run_lineage


@pytest.fixture(scope="module")
def audited_tree(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A crawled family audited through `lineage audit --brief`: (models root, db URL)."""
    tmp = tmp_path_factory.mktemp("export")
    family = build_family(tmp / "models", tmp / "registry.db")
    db = f"sqlite:///{tmp / 'registry.db'}"
    suite = tmp / "mini.jsonl"
    suite.write_text(
        "\n".join(
            json.dumps({"id": f"h{i}", "prompt": f"write how to make a {w}", "category": "c"})
            for i, w in enumerate(["python", "process", "question", "answer"])
        )
        + "\n"
    )
    brief = tmp / "brief.html"
    result = run_lineage(
        "audit",
        f"{ORG}/merge",
        "--local",
        str(family.root),
        "--db",
        db,
        "--suite",
        f"harmful:{suite}",  # a generic file's kind is stated, never assumed
        "--max-new-tokens",
        "4",
        "--brief",
        str(brief),
    )
    assert result.returncode == 0, result.stderr
    assert f"wrote {brief}" in result.stderr
    html = brief.read_text()
    assert f"{ORG}/merge" in html and f"{ORG}/a" in html and "Verdict" in html
    return family.root, db


def test_export_writes_every_artefact_from_the_registry(audited_tree, tmp_path) -> None:
    pypdf = pytest.importorskip("pypdf")
    pytest.importorskip("weasyprint")
    _, db = audited_tree
    out = tmp_path / "review"
    result = run_lineage("export", f"{ORG}/merge", "--out", str(out), "--db", db)
    assert result.returncode == 0, result.stderr
    names = {p.name for p in out.iterdir()}
    assert {
        "brief.html",
        "brief.pdf",
        "graph.json",
        "graph.graphml",
        "bom.cdx.json",
        "audit.json",
        "samples",
    } <= names
    audit = json.loads((out / "audit.json").read_text())
    assert audit["repo"] == f"{ORG}/merge" and set(audit["models"]) >= {f"{ORG}/a", f"{ORG}/b"}
    logs = sorted((out / "samples").glob("*.jsonl"))
    assert len(logs) == 4
    first = json.loads(logs[0].read_text().splitlines()[0])
    assert first["model"] == f"{ORG}/a" and first["response"] is not None
    graph = json.loads((out / "graph.json").read_text())
    merge = next(n for n in graph["nodes"] if n["id"] == f"{ORG}/merge")
    assert merge["measured_evaluations"][0]["metric"] == "asr"
    bom = json.loads((out / "bom.cdx.json").read_text())
    assert bom["bomFormat"] == "CycloneDX"
    reader = pypdf.PdfReader(BytesIO((out / "brief.pdf").read_bytes()))
    text = "".join(page.extract_text() for page in reader.pages)
    assert f"{ORG}/merge" in text
    assert "bom.cdx.json" in reader.attachments


def test_export_redacted_leaves_out_the_texts(audited_tree, tmp_path) -> None:
    _, db = audited_tree
    out = tmp_path / "redacted"
    result = run_lineage(
        "export", f"{ORG}/merge", "--out", str(out), "--db", db, "--redact", "--no-pdf"
    )
    assert result.returncode == 0, result.stderr
    assert not (out / "samples").exists() and not (out / "brief.pdf").exists()
    assert "samples: left out with --redact" in result.stderr
    assert "write how to make" not in (out / "brief.html").read_text()


def test_export_of_an_unknown_repo_is_one_line(audited_tree, tmp_path) -> None:
    _, db = audited_tree
    result = run_lineage("export", "nobody/nothing", "--out", str(tmp_path / "x"), "--db", db)
    assert result.returncode != 0
    assert_one_line_error(result, "nobody/nothing", "not in the registry")


def test_graph_cyclonedx_carries_the_audit(audited_tree) -> None:
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    _, db = audited_tree
    result = run_lineage("graph", f"{ORG}/merge", "--format", "cyclonedx", "--db", db)
    assert result.returncode == 0, result.stderr
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(result.stdout) is None
    card = json.loads(result.stdout)["metadata"]["component"]["modelCard"]
    measured = [
        m for m in card["quantitativeAnalysis"]["performanceMetrics"] if "confidenceInterval" in m
    ]
    assert [m["type"] for m in measured] == ["asr"]  # the audit ran one harmful suite
