"""The merge-estimator plug-in point: what an estimator is, the registry, shared checks.

An estimator recovers one family of mergekit merge methods from weights. The verifier asks
every registered estimator whether it ``tries`` a problem, keeps the fits of those that do,
and prefers the fit of the estimator the card's ``merge_method`` names (or the linear one);
an exact fit (relative residual below ``EXACT_RESIDUAL``) of any estimator wins over an
inexact one. The chosen fit's estimator then compares it with the declared recipe.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from lineage.documents.verify import DeclaredMerge, MergeEstimate
from lineage.plugins import PluginRegistry, UnknownPluginError
from lineage.thresholds import COEFFICIENT_TOLERANCE, DENSITY_TOLERANCE
from lineage.verify.aligned import AlignedTensor


@dataclass(frozen=True)
class MergeProblem:
    """A child and its candidate parents, aligned tensor by tensor.

    ``tensors[i].values`` holds the child at 0, the parents at 1..len(parents) and the base
    (if any) at ``base``; ``method`` is the declared merge_method (None while searching).
    """

    tensors: Sequence[AlignedTensor]
    parents: Sequence[str]
    base: int | None
    method: str | None

    def declares(self, estimator: MergeEstimator) -> bool:
        """Whether the declared merge_method is one of ``estimator``'s methods."""
        return self.method in estimator.methods


class MergeEstimator(Protocol):
    """One family of merge methods, recovered from weights.

    ``methods``: the mergekit ``merge_method`` names it recovers; the first is its listed
    name, the others its aliases, and every fit it returns names one of them.
    ``base_is_endpoint``: mergekit's ``base_model`` is one of the merged inputs (slerp's
    t = 0 end), not the reference the others are differences from.
    ``approximate``: its fit estimates a trimmed or random merge, so an inexact fit does not
    show the recipe wrong, and when nothing fits exactly and no method is declared its fit
    describes the child better than an inexact linear one (it tries only when the weights
    show its trace).
    """

    methods: tuple[str, ...]
    base_is_endpoint: bool
    approximate: bool

    def tries(self, problem: MergeProblem) -> bool:
        """Whether this family can explain ``problem`` (it is then fitted)."""
        ...

    def fit(self, problem: MergeProblem) -> MergeEstimate:
        """The best recipe of this family for ``problem``, with its relative residual."""
        ...

    def recipe_problems(self, recipe: DeclaredMerge, fit: MergeEstimate) -> list[str]:
        """Where ``fit`` (one of this family's) contradicts the declared ``recipe``."""
        ...


MERGE_ESTIMATORS: PluginRegistry[MergeEstimator] = PluginRegistry("merge method")
DEFAULT_ESTIMATOR = "linear"  # fitted for every problem; the fallback for undeclared methods


def register_estimator(estimator: MergeEstimator) -> MergeEstimator:
    """Register ``estimator`` under its first method name, with the others as aliases."""
    name, *aliases = estimator.methods
    return MERGE_ESTIMATORS.add(name, estimator, *aliases)


def estimator_for(method: str | None) -> MergeEstimator | None:
    """The estimator of a declared merge_method; None when none is declared or known."""
    if method is None:
        return None
    try:
        return MERGE_ESTIMATORS.get(method)
    except UnknownPluginError:
        return None  # e.g. passthrough, model_stock: compared as the default fit


def best_fit(problem: MergeProblem) -> MergeEstimate:
    """The fit that explains ``problem`` best, of every estimator that tries it.

    The declared method's estimator (else the default) is preferred; an exact fit of any
    estimator beats an inexact one (the lowest residual first, then registration order);
    with nothing exact and nothing declared, an approximate estimator's fit beats the default.
    """
    fits = {
        name: estimator.fit(problem)
        for name, estimator in MERGE_ESTIMATORS.items()
        if estimator.tries(problem)
    }
    declared = estimator_for(problem.method)
    wanted = declared.methods[0] if declared is not None else DEFAULT_ESTIMATOR
    chosen = fits[wanted] if wanted in fits else fits[DEFAULT_ESTIMATOR]
    if chosen.exact:
        return chosen
    exact = [fit for fit in fits.values() if fit.exact]
    if exact:
        return min(exact, key=lambda fit: fit.residual)
    approximate = [fit for name, fit in fits.items() if MERGE_ESTIMATORS.get(name).approximate]
    if approximate and problem.method is None:
        return approximate[0]  # the weights look trimmed: its estimate beats an inexact fit
    return chosen


def estimator_of(fit: MergeEstimate) -> MergeEstimator:
    """The estimator whose fit ``fit`` is (a fit names one of its estimator's methods)."""
    return MERGE_ESTIMATORS.get(fit.method)


# -- checks every family shares ------------------------------------------------------------


def method_problem(
    recipe: DeclaredMerge, fit: MergeEstimate, *, equivalent: Sequence[str] = ()
) -> str | None:
    """The declared method differs from the one the weights fit (``equivalent`` methods are
    indistinguishable from weights: a task arithmetic whose λs sum to 1 is a linear merge)."""
    method = recipe.method
    if not method or method == fit.method or {method, fit.method} <= set(equivalent):
        return None
    return (
        f"declared merge_method {method}, but the weights fit {fit.method}"
        f" (relative residual {fit.residual:.2g})"
    )


def weight_problems(recipe: DeclaredMerge, fit: MergeEstimate, *, normalised: bool) -> list[str]:
    """Declared weights the recovered coefficients contradict (``normalised``: the method
    divides by the weights' sum, so the declared weights are compared as shares)."""
    weights = {name: value for name, value in recipe.weights.items() if value is not None}
    total = sum(weights.values())
    if weights and normalised and total:
        weights = {name: value / total for name, value in weights.items()}
    problems = []
    for parent, value in weights.items():
        found = fit.coefficients.get(parent)
        if found is not None and abs(found - value) > COEFFICIENT_TOLERANCE:
            problems.append(f"declared weight {value:.3g} for {parent}, weights say {found:.3g}")
    return problems


def density_problems(recipe: DeclaredMerge, fit: MergeEstimate) -> list[str]:
    """Declared densities the recovered share of surviving entries contradicts."""
    problems = []
    for parent, value in recipe.density.items():
        found = (fit.density or {}).get(parent)
        if value is not None and found is not None and abs(found - value) > DENSITY_TOLERANCE:
            problems.append(f"declared density {value:.3g} for {parent}, weights say {found:.3g}")
    return problems
