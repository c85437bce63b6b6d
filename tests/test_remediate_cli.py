"""`lineage remediate` as a user runs it: the JSON contract, the table, one-line errors."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from lineage.example import write_card
from testkit.chat_models import save_chat_model
from tests.support.cli import assert_one_line_error, run_lineage

ORG = "rem"


@pytest.fixture
def family(tmp_path: Path) -> tuple[Path, list[str]]:
    models = tmp_path / "models"
    write_card(save_chat_model(models / ORG / "aligned", seed=1), {"license": "mit"}, "# al\n")
    write_card(
        save_chat_model(models / ORG / "helpful", seed=2),
        {"base_model": f"{ORG}/aligned", "base_model_relation": "finetune"},
        "# ft\n",
    )
    common = [
        "--db",
        f"sqlite:///{tmp_path / 'registry.db'}",
        "--cache",
        str(tmp_path / "cache"),
        "--max-new-tokens",
        "4",
        "--device",
        "cpu",
    ]
    return models, common


def test_json_is_the_contract_and_the_aligned_model_is_the_declared_parent(family) -> None:
    models, common = family
    result = run_lineage(
        "remediate",
        str(models / ORG / "helpful"),
        "--lambdas",
        "0.5",
        "--json",
        *common,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["finetune"] == f"{ORG}/helpful" and data["aligned"] == f"{ORG}/aligned"
    assert data["method"] == "linear" and data["budget"] == {"delta": 0.05, "max_asr": None}
    assert [p["lambda"] for p in data["sweep"]] == [0.0, 0.5, 1.0]
    for point in data["sweep"]:
        assert {
            "asr",
            "asr_ci",
            "task",
            "task_ci",
            "over_refusal",
            "within_budget",
            "pareto",
        } <= set(point)
    assert "recommended" in data and "model_dir" in data


def test_the_table_shows_the_sweep_and_says_what_it_recommends(family) -> None:
    models, common = family
    result = run_lineage(
        "remediate",
        str(models / ORG / "helpful"),
        "--lambdas",
        "0.5",
        "--max-asr",
        "1",
        *common,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert f"{ORG}/helpful merged back with {ORG}/aligned" in result.stdout
    assert "ASR ≤ 1" in result.stdout
    assert "recommended: λ =" in result.stdout or "nothing recommended:" in result.stdout


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--lambdas", "0.5,1.5"], "λ must be a number in [0, 1]"),
        (["--lambdas", "half"], "neither auto nor"),
        (["--method", "ties"], "merge method 'ties' is not supported"),
        (["--delta", "0.1", "--max-asr", "0.2"], "not both"),
        (["--brief", "brief.txt"], "unsupported brief format '.txt'"),
        (["--executor", "dask"], "unknown executor 'dask'"),
    ],
)
def test_bad_options_are_one_line_usage_errors(family, extra, needle) -> None:
    models, common = family
    result = run_lineage("remediate", str(models / ORG / "helpful"), *extra, *common)
    assert result.returncode == 2, result.stderr
    assert_one_line_error(result, needle)
    assert not Path(common[1].removeprefix("sqlite:///")).exists()  # refused before recording


def test_ray_on_a_cluster_with_a_sqlite_registry_is_refused_before_the_sweep(family) -> None:
    models, common = family
    address = ["--executor", "ray", "--ray-address", "ray://10.0.0.1:10001"]
    result = run_lineage("remediate", str(models / ORG / "helpful"), *address, *common)
    assert result.returncode == 2, result.stderr
    assert_one_line_error(result, "cannot write a SQLite registry", "postgresql://")
    with sqlite3.connect(common[1].removeprefix("sqlite:///")) as db:  # nothing was crawled
        assert db.execute("select count(*) from model").fetchone() == (0,)


def test_a_model_without_a_declared_parent_needs_aligned(family) -> None:
    models, common = family
    result = run_lineage("remediate", str(models / ORG / "aligned"), *common)
    assert result.returncode == 2, result.stderr
    assert_one_line_error(result, "declares 0 parents", "--aligned")


def test_an_out_folder_that_is_taken_is_refused_before_the_sweep(family, tmp_path) -> None:
    models, common = family
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "keep.txt").write_text("mine", encoding="utf-8")
    result = run_lineage("remediate", str(models / ORG / "helpful"), "--out", str(taken), *common)
    assert result.returncode == 2, result.stderr
    assert_one_line_error(result, str(taken), "not empty")
    assert (taken / "keep.txt").read_text(encoding="utf-8") == "mine"
    assert not (tmp_path / "registry.db").exists()


def test_the_recommended_model_is_written_to_out(family, tmp_path) -> None:
    """With an absolute cap of 100% every λ is within the budget; whether one is recommended
    depends on the task scores of random tiny models, and the output follows the document."""
    models, common = family
    out = tmp_path / "published" / "helpful-safe"
    result = run_lineage(
        "remediate",
        str(models / ORG / "helpful"),
        "--lambdas",
        "0.5",
        "--max-asr",
        "1",
        "--out",
        str(out),
        "--json",
        *common,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    if data["recommended"] is None:
        assert data["model_dir"] is None and not out.exists()
    else:
        assert data["model_dir"] == str(out)
        assert (out / "README.md").is_file() and (out / "mergekit_config.yml").is_file()


def test_brief_writes_the_fine_tunes_brief_with_its_remediation_section(family, tmp_path) -> None:
    """--brief audits the fine-tune against its parent on the sweep's suites (cached runs)
    and writes its brief, whose Remediation section shows the sweep just recorded."""
    models, common = family
    brief = tmp_path / "helpful.html"
    result = run_lineage(
        "remediate",
        str(models / ORG / "helpful"),
        "--lambdas",
        "0.5",
        "--max-asr",
        "1",
        "--brief",
        str(brief),
        *common,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert f"wrote {brief}" in " ".join(result.stderr.split())
    html = brief.read_text(encoding="utf-8")
    assert 'id="remediation"' in html and f"{ORG}/helpful" in html
    assert "not evaluated" not in html.lower()  # the audit ran: the verdict was earned
