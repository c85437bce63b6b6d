"""Merge estimators as plug-ins: the registry, an unknown method, a family added in a test.

The weight zoo's ties merge is copied with its card rewritten to declare ``della``, a method
no built-in estimator knows: verify falls back to the default fit and reports the mismatch,
and once a ``della`` estimator is registered the verifier fits and checks with it.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from lineage.crawler import CrawlOptions, crawl
from lineage.documents.verify import DeclaredMerge, MergeEstimate
from lineage.plugins import PluginRegistry, UnknownPluginError
from lineage.sources.local import LocalSource
from lineage.verify import verify
from lineage.verify.estimators import MERGE_ESTIMATORS, MergeProblem, base, estimator_for
from lineage.verify.estimators.base import density_problems, method_problem, weight_problems
from lineage.verify.estimators.ties import estimate_sparse
from registry.database import Registry
from tests.support.weight_zoo import WeightZoo

COPIED = ("base", "ft_a", "ft_b", "merge_ties")


def test_builtin_families_are_listed_with_their_methods_as_aliases() -> None:
    assert MERGE_ESTIMATORS.names()[:3] == ("linear", "slerp", "ties")
    assert MERGE_ESTIMATORS.get("task_arithmetic") is MERGE_ESTIMATORS.get("linear")
    assert MERGE_ESTIMATORS.get("dare_ties") is MERGE_ESTIMATORS.get("ties")
    for name, estimator in MERGE_ESTIMATORS.items():
        assert estimator.methods[0] == name
    assert MERGE_ESTIMATORS.get("slerp").base_is_endpoint
    assert MERGE_ESTIMATORS.get("ties").approximate
    assert not MERGE_ESTIMATORS.get("linear").approximate


def test_an_unknown_method_is_a_plugin_error_that_lists_the_known_ones() -> None:
    with pytest.raises(UnknownPluginError) as caught:
        MERGE_ESTIMATORS.get("della")
    assert "unknown merge method 'della'" in str(caught.value)
    assert "linear, slerp, ties" in str(caught.value)
    with pytest.raises(UnknownPluginError, match="did you mean 'slerp'"):
        MERGE_ESTIMATORS.get("slerpp")
    assert estimator_for("della") is None  # verify compares it as the default fit instead
    assert estimator_for(None) is None


def test_recipe_checks_shared_by_the_families() -> None:
    fit = MergeEstimate(
        method="task_arithmetic",
        coefficients={"a": 0.7, "b": 0.5},
        residual=1e-6,
        density={"a": 0.52},
    )
    linear = MergeEstimate(method="linear", coefficients={"a": 0.6, "b": 0.4}, residual=1e-6)
    declared = DeclaredMerge(method="linear", base=None, weights={"a": 0.6, "b": 0.4})
    assert method_problem(declared, linear) is None
    assert method_problem(declared, fit, equivalent=("linear", "task_arithmetic")) is None
    assert "declared merge_method linear, but the weights fit task_arithmetic" in (
        method_problem(declared, fit) or ""
    )
    assert weight_problems(declared, fit, normalised=False) == [
        "declared weight 0.6 for a, weights say 0.7",
        "declared weight 0.4 for b, weights say 0.5",
    ]
    shares = DeclaredMerge(method="linear", base=None, weights={"a": 1.2, "b": 0.8})
    assert weight_problems(shares, linear, normalised=True) == []  # compared as 0.6 / 0.4
    assert len(weight_problems(shares, linear, normalised=False)) == 2
    sparse = DeclaredMerge(method="ties", base="c", density={"a": 0.3, "b": 0.5})
    assert density_problems(sparse, fit) == ["declared density 0.3 for a, weights say 0.52"]


@pytest.fixture(scope="module")
def della_family(
    weight_zoo: WeightZoo, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Registry, str]]:
    """The ties merge and its inputs, the merge's card and config now declaring della."""
    root = tmp_path_factory.mktemp("della-zoo")
    for role in COPIED:
        repo = weight_zoo.repo_id(role)
        shutil.copytree(weight_zoo.path(role), root / repo)
    merge = weight_zoo.repo_id("merge_ties")
    for path in (root / merge).iterdir():
        if path.suffix in (".yml", ".yaml", ".md"):
            text = path.read_text(encoding="utf-8")
            path.write_text(re.sub(r"merge_method: ties\b", "merge_method: della", text))
    registry = Registry.open(f"sqlite:///{root / 'registry.db'}")
    roots = [weight_zoo.repo_id(role) for role in COPIED]
    report = crawl(registry, LocalSource(root), roots, CrawlOptions(descendants=True))
    assert report.ok, report.problems
    yield registry, merge
    registry.close()


def test_an_undeclared_family_falls_back_to_the_default_fit(della_family) -> None:
    registry, merge = della_family
    report = verify(registry, merge, write=False)
    assert report.declared_merge is not None and report.declared_merge.method == "della"
    assert report.merge is not None and report.merge.method != "della"
    mismatches = [f.message for f in report.findings if f.kind == "recipe_mismatch"]
    assert any("declared merge_method della, but the weights fit" in m for m in mismatches)


class _Della:
    """A stand-in DELLA estimator: the ties estimate under its own method name."""

    methods = ("della",)
    base_is_endpoint = False
    approximate = True

    def __init__(self) -> None:
        self.tried: list[MergeProblem] = []

    def tries(self, problem: MergeProblem) -> bool:
        self.tried.append(problem)
        return problem.base is not None and problem.declares(self)

    def fit(self, problem: MergeProblem) -> MergeEstimate:
        assert problem.base is not None
        estimate = estimate_sparse(problem.tensors, problem.parents, base=problem.base)
        return estimate.model_copy(update={"method": "della"})

    def recipe_problems(self, recipe: DeclaredMerge, fit: MergeEstimate) -> list[str]:
        mismatch = method_problem(recipe, fit)
        if mismatch:
            return [mismatch]
        return weight_problems(recipe, fit, normalised=True) + density_problems(recipe, fit)


def test_an_estimator_registered_later_is_used_by_the_verifier(
    della_family, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry, merge = della_family
    estimators: PluginRegistry = PluginRegistry("merge method")
    for name, estimator in MERGE_ESTIMATORS.items():
        estimators.add(name, estimator, *estimator.methods[1:])
    della = _Della()
    estimators.add("della", della)
    monkeypatch.setattr(base, "MERGE_ESTIMATORS", estimators)

    report = verify(registry, merge, write=False)
    assert della.tried and any(problem.method == "della" for problem in della.tried)
    assert report.merge is not None and report.merge.method == "della"
    assert report.merge.density is not None
    assert set(report.merge.density) == {"wz/ft-a", "wz/ft-b"}
    assert not [f for f in report.findings if f.kind == "recipe_mismatch"]
    assert report.to_dict()["merge"]["method"] == "della"


def test_every_module_of_the_estimators_package_registers_its_family() -> None:
    package = Path(base.__file__).parent
    modules = {path.stem for path in package.glob("*.py")} - {"__init__", "base"}
    registered = {type(e).__module__.rsplit(".", 1)[-1] for _, e in MERGE_ESTIMATORS.items()}
    assert {"linear", "slerp", "ties"} <= modules == registered
