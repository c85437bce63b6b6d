"""Linear merges and task arithmetic: least squares of the child on its parents.

mergekit (0.1.5, ``merge_methods/``):
- linear (normalize: true):  C = Σ wᵢ·Pᵢ / Σ wᵢ              → least squares on the weights.
- task_arithmetic:            C = B + Σ λᵢ·(Pᵢ − B)             → least squares in Δ from B.
When the λs sum to 1 the two cannot be told apart, and the fit is reported as linear.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from lineage.documents.verify import DeclaredMerge, MergeEstimate
from lineage.verify.aligned import AlignedTensor, stacked
from lineage.verify.estimators.base import (
    MergeProblem,
    method_problem,
    register_estimator,
    weight_problems,
)


class LinearEstimator:
    methods = ("linear", "task_arithmetic")
    base_is_endpoint = False
    approximate = False

    def tries(self, problem: MergeProblem) -> bool:
        return True  # the default fit: every problem gets one

    def fit(self, problem: MergeProblem) -> MergeEstimate:
        return fit_linear(problem.tensors, problem.parents, base=problem.base)

    def recipe_problems(self, recipe: DeclaredMerge, fit: MergeEstimate) -> list[str]:
        mismatch = method_problem(recipe, fit, equivalent=self.methods)
        if mismatch:
            return [mismatch]
        return weight_problems(recipe, fit, normalised=recipe.method == "linear")


def fit_linear(
    tensors: Sequence[AlignedTensor], names: Sequence[str], *, base: int | None
) -> MergeEstimate:
    """Least squares of the child (index 0) on parents 1..n, in Δ from ``base`` if given.

    With a base the coefficients are task-arithmetic λs; when they sum to 1 the merge is
    indistinguishable from (and reported as) a linear merge with those weights.
    """
    parents = range(1, len(names) + 1)
    child = stacked(tensors, 0)
    columns = [stacked(tensors, index) for index in parents]
    if base is not None:
        reference = stacked(tensors, base)
        target = child - reference
        design = np.stack([column - reference for column in columns], axis=1)
    else:
        target = child
        design = np.stack(columns, axis=1)
        # No base: measure the residual against how far apart the parents are (the child
        # may sit exactly at their mean, so its own distance from them is no scale).
        reference = design.mean(axis=1)
    coefficients, *_ = np.linalg.lstsq(design, target, rcond=None)
    if base is None:
        spread = design - reference[:, None]
        scale = spread[:, 0] if spread.shape[1] > 1 else child
        residual = relative_norm(target - design @ coefficients, scale)
    else:
        residual = relative_norm(target - design @ coefficients, child - reference)
    weights = {name: float(value) for name, value in zip(names, coefficients, strict=True)}
    total = sum(weights.values())
    method = "linear" if base is None or abs(total - 1.0) < 0.02 else "task_arithmetic"
    return MergeEstimate(
        method=method, coefficients=weights, residual=residual, details={"sum": round(total, 4)}
    )


def relative_norm(residual: np.ndarray, scale: np.ndarray) -> float:
    """‖residual‖ / ‖scale‖ (infinite when the scale is zero)."""
    denominator = float(np.linalg.norm(scale))
    return float(np.linalg.norm(residual)) / denominator if denominator else math.inf


register_estimator(LinearEstimator())
