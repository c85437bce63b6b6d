"""`lineage verify` on the weight zoo: every verdict asserted against what the weights are.

The registry is filled by a real crawl with fingerprints (local tree, and once through the
loopback Hub with the server's own byte count). Cards lie in the zoo on purpose: the
assertions use ``WeightZoo.truth``, never the card.
"""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from sqlmodel import col, select

from lineage.crawler import CrawlOptions, crawl
from lineage.sources.hub import HubSource
from lineage.sources.local import LocalSource
from lineage.verify import NotVerifiableError, VerifyReport, verify
from registry import queries
from registry.database import Registry
from registry.findings import findings_for
from registry.tables import Edge, Fingerprint
from testkit.hub_server import FakeHub
from tests.support.weight_zoo import WeightZoo


@pytest.fixture(scope="module")
def family(weight_zoo: WeightZoo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """The whole weight zoo crawled from its root with descendants, fingerprinted."""
    path = tmp_path_factory.mktemp("verify") / "registry.db"
    registry = Registry.open(f"sqlite:///{path}")
    source = LocalSource(weight_zoo.root)
    roots = [weight_zoo.repo_id(role) for role in weight_zoo.roles]
    report = crawl(registry, source, roots, CrawlOptions(descendants=True))
    assert report.ok, report.problems
    yield registry
    registry.close()


def _verify(family: Registry, zoo: WeightZoo, role: str) -> VerifyReport:
    return verify(family, zoo.repo_id(role))


def _statuses(report: VerifyReport) -> dict[str, str]:
    return {verdict.parent: verdict.status for verdict in report.declared}


def test_every_node_was_fingerprinted_but_the_adapter(family: Registry, weight_zoo: WeightZoo):
    with family.session(write=False) as session:
        count = len(session.exec(select(Fingerprint.id)).all())
    assert count == len(weight_zoo.roles) - 1  # lora_adapter holds no full weights


@pytest.mark.parametrize(
    "role", ["ft_a", "ft_b", "ft_c", "ft_a_child", "lora_merged", "base_bf16", "ft_a_fp16"]
)
def test_true_single_parents_are_confirmed(family, weight_zoo, role) -> None:
    report = _verify(family, weight_zoo, role)
    truth = weight_zoo.truth[role]
    assert _statuses(report) == {parent: "confirmed" for parent in truth.parents}
    assert report.inferred == []
    assert all(v.score is not None and v.score > 0.5 for v in report.declared)


def test_casts_are_the_same_weights(family, weight_zoo) -> None:
    for role in ("base_bf16", "ft_a_fp16"):
        (verdict,) = _verify(family, weight_zoo, role).declared
        assert verdict.details["same_weights"] is True
        assert verdict.score == 1.0


@pytest.mark.parametrize("role", ["merge_linear", "merge_recipe_lie", "merge_task_arith"])
def test_linear_and_task_arithmetic_coefficients_are_recovered(family, weight_zoo, role):
    report = _verify(family, weight_zoo, role)
    truth = weight_zoo.truth[role]
    assert set(_statuses(report).values()) == {"confirmed"}
    assert report.merge is not None and report.merge.exact
    assert report.merge.method == truth.method
    for parent, weight in truth.coefficients.items():
        assert report.merge.coefficients[parent] == pytest.approx(weight, abs=0.02)
    assert report.merge.residual < 1e-3


def test_slerp_t_is_recovered(family, weight_zoo) -> None:
    report = _verify(family, weight_zoo, "merge_slerp")
    assert report.merge is not None and report.merge.method == "slerp"
    assert report.merge.t == pytest.approx(weight_zoo.truth["merge_slerp"].t, abs=0.02)
    assert report.merge.residual < 1e-3
    assert not [f for f in report.findings if f.kind == "recipe_mismatch"]


@pytest.mark.parametrize("role", ["merge_ties", "merge_dare"])
def test_ties_and_dare_density_and_weight_are_estimated(family, weight_zoo, role) -> None:
    report = _verify(family, weight_zoo, role)
    truth = weight_zoo.truth[role]
    merge = report.merge
    assert merge is not None and merge.method == truth.method
    assert merge.density is not None
    for parent, density in truth.density.items():
        assert merge.density[parent] == pytest.approx(density, abs=0.05)
    total = sum(truth.coefficients.values())
    for parent, weight in truth.coefficients.items():
        expected = weight / total if truth.method == "ties" else weight
        assert merge.coefficients[parent] == pytest.approx(expected, abs=0.05)
    assert not [f for f in report.findings if f.kind == "recipe_mismatch"]


def test_a_recipe_that_lies_is_a_recipe_mismatch(family, weight_zoo) -> None:
    report = _verify(family, weight_zoo, "merge_recipe_lie")
    mismatches = [f for f in report.findings if f.kind == "recipe_mismatch"]
    assert mismatches and "0.8" in " ".join(f.message for f in mismatches)
    honest = _verify(family, weight_zoo, "merge_linear")
    assert not [f for f in honest.findings if f.kind == "recipe_mismatch"]


def test_a_merge_claiming_a_finetune_reveals_its_hidden_parent(family, weight_zoo) -> None:
    report = _verify(family, weight_zoo, "hidden_merge")
    assert _statuses(report) == {"wz/ft-a": "confirmed"}
    assert [(p.parent, p.relation) for p in report.inferred] == [("wz/ft-c", "merge")]
    assert report.inferred[0].confidence > 0.9
    assert report.merge is not None and report.merge.method == "linear"
    assert report.merge.coefficients == pytest.approx({"wz/ft-a": 0.5, "wz/ft-c": 0.5}, abs=0.02)
    assert [f.kind for f in report.findings] == ["undeclared_parent"]


def test_the_wrong_parent_is_contradicted_and_the_real_one_found(family, weight_zoo) -> None:
    report = _verify(family, weight_zoo, "wrong_parent")
    assert _statuses(report) == {"wz/ft-a": "contradicted"}
    assert [(p.parent, p.relation) for p in report.inferred] == [("wz/ft-b", "finetune")]
    kinds = {f.kind for f in report.findings}
    assert kinds == {"lineage_contradiction", "undeclared_parent"}


def test_an_undeclared_parent_is_inferred_with_direction(family, weight_zoo) -> None:
    report = _verify(family, weight_zoo, "orphan_ft")
    assert report.declared == []
    assert [(p.parent, p.relation) for p in report.inferred] == [("wz/ft-c", "finetune")]
    assert "closer than this model to the family root wz/base" in report.inferred[0].reason
    # and the reverse never happens: the parent does not get its child as a parent
    assert _verify(family, weight_zoo, "ft_c").inferred == []


@pytest.mark.parametrize("role", ["independent", "base", "impostor"])
def test_independent_models_never_get_a_parent(family, weight_zoo, role) -> None:
    report = _verify(family, weight_zoo, role)
    assert report.inferred == []
    assert report.merge is None


def test_an_impostor_is_contradicted(family, weight_zoo) -> None:
    report = _verify(family, weight_zoo, "impostor")
    (verdict,) = report.declared
    assert verdict.status == "contradicted"
    assert abs(verdict.details["z"]) < 5
    assert [f.kind for f in report.findings] == ["lineage_contradiction"]


def test_other_architecture_and_adapters_are_unverifiable(family, weight_zoo) -> None:
    other = _verify(family, weight_zoo, "other_arch")
    assert _statuses(other) == {"wz/base": "unverifiable"}
    assert "different architecture" in other.declared[0].reason
    adapter = _verify(family, weight_zoo, "lora_adapter")
    assert _statuses(adapter) == {"wz/base": "unverifiable"}
    assert "q_proj" in adapter.declared[0].reason and "fitting shapes" in adapter.declared[0].reason
    assert {f.kind for f in adapter.findings} == {"unverifiable"}


def test_a_merged_lora_is_reported_with_its_rank(family, weight_zoo) -> None:
    report = _verify(family, weight_zoo, "lora_merged")
    assert report.merged_lora is not None
    assert report.merged_lora.rank == weight_zoo.truth["lora_merged"].lora_rank
    assert report.merged_lora.modules == ["q_proj", "v_proj"]
    for role in ("ft_a", "ft_a_child", "base_bf16"):
        assert _verify(family, weight_zoo, role).merged_lora is None


def test_findings_and_inferred_edges_are_recorded_beside_declared_ones(family, weight_zoo):
    verify(family, "wz/wrong-parent")
    verify(family, "wz/wrong-parent")  # re-running replaces, never duplicates
    with family.session(write=False) as session:
        kinds = sorted(f.kind for f in findings_for(session, "wz/wrong-parent"))
        assert kinds == ["lineage_contradiction", "undeclared_parent"]
        declared = queries.ancestors(session, "wz/wrong-parent", max_depth=1, declared_only=True)
        everything = queries.ancestors(session, "wz/wrong-parent", max_depth=1)
        inferred = session.exec(select(Edge).where(col(Edge.declared).is_(False))).all()
    assert [name for name, _ in declared] == ["wz/ft-a"]  # the declaration stays
    assert {name for name, _ in everything} == {"wz/ft-a", "wz/ft-b"}
    edge = next(e for e in inferred if e.confidence is not None and e.relation == "finetune")
    assert edge.declared is False and 0 < edge.confidence < 1


def test_unknown_repo_is_a_clear_error(family) -> None:
    with pytest.raises(NotVerifiableError, match=r"wz/no-such-model.*lineage crawl"):
        verify(family, "wz/no-such-model")


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lineage", *args], capture_output=True, text=True, check=False
    )


def test_json_contract_from_the_cli(weight_zoo: WeightZoo, tmp_path: Path) -> None:
    where = ["--db", str(tmp_path / "cli.db"), "--local", str(weight_zoo.root)]
    crawled = _cli("crawl", "wz/base", "--descendants", *where)
    assert crawled.returncode == 0, crawled.stderr
    done = _cli("verify", "wz/merge-linear", "--json", *where)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["repo"] == "wz/merge-linear" and len(data["revision"]) == 40
    assert {d["parent"]: d["status"] for d in data["declared"]} == {
        "wz/ft-a": "confirmed",
        "wz/ft-b": "confirmed",
    }
    assert all(set(d) >= {"parent", "status", "score", "reason"} for d in data["declared"])
    assert data["inferred"] == []
    merge = data["merge"]
    assert merge["method"] == "linear"
    assert merge["coefficients"] == pytest.approx({"wz/ft-a": 0.6, "wz/ft-b": 0.4}, abs=0.02)
    assert merge["t"] is None and merge["residual"] < 1e-3
    hidden = json.loads(_cli("verify", "wz/hidden-merge", "--json", *where).stdout)
    assert hidden["inferred"] == [
        {**hidden["inferred"][0], "parent": "wz/ft-c", "relation": "merge"}
    ]
    assert 0.9 < hidden["inferred"][0]["confidence"] <= 1
    assert json.loads(_cli("verify", "wz/independent", "--json", *where).stdout)["merge"] is None
    missing = _cli("verify", "wz/absent", *where)
    assert missing.returncode != 0
    assert "Traceback" not in missing.stderr and "wz/absent" in missing.stderr


def test_fingerprints_through_the_hub_read_a_fraction_counted_by_the_server(
    weight_zoo: WeightZoo, tmp_path: Path, fast_policy
) -> None:
    with FakeHub(page_size=3) as hub:
        hub.add_local_tree(weight_zoo.root)
        source = HubSource(
            endpoint=hub.endpoint,
            token=False,
            cache_dir=tmp_path / "cache",
            policy=fast_policy,
            offline=False,
        )
        with Registry.open(f"sqlite:///{tmp_path / 'hub.db'}") as registry:
            hub.reset_log()
            report = crawl(registry, source, ["wz/merge-linear"], CrawlOptions())
            assert report.ok, report.problems
            weight_bytes = hub.bytes_sent(".safetensors")
            with registry.session(write=False) as session:
                rows = session.exec(select(Fingerprint)).all()
            assert len(rows) == 4  # the merge, ft-a, ft-b, base
            total = sum(row.weight_bytes for row in rows)
            assert weight_bytes < 0.8 * total  # headers + sampled rows, never whole files
            assert sum(row.bytes_read for row in rows) <= weight_bytes
            result = verify(registry, "wz/merge-linear")
            assert result.merge is not None and result.merge.exact


def _broken_copy(weight_zoo: WeightZoo, tmp_path: Path, mutate) -> Path:
    import shutil

    root = tmp_path / "tree"
    target = root / "bad" / "model"
    shutil.copytree(weight_zoo.path("ft_a"), target)
    (target / "README.md").write_text("---\nlicense: mit\n---\n# copy\n")
    mutate(target / "model.safetensors")
    return root


def _nan_in_q_proj(path: Path) -> None:
    data = bytearray(path.read_bytes())
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + length])
    begin = header["model.layers.0.self_attn.q_proj.weight"]["data_offsets"][0]
    data[8 + length + begin : 8 + length + begin + 4] = np.float32(np.nan).tobytes()
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("mutate", [_nan_in_q_proj], ids=["nan"])
def test_broken_weights_are_a_crawl_problem_and_nothing_is_stored(
    weight_zoo: WeightZoo, tmp_path: Path, mutate
) -> None:
    root = _broken_copy(weight_zoo, tmp_path, mutate)
    with Registry.open(f"sqlite:///{tmp_path / 'r.db'}") as registry:
        report = crawl(registry, LocalSource(root), ["bad/model"], CrawlOptions())
        assert not report.ok
        (problem,) = report.problems
        assert "bad/model" in str(problem) and "NaN or Inf" in str(problem)
        with registry.session(write=False) as session:
            assert session.exec(select(Fingerprint)).all() == []
            assert queries.get_model(session, "bad/model") is not None  # its card still counts


# -- a local parent's Hub candidate, confirmed or contradicted by the weights -----------------


@pytest.mark.parametrize(
    ("candidate_role", "status"), [("base", "confirmed"), ("independent", "contradicted")]
)
def test_local_parent_candidate_is_checked_against_the_weights(
    weight_zoo: WeightZoo, tmp_path: Path, candidate_role: str, status: str
):
    """ft_a's weights under a card that names its parent by a Hub-cache snapshot folder."""
    tree = tmp_path / "tree"
    for role in ("base", "independent"):
        shutil.copytree(weight_zoo.path(role), tree / weight_zoo.repo_id(role))
    child = tree / "me" / "ft-a-copy"
    shutil.copytree(weight_zoo.path("ft_a"), child)
    org, name = weight_zoo.repo_id(candidate_role).split("/")
    folder = f"/root/.cache/huggingface/hub/models--{org}--{name}/snapshots/{'0' * 40}"
    (child / "README.md").write_text(f"---\nbase_model: {folder}\n---\n# A fine-tune\n")

    registry = Registry.open(f"sqlite:///{tmp_path / 'registry.db'}")
    roots = ["me/ft-a-copy", weight_zoo.repo_id("base"), weight_zoo.repo_id("independent")]
    assert crawl(registry, LocalSource(tree), roots, CrawlOptions()).ok
    report = verify(registry, "me/ft-a-copy")
    (verdict,) = report.declared
    assert verdict.parent == folder
    assert verdict.status == status
    assert f"it is {weight_zoo.repo_id(candidate_role)}" in verdict.reason
    assert verdict.to_dict()["candidate"] == weight_zoo.repo_id(candidate_role)
