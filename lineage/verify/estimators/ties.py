"""TIES and DARE-TIES: trimmed (or randomly dropped) task vectors with a sign election.

mergekit (0.1.5, ``merge_methods/generalized_task_arithmetic.py``):
- ties: Δᵢ = top-k by magnitude of Pᵢ − B (k = density·numel), signs elected by the sum of
  wᵢ·Δᵢ, C = B + Σ_{i agrees} wᵢΔᵢ / Σ_{i agrees} wᵢ.
- dare_ties: Δᵢ = Bernoulli(density) mask of Pᵢ − B, rescaled to keep its L1 norm
  (≈ 1/density), same sign election, no normalisation: C = B + Σ_{i agrees} wᵢ·ρᵢ·Δᵢ.
The zero pattern of C − B gives the densities and the entries a single parent explains give
the weights (see ``estimate_sparse``). The fit is an estimate, not an exact reconstruction.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from lineage.documents.verify import DeclaredMerge, MergeEstimate
from lineage.verify.aligned import AlignedTensor
from lineage.verify.estimators.base import (
    MergeProblem,
    density_problems,
    method_problem,
    register_estimator,
    weight_problems,
)
from lineage.verify.estimators.linear import fit_linear

SPARSE_ZERO_FRACTION = 0.02  # share of unchanged entries above which C − B looks trimmed
RATIO_TOLERANCE = 1e-4


class TiesEstimator:
    methods = ("ties", "dare_ties")
    base_is_endpoint = False
    approximate = True

    def tries(self, problem: MergeProblem) -> bool:
        if problem.base is None:
            return False
        trimmed = problem.declares(self) or (
            sparse_fraction(problem.tensors, base=problem.base) > SPARSE_ZERO_FRACTION
        )
        return trimmed

    def fit(self, problem: MergeProblem) -> MergeEstimate:
        assert problem.base is not None
        return estimate_sparse(problem.tensors, problem.parents, base=problem.base)

    def recipe_problems(self, recipe: DeclaredMerge, fit: MergeEstimate) -> list[str]:
        mismatch = method_problem(recipe, fit)
        if mismatch:
            return [mismatch]
        normalised = recipe.method == "ties"  # dare_ties does not divide by the weights' sum
        return weight_problems(recipe, fit, normalised=normalised) + density_problems(recipe, fit)


def sparse_fraction(tensors: Sequence[AlignedTensor], *, base: int) -> float:
    """Share of the child's entries left exactly at the base's value (trimmed everywhere)."""
    unchanged = total = 0
    for tensor in tensors:
        child, reference = tensor.values[0], tensor.values[base]
        tolerance = 1e-7 * np.abs(reference) + 1e-12
        unchanged += int((np.abs(child - reference) <= tolerance).sum())
        total += child.size
    return unchanged / total if total else 0.0


def estimate_sparse(
    tensors: Sequence[AlignedTensor], names: Sequence[str], *, base: int
) -> MergeEstimate:
    """Density and weight of each parent of a ties / dare_ties merge (two parents).

    y = C − B, xᵢ = Pᵢ − B. An entry only parent i survived in has y = cᵢ·xᵢ exactly: cᵢ = 1
    for ties (normalised), wᵢ·ρᵢ ≈ wᵢ/dᵢ for dare_ties. Entries both survived in give
    y = b₁x₁ + b₂x₂. Parent i's density is the share of entries where it survives among
    those where the other parent survives and both agree in sign (there survival of i is
    visible and independent of the other's).
    """
    if len(names) != 2:
        return _equal_densities(tensors, names, base=base)
    pure: list[list[np.ndarray]] = [[], []]
    both: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    counts = np.zeros((2, 2))  # [i] -> (survived with the other, other survived), same sign
    residual_sq = scale_sq = 0.0
    for tensor in tensors:
        reference = tensor.values[base]
        y = (tensor.values[0] - reference).ravel()
        x = [(tensor.values[1] - reference).ravel(), (tensor.values[2] - reference).ravel()]
        tolerance = 1e-7 * np.abs(reference.ravel()) + 1e-12
        nonzero = np.abs(y) > tolerance
        coefficient = [_mode_ratio(y[nonzero], x[i][nonzero]) for i in range(2)]
        only = [
            nonzero & (np.abs(y - coefficient[i] * x[i]) <= RATIO_TOLERANCE * np.abs(y) + tolerance)
            for i in range(2)
        ]
        mixed = nonzero & ~only[0] & ~only[1]
        same_sign = np.sign(x[0]) == np.sign(x[1])
        for i in range(2):
            other = 1 - i
            if np.isfinite(coefficient[i]):
                pure[i].append(np.full(int(only[i].sum()), coefficient[i]))
            survives_other = (only[other] | mixed) & same_sign
            counts[i, 0] += int((mixed & same_sign).sum())
            counts[i, 1] += int(survives_other.sum())
        if mixed.any():
            both.append((y[mixed], x[0][mixed], x[1][mixed]))
        fitted = np.where(only[0], coefficient[0] * x[0], 0.0) + np.where(
            only[1] & ~only[0], coefficient[1] * x[1], 0.0
        )
        residual_sq += float(((y - fitted)[~mixed] ** 2).sum())
        scale_sq += float((y**2).sum())

    density = {
        name: float(counts[i, 0] / counts[i, 1]) if counts[i, 1] else math.nan
        for i, name in enumerate(names)
    }
    single = [float(np.median(np.concatenate(values))) if values else math.nan for values in pure]
    pair, mixed_sq = _pair_fit(both)
    residual_sq += mixed_sq
    residual = math.sqrt(residual_sq / scale_sq) if scale_sq else math.inf
    if all(abs(value - 1.0) < 0.01 for value in single):
        # ties normalises: a lone survivor keeps its value, a pair is averaged by weight.
        method = "ties"
        total = float(pair.sum())
        weights = {name: float(pair[i] / total) for i, name in enumerate(names)}
    else:
        # dare_ties rescales survivors by ≈ 1/density and does not normalise: c = w/d.
        method = "dare_ties"
        weights = {name: float(single[i] * density[name]) for i, name in enumerate(names)}
    return MergeEstimate(
        method=method,
        coefficients=weights,
        residual=residual,
        density=density,
        details={"unchanged_fraction": round(sparse_fraction(tensors, base=base), 4)},
    )


def _equal_densities(
    tensors: Sequence[AlignedTensor], names: Sequence[str], *, base: int
) -> MergeEstimate:
    """More than two parents: weights by least squares, one density from the zero pattern."""
    zero = sparse_fraction(tensors, base=base)
    density = 1.0 - zero ** (1.0 / max(len(names), 1))
    fit = fit_linear(tensors, names, base=base)
    return MergeEstimate(
        method="ties",
        coefficients=fit.coefficients,
        residual=fit.residual,
        density={name: density for name in names},
        details={"note": "density from the zero pattern, assuming equal densities"},
    )


def _pair_fit(
    both: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
) -> tuple[np.ndarray, float]:
    """Least squares y = b₁x₁ + b₂x₂ over the entries both parents survived in, and its
    squared residual (NaNs and 0 when there are none)."""
    if not both:
        return np.array([math.nan, math.nan]), 0.0
    y_mixed = np.concatenate([item[0] for item in both])
    design = np.stack(
        [np.concatenate([item[1] for item in both]), np.concatenate([item[2] for item in both])],
        axis=1,
    )
    pair, *_ = np.linalg.lstsq(design, y_mixed, rcond=None)
    return pair, float(((y_mixed - design @ pair) ** 2).sum())


def _mode_ratio(y: np.ndarray, x: np.ndarray) -> float:
    """The most frequent value of y/x (to 4 significant digits): a lone survivor's factor."""
    usable = np.abs(x) > 1e-12
    if not usable.any():
        return math.nan
    ratio = y[usable] / x[usable]
    ratio = ratio[np.isfinite(ratio) & (ratio > 0)]
    if ratio.size == 0:
        return math.nan
    keys = np.round(np.log(ratio) * 1e4).astype(np.int64)
    values, counts = np.unique(keys, return_counts=True)
    best = values[np.argmax(counts)]
    return float(np.median(ratio[keys == best]))


register_estimator(TiesEstimator())
