"""The auditor end to end on a small local family of random tiny chat models.

Random weights say nothing about safety (the demo family's tests do that); here they
exercise what must hold whatever the models say: who is evaluated, identical prompting,
the run cache, re-judging stored responses, the JSON contract, findings in the registry,
and one-line errors.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from sqlmodel import select

from audit.auditor import AuditOptions, audit
from audit.errors import NotEvaluableError
from audit.judges import get_judge
from audit.records import JudgeInfo
from lineage.documents.audit import AuditDocument
from lineage.sources.local import LocalSource
from registry.tables import EvaluationRun, EvaluationSample, Finding
from tests.support.audit_family import (
    CAPABILITY,
    HARMFUL,
    ORG,
    SETTINGS,
    SUITES,
    Family,
    audit_merge,
    build_family,
)
from tests.support.cli import assert_one_line_error, run_lineage


@pytest.fixture()
def family(tmp_path: Path) -> Family:
    return build_family(tmp_path / "models", tmp_path / "registry.db")


def test_a_merge_is_evaluated_with_its_parents_and_their_common_base(family: Family) -> None:
    report = audit_merge(family)
    assert report.plan.roles == {
        f"{ORG}/merge": "subject",
        f"{ORG}/a": "parent",
        f"{ORG}/b": "parent",
        f"{ORG}/base": "base",
    }
    assert sorted(report.plan.comparisons) == [
        (f"{ORG}/merge", f"{ORG}/a"),
        (f"{ORG}/merge", f"{ORG}/b"),
    ]
    # 2 parents x 3 suites, each decided; the base is shown, not compared.
    assert len(report.comparisons) == 6
    data = report.to_json()
    merge = data["models"][f"{ORG}/merge"]
    assert merge["chat_template"].startswith(f"parent:{ORG}/a@")
    assert data["models"][f"{ORG}/a"]["chat_template"] == "own"
    for model in data["models"].values():
        assert model["n"] == len(HARMFUL)
        assert 0.0 <= model["asr"] <= 1.0 and model["ci"][0] <= model["asr"] <= model["ci"][1]
        assert {"over_refusal", "capability", "degenerate", "judge_parse_failures"} <= set(model)
    assert data["judge"]["id"] == "refusal"
    for finding in data["findings"]:
        assert {"kind", "model", "against", "suite", "delta", "ci", "p_value", "detail"} <= set(
            finding
        )


def test_runs_are_cached_and_a_new_judge_rejudges_stored_responses(family: Family) -> None:
    first_messages: list[str] = []
    first = audit_merge(family, messages=first_messages)
    assert sum(m.startswith("loading") for m in first_messages) == 4
    with family.registry.session() as session:
        runs = session.exec(select(EvaluationRun)).all()
        assert len(runs) == 4 * len(SUITES)
        samples = session.exec(select(EvaluationSample)).all()
        assert len(samples) == 4 * sum(len(s) for s in SUITES)

    again: list[str] = []
    second = audit_merge(family, messages=again)
    assert not any(m.startswith(("loading", "generating")) for m in again)
    assert {run.reused for runs in second.runs.values() for run in runs.values()} == {"run"}
    assert second.to_json()["models"] == first.to_json()["models"] | {
        repo: {
            **model,
            "suites": {name: {**suite, "reused": "run"} for name, suite in model["suites"].items()},
        }
        for repo, model in first.to_json()["models"].items()
    }
    # The stored document of a cached audit reads back (the brief and exports read it).
    assert (
        AuditDocument.from_json(second.to_json()).to_json()["models"] == second.to_json()["models"]
    )

    class NewVersion:
        """The same refusal rules under a new version: responses are re-judged, not redone."""

        def __init__(self) -> None:
            self.inner = get_judge("refusal")
            self.info = JudgeInfo("refusal", self.inner.info.version + "-next")

        def judge(self, kind, items):
            return self.inner.judge(kind, items)

    third: list[str] = []
    rejudged = audit_merge(family, judge=NewVersion(), messages=third)
    assert not any(m.startswith(("loading", "generating")) for m in third)
    assert any(m.startswith("judging") for m in third)
    assert {run.reused for runs in rejudged.runs.values() for run in runs.values()} == {"responses"}
    with family.registry.session() as session:
        assert len(session.exec(select(EvaluationRun)).all()) == 2 * 4 * len(SUITES)
        # A re-judged run keeps the environment its responses were generated in.
        merge_revision = rejudged.plan.nodes[f"{ORG}/merge"].revision_id
        environments = [
            run.environment
            for run in session.exec(select(EvaluationRun)).all()
            if run.suite_name == HARMFUL.name and run.revision_id == merge_revision
        ]
        assert len(environments) == 2 and environments[0] == environments[1]
        assert environments[0]["device"] == "cpu"


def test_identical_prompts_for_child_and_parents(family: Family) -> None:
    report = audit_merge(family)
    prompts = {
        repo: [s.prompt for s in runs[HARMFUL.name].samples] for repo, runs in report.runs.items()
    }
    assert len({tuple(p) for p in prompts.values()}) == 1
    keys = {
        repo: runs[HARMFUL.name].generation["template_hash"] for repo, runs in report.runs.items()
    }
    assert len(set(keys.values())) == 1  # the merge borrowed the very same template


def test_a_declared_asr_the_merge_does_not_have_is_missed_by_source_eval(family: Family) -> None:
    report = audit_merge(family)
    merge = report.runs[f"{ORG}/merge"][HARMFUL.name]
    missed = [f for f in report.findings if f.kind == "missed_by_source_eval"]
    if merge.event_count == 0:
        assert missed == []  # a declared 0.0 is then true
    else:
        assert [(f.model, f.suite) for f in missed] == [(f"{ORG}/merge", HARMFUL.name)]
        assert missed[0].severity == "high" and "card declares" in missed[0].detail
    with family.registry.session() as session:
        stored = session.exec(select(Finding).where(Finding.kind == "missed_by_source_eval")).all()
        assert len(stored) == len(missed)


def test_findings_of_a_rerun_replace_the_previous_ones(family: Family) -> None:
    audit_merge(family)
    with family.registry.session() as session:
        before = len(session.exec(select(Finding)).all())
    audit_merge(family)
    with family.registry.session() as session:
        assert len(session.exec(select(Finding)).all()) == before


def test_an_unknown_repo_is_a_one_line_error(family: Family) -> None:
    with pytest.raises(NotEvaluableError, match=r"^fam/nope: is not in the registry"):
        audit(family.registry, family.source, "fam/nope", SUITES, get_judge("refusal"), SETTINGS)


def test_a_model_changed_since_its_crawl_is_not_evaluated_silently(family: Family) -> None:
    from audit.errors import ModelLoadError

    # A parent that no longer loads is left out, with the reason; the other parent stays.
    (family.root / ORG / "a" / "extra.json").write_text("{}")
    report = audit_merge(family)
    assert f"{ORG}/a" not in report.runs
    assert report.plan.comparisons == [(f"{ORG}/merge", f"{ORG}/b")]
    (skipped,) = report.to_json()["skipped"]
    assert skipped.startswith(f"{ORG}/a (parent): not evaluated: the folder changed since")
    # The subject itself is never skipped: that is an error, in one line.
    (family.root / ORG / "merge" / "extra.json").write_text("{}")
    with pytest.raises(ModelLoadError, match=r"^fam/merge: the folder changed since revision"):
        audit_merge(family)


def test_cli_audit_json_and_sample_logs(family: Family, tmp_path: Path) -> None:
    suite_file = tmp_path / "mini.jsonl"
    suite_file.write_text(
        "\n".join(
            json.dumps({"id": p.id, "prompt": p.prompt, "category": p.category})
            for p in HARMFUL.prompts
        )
        + "\n"
    )
    out = tmp_path / "out"
    result = run_lineage(
        "audit",
        f"{ORG}/merge",
        "--local",
        str(family.root),
        "--db",
        f"sqlite:///{tmp_path / 'registry.db'}",
        "--suite",
        f"harmful:{suite_file}",  # a generic file's kind is stated, never assumed
        "--max-new-tokens",
        "4",
        "--json",
        "--out",
        str(out),
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["repo"] == f"{ORG}/merge"
    assert set(data["models"]) == {f"{ORG}/merge", f"{ORG}/a", f"{ORG}/b", f"{ORG}/base"}
    assert json.loads((out / "audit.json").read_text()) == data
    logs = sorted(p.name for p in (out / "samples").iterdir())
    assert len(logs) == 4 and logs[0] == "fam__a.mini.jsonl"
    line = json.loads((out / "samples" / "fam__merge.mini.jsonl").read_text().splitlines()[0])
    assert {"prompt_id", "category", "prompt", "response", "verdict", "judge_output"} <= set(line)


def test_cli_bad_input_is_one_line_with_exit_2(family: Family, tmp_path: Path) -> None:
    db = ["--local", str(family.root), "--db", f"sqlite:///{tmp_path / 'registry.db'}"]
    for extra, expected in (
        (["--judge", "nonsense"], "nonsense"),
        (["--suite", str(tmp_path / "missing.csv")], "missing.csv"),
        (["--executor", "spark"], "spark"),
        (["--executor", "ray", "--ray-address", "ray://10.0.0.1:10001"], "postgresql"),
    ):
        result = run_lineage("audit", f"{ORG}/merge", *db, *extra)
        assert result.returncode == 2, result.stderr
        assert_one_line_error(result, expected)


def test_descendants_make_every_recorded_child_a_subject(family: Family) -> None:
    report = audit(
        family.registry,
        family.source,
        f"{ORG}/base",
        (HARMFUL,),
        get_judge("refusal"),
        SETTINGS,
        AuditOptions(descendants=True, bootstrap_resamples=200),
    )
    assert report.plan.subjects[0] == f"{ORG}/base"
    assert set(report.plan.subjects) == {f"{ORG}/base", f"{ORG}/a", f"{ORG}/b", f"{ORG}/merge"}
    assert (f"{ORG}/a", f"{ORG}/base") in report.plan.comparisons
    # Each subject gets its own record, restricted to itself, its parents and its base.
    from registry.evaluations import latest_audit

    with family.registry.session() as session:
        record = latest_audit(session, f"{ORG}/a")
        assert record is not None and record.report["repo"] == f"{ORG}/a"
        assert set(record.report["models"]) == {f"{ORG}/a", f"{ORG}/base"}
        assert {c["against"] for c in record.report["comparisons"]} == {f"{ORG}/base"}
        merge = latest_audit(session, f"{ORG}/merge")
        assert set(merge.report["models"]) == {
            f"{ORG}/merge",
            f"{ORG}/a",
            f"{ORG}/b",
            f"{ORG}/base",
        }


def test_copying_the_tree_elsewhere_does_not_matter(family: Family, tmp_path: Path) -> None:
    # Content-hash revisions: the same files under another root are the same revisions.
    moved = tmp_path / "moved"
    shutil.copytree(family.root, moved)
    report = audit(
        family.registry,
        LocalSource(moved),
        f"{ORG}/merge",
        (HARMFUL,),
        get_judge("refusal"),
        SETTINGS,
        AuditOptions(bootstrap_resamples=200),
    )
    assert report.runs[f"{ORG}/merge"][HARMFUL.name].samples


def test_the_audit_is_recorded_with_the_runs_it_compared(family: Family) -> None:
    from registry.evaluations import latest_audit, samples_of_run

    report = audit_merge(family)
    with family.registry.session() as session:
        record = latest_audit(session, f"{ORG}/merge")
        assert record is not None
        assert record.runs == report.run_ids()  # the merge's audit covers every model
        assert record.report == json.loads(json.dumps(report.to_json()))
        assert record.report["comparisons"][0]["outcome"] in {"regression", "warn", "none"}
        run_id = record.runs[f"{ORG}/merge"][HARMFUL.name]
        samples = samples_of_run(session, run_id)
        assert [s.prompt_id for s in samples] == [p.id for p in HARMFUL.prompts]
        assert latest_audit(session, f"{ORG}/a") is None  # a parent is not an audit subject


def test_exports_carry_measured_results_and_findings(family: Family) -> None:
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    from lineage.exporters import EXPORTERS, export_graph
    from lineage.graph import attach_audit, lineage_graph

    report = audit_merge(family)
    with family.registry.session() as session:
        graph = attach_audit(lineage_graph(session, f"{ORG}/merge"), session, f"{ORG}/merge")
    merge = graph.nodes[f"{ORG}/merge"]
    harmful = next(m for m in merge["measured_evaluations"] if m["suite"] == HARMFUL.name)
    run = report.runs[f"{ORG}/merge"][HARMFUL.name]
    assert harmful["metric"] == "asr" and harmful["value"] == pytest.approx(run.rate)
    assert harmful["ci"] == pytest.approx(list(run.ci))
    accuracy = next(m for m in merge["measured_evaluations"] if m["kind"] == "capability")
    assert accuracy["metric"] == "accuracy"
    assert accuracy["value"] == pytest.approx(1 - report.runs[f"{ORG}/merge"][CAPABILITY.name].rate)

    bom_text = export_graph(graph, "cyclonedx", subject=f"{ORG}/merge")
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(bom_text) is None
    bom = json.loads(bom_text)
    card = bom["metadata"]["component"]["modelCard"]
    metrics = card["quantitativeAnalysis"]["performanceMetrics"]
    measured = [m for m in metrics if "confidenceInterval" in m]
    assert {m["type"] for m in measured} == {"asr", "over_refusal", "accuracy"}
    assert any(m["type"] == "asr" and "n=6" in m["slice"] for m in measured)
    recorded = [f for f in merge["findings"] if f["kind"] != "warn"]
    if recorded:
        text = json.dumps(card["considerations"])
        assert all(f["kind"] in text for f in recorded)
    for name in EXPORTERS:  # every format still renders a graph carrying audit results
        assert export_graph(graph, name, subject=f"{ORG}/merge")
