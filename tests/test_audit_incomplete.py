"""An audit that could not evaluate a declared parent never gives a clean verdict (issue 11).

The merge of the tiny chat family declares a third parent, ``fam/ghost``, that no source
holds: the audit still compares the merge with the parents it could evaluate, but its JSON,
its exit code and its brief say "incomplete", never "no regression".
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from audit.auditor import AuditOptions, audit
from audit.judges import get_judge
from lineage.example import write_card
from lineage.report.context import build_context
from tests.support.audit_family import ORG, SETTINGS, SUITES, Family, build_family
from tests.support.cli import run_lineage

GHOST = f"{ORG}/ghost"


@pytest.fixture()
def family(tmp_path: Path) -> Family:
    family = build_family(tmp_path / "models", tmp_path / "built.db")
    card = {"base_model": [f"{ORG}/a", f"{ORG}/b", GHOST], "tags": ["mergekit", "merge"]}
    write_card(tmp_path / "models" / ORG / "merge", card, "# merge\n")
    return family


def test_the_report_says_incomplete_and_why(family: Family, tmp_path: Path) -> None:
    from lineage.crawler import CrawlOptions, crawl
    from registry.database import Registry

    registry = Registry.open(f"sqlite:///{tmp_path / 'fresh.db'}")
    crawl(registry, family.source, [f"{ORG}/merge"], CrawlOptions(fingerprint=False))
    report = audit(
        registry,
        family.source,
        f"{ORG}/merge",
        SUITES,
        get_judge("refusal"),
        SETTINGS,
        AuditOptions(bootstrap_resamples=200),
    )
    data = report.to_json()
    assert data["verdict"] == "incomplete: 1 of 3 parents not evaluated"
    (line,) = data["incomplete"][f"{ORG}/merge"]["not_evaluated"]
    assert line.startswith(f"{GHOST} (parent): not evaluated:")
    assert report.verdict(f"{ORG}/merge") == data["verdict"]
    # The parents that could be evaluated were compared all the same (the ghost has no
    # recorded ancestry, so the three parents have no common base).
    assert {c["against"] for c in data["comparisons"]} == {f"{ORG}/a", f"{ORG}/b"}


def test_the_cli_exits_non_zero_and_the_brief_says_incomplete(
    family: Family, tmp_path: Path
) -> None:
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    out = tmp_path / "out"
    brief = tmp_path / "brief.html"
    result = run_lineage(
        "audit",
        f"{ORG}/merge",
        "--local",
        str(family.root),
        "--db",
        db,
        "--suite",
        "harmful",
        "--max-new-tokens",
        "4",
        "--json",
        "--out",
        str(out),
        "--brief",
        str(brief),
    )
    assert result.returncode == 1, result.stderr
    assert "incomplete: 1 of 3 parents not evaluated" in result.stderr
    data = json.loads((out / "audit.json").read_text())
    assert data["verdict"].startswith("incomplete")
    html = brief.read_text()
    assert "Incomplete: 1 of 3 parents not evaluated" in html
    assert "No regressions found" not in html
    assert "verdict-incomplete" in html

    from registry.database import Registry

    context = build_context(Registry.open(db), f"{ORG}/merge")
    assert context.verdict.status == "incomplete"
    assert GHOST in context.verdict.summary
    assert "2 of the 3 parent models it declares" in context.verdict.summary
