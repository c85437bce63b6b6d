"""The merge-back sweep run end to end on tiny chat models: real merges, real generation.

Random tiny Llamas say nothing about safety (the demo family does that); here they prove the
mechanics: each λ is merged, given the fine-tune's tokenizer and template and a card naming
both parents, crawled, evaluated on exactly the suites the two models answered, deleted
afterwards, and a second sweep reuses every run the first recorded.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from sqlmodel import select

from audit.judges import get_judge
from lineage.crawler import CrawlOptions, crawl
from lineage.documents.remediation import RemediationDocument
from lineage.errors import LineageAuditError
from lineage.example import write_card
from lineage.remediate.errors import NotMergeableError
from lineage.remediate.run import RemediationJob, candidate_id, publish, run_remediation
from lineage.remediate.sweep import PointEvents, run_sweep
from lineage.sources.local import LocalSource
from lineage.verify import verify
from registry import queries
from registry.database import Registry
from registry.remediations import latest_remediation, start_remediation
from registry.tables import Model, Remediation, Revision
from testkit.chat_models import save_chat_model
from tests.support.audit_family import BENIGN, CAPABILITY, HARMFUL, SETTINGS

ORG = "rem"


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Registry, Path]:
    models = tmp_path / "models"
    write_card(save_chat_model(models / ORG / "aligned", seed=1), {"license": "mit"}, "# al\n")
    write_card(
        save_chat_model(models / ORG / "helpful", seed=2),
        {"base_model": f"{ORG}/aligned", "base_model_relation": "finetune"},
        "# ft\n",
    )
    registry = Registry.open(f"sqlite:///{tmp_path / 'registry.db'}")
    report = crawl(registry, LocalSource(models), [f"{ORG}/helpful"], CrawlOptions())
    assert report.ok, report.problems
    return registry, models


def _job(models: Path, cache: Path, **overrides) -> RemediationJob:
    fields = {
        "finetune": f"{ORG}/helpful",
        "aligned": f"{ORG}/aligned",
        "source": LocalSource(models),
        "harmful": [HARMFUL],
        "task": [CAPABILITY],
        "benign": [BENIGN],
        "judge": get_judge("refusal"),
        "settings": SETTINGS,
        "cache": cache,
        "lambdas": [0.5],
    }
    return RemediationJob(**{**fields, **overrides})


def test_each_lambda_is_merged_recorded_evaluated_and_cleaned_up(pair, tmp_path) -> None:
    registry, models = pair
    messages: list[str] = []
    document = run_remediation(registry, _job(models, tmp_path / "cache"), progress=messages.append)
    assert isinstance(document, RemediationDocument)
    assert [p.lam for p in document.sweep] == [0.0, 0.5, 1.0]
    for point in document.sweep:
        assert point.n_harmful == len(HARMFUL) and point.n_task == len(CAPABILITY)
        assert point.n_benign == len(BENIGN)
        assert set(point.run_ids) == {HARMFUL.name, CAPABILITY.name, BENIGN.name}
    candidate = candidate_id(f"{ORG}/helpful", 0.5)
    assert candidate == "remediate/helpful-l0500"
    assert not (tmp_path / "cache" / candidate).exists()  # deleted after its evaluation
    with registry.session(write=False) as session:
        details = queries.model_details(session, candidate)
    parents = {(edge["parent"], edge["relation"]) for edge in details["parents"]}
    assert parents == {(f"{ORG}/aligned", "merge"), (f"{ORG}/helpful", "merge")}
    assert any(m.startswith("generating remediate/helpful-l0500") for m in messages)

    # A second sweep (an interrupted one, resumed) generates nothing: every run is cached.
    again: list[str] = []
    second = run_remediation(registry, _job(models, tmp_path / "cache"), progress=again.append)
    assert second.to_json() == document.to_json()
    assert not any(m.startswith("generating") for m in again), again


def test_keep_all_keeps_the_candidates_with_their_card_and_recipe(pair, tmp_path) -> None:
    registry, models = pair
    run_remediation(registry, _job(models, tmp_path / "cache", keep_all=True))
    folder = tmp_path / "cache" / candidate_id(f"{ORG}/helpful", 0.5)
    card = (folder / "README.md").read_text(encoding="utf-8")
    assert "base_model_relation: merge" in card and f"- {ORG}/aligned" in card
    assert "weight: 0.5" in (folder / "mergekit_config.yml").read_text(encoding="utf-8")
    assert (folder / "tokenizer_config.json").is_file()


def test_a_pair_never_crawled_is_a_one_line_error(pair, tmp_path) -> None:
    registry, models = pair
    with pytest.raises(LineageAuditError) as raised:
        run_remediation(registry, _job(models, tmp_path / "cache", aligned=f"{ORG}/nobody"))
    assert f"{ORG}/nobody" in str(raised.value) and "\n" not in str(raised.value)


def test_the_published_model_declares_both_parents_and_verify_recovers_lambda(
    pair, tmp_path
) -> None:
    """What `--out` receives: weights, tokenizer, recipe and a card with the measured
    results; crawled and verified, its two parents are confirmed and λ comes back."""
    registry, models = pair
    job = _job(models, tmp_path / "cache")
    document = run_sweep(
        lambda lam: PointEvents(harmful=[lam > 0.5] * 4, task=[lam > 0] * 4),
        finetune=job.finetune,
        aligned=job.aligned,
        lambdas=[0.3],
    )
    assert document.recommended is not None and document.recommended.lam == 0.3
    runs = {
        HARMFUL.name: SimpleNamespace(rate=0.25),
        CAPABILITY.name: SimpleNamespace(rate=0.5),
        BENIGN.name: SimpleNamespace(rate=0.0),
    }
    folders = {0.0: models / ORG / "aligned", 1.0: models / ORG / "helpful"}
    out = tmp_path / "published" / ORG / "helpful-safe"
    written = publish(job, document, folders, runs, out)  # type: ignore[arg-type]

    assert written.carried_from["tokenizer_config.json"] == f"{ORG}/helpful"
    text = (out / "README.md").read_text(encoding="utf-8")
    assert f"`tokenizer_config.json` from {ORG}/helpful" in text  # recorded where it came from
    card = yaml.safe_load((out / "README.md").read_text(encoding="utf-8").split("---")[1])
    assert card["base_model"] == [f"{ORG}/aligned", f"{ORG}/helpful"]
    assert card["base_model_relation"] == "merge" and "lineage-audit" in card["tags"]
    results = {r["dataset"]["name"]: r for r in card["model-index"][0]["results"]}
    assert results[HARMFUL.name]["dataset"]["revision"] == HARMFUL.content_hash
    assert results[HARMFUL.name]["metrics"][0] == {"type": "asr", "value": 0.25, "name": "ASR"}
    assert results[CAPABILITY.name]["metrics"][0]["value"] == 0.5  # accuracy = 1 − error

    crawled = crawl(
        registry, LocalSource(out.parent.parent), [f"{ORG}/helpful-safe"], CrawlOptions(depth=0)
    )
    assert crawled.nodes[f"{ORG}/helpful-safe"] == "ok", crawled.problems
    report = verify(registry, f"{ORG}/helpful-safe").to_dict()
    statuses = {entry["parent"]: entry["status"] for entry in report["declared"]}
    assert statuses == {f"{ORG}/aligned": "confirmed", f"{ORG}/helpful": "confirmed"}
    coefficients = report["merge"]["coefficients"]
    assert coefficients[f"{ORG}/aligned"] == pytest.approx(0.7, abs=0.01)
    assert coefficients[f"{ORG}/helpful"] == pytest.approx(0.3, abs=0.01)


def test_another_vocabulary_is_refused_before_anything_is_evaluated(pair, tmp_path) -> None:
    """Same shapes, different token ids: merging would mix two embeddings of one row."""
    registry, models = pair
    path = models / ORG / "aligned" / "tokenizer.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    vocab = data["model"]["vocab"]
    first, second = sorted(vocab, key=vocab.get)[-2:]
    vocab[first], vocab[second] = vocab[second], vocab[first]
    path.write_text(json.dumps(data), encoding="utf-8")
    registry_models = crawl(registry, LocalSource(models), [f"{ORG}/aligned"], CrawlOptions())
    assert registry_models.ok
    messages: list[str] = []
    with pytest.raises(NotMergeableError) as raised:
        run_remediation(registry, _job(models, tmp_path / "cache"), progress=messages.append)
    message = str(raised.value)
    assert "the tokenizers differ" in message and f"{ORG}/aligned" in message
    assert f"{ORG}/helpful" in message and "\n" not in message
    assert raised.value.exit_code == 2
    assert not any(m.startswith("evaluating") for m in messages)


def test_each_sweep_is_on_record_done_failed_or_interrupted(pair, tmp_path, monkeypatch) -> None:
    registry, models = pair
    with registry.session() as session:  # a sweep that was killed mid-way
        stale = start_remediation(
            session,
            _head(session, f"{ORG}/helpful"),
            _head(session, f"{ORG}/aligned"),
            method="linear",
            suites=[HARMFUL],
            budget={"delta": 0.05, "max_asr": None},
        )
        stale_id = stale.id
    document = run_remediation(registry, _job(models, tmp_path / "cache"))
    with registry.session(write=False) as session:
        row, stored = latest_remediation(session, f"{ORG}/helpful", f"{ORG}/aligned")
        old = session.get(Remediation, stale_id)
        assert row.status == "done" and stored is not None
        assert stored.to_json() == document.to_json()
        assert {s["name"] for s in row.suites} == {HARMFUL.name, CAPABILITY.name, BENIGN.name}
        assert old.status == "failed" and "interrupted" in old.status_reason

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("lineage.remediate.run.write_merged_model", disk_full)
    with pytest.raises(OSError):
        run_remediation(registry, _job(models, tmp_path / "cache", lambdas=[0.25]))
    with registry.session(write=False) as session:
        row, stored = latest_remediation(session, f"{ORG}/helpful", f"{ORG}/aligned")
        assert row.status == "failed" and stored is None
        assert "No space left on device" in row.status_reason


def _head(session, repo_id: str) -> Revision:
    model = session.exec(select(Model).where(Model.repo_id == repo_id)).one()
    return session.get(Revision, model.head_revision_id)
