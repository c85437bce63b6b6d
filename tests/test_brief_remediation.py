"""The brief of a fine-tune that was merged back gains a Remediation section; one never
merged back shows none (its bytes are the golden brief's, see test_brief.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import select

from lineage.crawler import CrawlOptions, crawl
from lineage.example import write_card
from lineage.remediate.model_folder import write_merged_model
from lineage.remediate.sweep import PointEvents, run_sweep
from lineage.report.brief import write_brief
from lineage.sources.local import LocalSource
from registry.database import Registry
from registry.remediations import finish_remediation, start_remediation
from registry.tables import Model, Revision
from testkit.chat_models import save_chat_model

ORG = "rem"
N = 40


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    models = tmp_path / "models"
    write_card(save_chat_model(models / ORG / "aligned", seed=1), {"license": "mit"}, "# al\n")
    write_card(
        save_chat_model(models / ORG / "helpful", seed=2),
        {"base_model": f"{ORG}/aligned", "base_model_relation": "finetune"},
        "# ft\n",
    )
    registry = Registry.open(f"sqlite:///{tmp_path / 'registry.db'}")
    assert crawl(registry, LocalSource(models), [f"{ORG}/helpful"], CrawlOptions()).ok
    return registry


def _head(session, repo_id: str) -> Revision:
    model = session.exec(select(Model).where(Model.repo_id == repo_id)).one()
    return session.get(Revision, model.head_revision_id)


def test_a_merged_back_fine_tune_shows_the_sweep_and_the_choice(registry, tmp_path) -> None:
    before = write_brief(registry, f"{ORG}/helpful", tmp_path / "before.html").read_text()
    assert 'id="remediation"' not in before

    document = run_sweep(
        lambda lam: PointEvents(
            harmful=[lam >= 0.6 and i % 2 == 0 for i in range(N)],
            task=[i < int(N * (0.4 + 0.5 * lam)) for i in range(N)],
        ),
        finetune=f"{ORG}/helpful",
        aligned=f"{ORG}/aligned",
    ).model_copy(update={"model_dir": "out/helpful-safe"})  # as run_remediation names it
    with registry.session() as session:
        row = start_remediation(
            session,
            _head(session, f"{ORG}/helpful"),
            _head(session, f"{ORG}/aligned"),
            method="linear",
            suites=[{"name": "harmful", "kind": "harmful", "hash": "h" * 64}],
            budget=document.budget,
        )
        finish_remediation(session, int(row.id), document, model_dir="out/helpful-safe")

    html = write_brief(registry, f"{ORG}/helpful", tmp_path / "after.html").read_text()
    section = html[html.index('<section id="remediation">') :]
    section = section[: section.index("</section>")]
    assert '<a href="#remediation">Remediation</a>' in html
    assert (
        f"λ = {document.recommended.lam:g}" in section and "Written to out/helpful-safe" in section
    )
    assert section.count("<tr") == len(document.sweep) + 1  # a row per λ, and the header
    assert '<svg xmlns="http://www.w3.org/2000/svg"' in section and "recommended λ" in section
    assert "<script" not in section.lower()
    # The manifest's snapshot covers the sweep: it changed, the rest of the brief did not.
    assert before.count("sha256") == html.count("sha256")


def test_the_pdf_renders_the_section(registry, tmp_path) -> None:
    pytest.importorskip("weasyprint")
    pypdf = pytest.importorskip("pypdf")
    document = run_sweep(
        lambda lam: PointEvents(harmful=[lam > 0.5] * N, task=[lam > 0] * N),
        finetune=f"{ORG}/helpful",
        aligned=f"{ORG}/aligned",
        lambdas=[0.5],
    )
    with registry.session() as session:
        row = start_remediation(
            session,
            _head(session, f"{ORG}/helpful"),
            _head(session, f"{ORG}/aligned"),
            method="linear",
            suites=[],
            budget=document.budget,
        )
        finish_remediation(session, int(row.id), document)
    pdf = write_brief(registry, f"{ORG}/helpful", tmp_path / "brief.pdf")
    text = "\n".join(page.extract_text() for page in pypdf.PdfReader(pdf).pages)
    assert "Remediation" in text and "Recommended: λ = 0.5" in text


def test_the_published_merge_shows_the_sweep_that_recommended_it(registry, tmp_path) -> None:
    models = tmp_path / "models"
    document = run_sweep(
        lambda lam: PointEvents(
            harmful=[lam >= 0.6 and i % 2 == 0 for i in range(N)],
            task=[i < int(N * (0.4 + 0.5 * lam)) for i in range(N)],
        ),
        finetune=f"{ORG}/helpful",
        aligned=f"{ORG}/aligned",
    )
    lam = document.recommended.lam
    with registry.session() as session:
        row = start_remediation(
            session,
            _head(session, f"{ORG}/helpful"),
            _head(session, f"{ORG}/aligned"),
            method="linear",
            suites=[],
            budget=document.budget,
        )
        finish_remediation(session, int(row.id), document)
    write_merged_model(
        models / ORG / "aligned",
        models / ORG / "helpful",
        lam,
        models / ORG / "helpful-safe",
        aligned=f"{ORG}/aligned",
        finetune=f"{ORG}/helpful",
        body="# helpful-safe",
    )
    assert crawl(registry, LocalSource(models), [f"{ORG}/helpful-safe"], CrawlOptions(depth=0)).ok
    html = write_brief(registry, f"{ORG}/helpful-safe", tmp_path / "safe.html").read_text()
    assert 'id="remediation"' in html
    assert f"the sweep of {ORG}/helpful with its aligned parent {ORG}/aligned recommended" in html

    # Another λ than the one recommended is not that sweep's model: no section.
    write_merged_model(
        models / ORG / "aligned",
        models / ORG / "helpful",
        0.9,
        models / ORG / "helpful-other",
        aligned=f"{ORG}/aligned",
        finetune=f"{ORG}/helpful",
        body="# other",
    )
    assert crawl(registry, LocalSource(models), [f"{ORG}/helpful-other"], CrawlOptions(depth=0)).ok
    other = write_brief(registry, f"{ORG}/helpful-other", tmp_path / "other.html").read_text()
    assert 'id="remediation"' not in other
