"""SLERP: spherical interpolation of two models, row by row.

mergekit (0.1.5, ``merge_methods/slerp.py``), per output row r:
    C_r = s₀·A_r + s₁·B_r,  s₀ = sin((1−t)θ_r)/sin θ_r,  s₁ = sin(tθ_r)/sin θ_r
(plain lerp when the rows are nearly parallel; vectors are lerped element-wise). A is
mergekit's ``base_model``, the t = 0 end: an input, not a reference for differences. The fit
is a 2-coefficient least squares per sampled row, then t from (s₀, s₁) in closed form.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from lineage.documents.verify import DeclaredMerge, MergeEstimate
from lineage.thresholds import COEFFICIENT_TOLERANCE
from lineage.verify.aligned import AlignedTensor
from lineage.verify.estimators.base import MergeProblem, method_problem, register_estimator


class SlerpEstimator:
    methods = ("slerp",)
    base_is_endpoint = True
    approximate = False

    def tries(self, problem: MergeProblem) -> bool:
        # Two inputs; with a base it is slerp only if declared so (or nothing is declared).
        searching_or_declared = problem.method is None or problem.declares(self)
        return len(problem.parents) == 2 and (searching_or_declared or problem.base is None)

    def fit(self, problem: MergeProblem) -> MergeEstimate:
        return fit_slerp(problem.tensors, problem.parents)

    def recipe_problems(self, recipe: DeclaredMerge, fit: MergeEstimate) -> list[str]:
        mismatch = method_problem(recipe, fit)
        if mismatch:
            return [mismatch]
        # Weights do not apply to slerp: its one parameter is t.
        if (
            recipe.t is not None
            and fit.t is not None
            and abs(fit.t - recipe.t) > COEFFICIENT_TOLERANCE
        ):
            return [f"declared t {recipe.t:.3g}, weights say {fit.t:.3g}"]
        return []


def fit_slerp(tensors: Sequence[AlignedTensor], names: Sequence[str]) -> MergeEstimate:
    """Per-row fit C_r = s₀·A_r + s₁·B_r (A = names[0], mergekit's base_model), t per row."""
    ts: list[np.ndarray] = []
    residual_sq = 0.0
    scale_sq = 0.0
    for tensor in tensors:
        child, first, second = tensor.values[0], tensor.values[1], tensor.values[2]
        if child.shape[1] < 3:  # a vector: mergekit lerps each element, t is shared
            delta = (second - first).ravel()
            denominator = float(delta @ delta)
            if denominator == 0.0:
                continue
            t = float((child - first).ravel() @ delta) / denominator
            fit = first + t * (second - first)
            ts.append(np.array([t]))
        else:
            s0, s1 = _row_fits(child, first, second)
            fit = s0[:, None] * first + s1[:, None] * second
            ts.append(slerp_t(s0, s1))
        residual_sq += float(((child - fit) ** 2).sum())
        scale_sq += float(((child - 0.5 * (first + second)) ** 2).sum())
    if not ts:
        return MergeEstimate(method="slerp", coefficients={}, residual=math.inf)
    all_t = np.concatenate(ts)
    all_t = all_t[np.isfinite(all_t)]
    t = float(np.median(all_t)) if all_t.size else math.nan
    residual = math.sqrt(residual_sq / scale_sq) if scale_sq else math.inf
    spread = float(np.percentile(all_t, 95) - np.percentile(all_t, 5)) if all_t.size else 0.0
    return MergeEstimate(
        method="slerp",
        coefficients={names[0]: 1.0 - t, names[1]: t},
        residual=residual,
        t=t,
        details={"t_spread": round(spread, 4)},
    )


def _row_fits(child: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares (s₀, s₁) for every row at once, by the 2×2 normal equations."""
    aa, bb, ab = (a * a).sum(1), (b * b).sum(1), (a * b).sum(1)
    ca, cb = (child * a).sum(1), (child * b).sum(1)
    det = aa * bb - ab * ab
    safe = np.where(np.abs(det) > 1e-30, det, 1.0)
    s0 = np.where(np.abs(det) > 1e-30, (ca * bb - cb * ab) / safe, 0.5)
    s1 = np.where(np.abs(det) > 1e-30, (cb * aa - ca * ab) / safe, 0.5)
    return s0, s1


def slerp_t(s0: np.ndarray, s1: np.ndarray) -> np.ndarray:
    """t from slerp's two coefficients, in closed form.

    With h = θ/2 and u = (2t − 1)·h: s₀ + s₁ = cos u / cos h and s₁ − s₀ = sin u / sin h, so
    cos² h = (1 − (s₁ − s₀)²) / (4 s₀ s₁). When that is ≥ 1 the rows were lerped: t = s₁/(s₀+s₁).
    """
    s0, s1 = np.asarray(s0, dtype=np.float64), np.asarray(s1, dtype=np.float64)
    total = s0 + s1
    with np.errstate(divide="ignore", invalid="ignore"):
        cos2 = (1.0 - (s1 - s0) ** 2) / (4.0 * s0 * s1)
        lerp_t = s1 / total
        h = np.arccos(np.sqrt(np.clip(cos2, 0.0, 1.0)))
        u = np.arctan2((s1 - s0) * np.sin(h), total * np.cos(h))
        slerp_value = (u / np.where(h > 0, h, 1.0) + 1.0) / 2.0
    return np.where((cos2 >= 1.0) | (h < 1e-4) | ~np.isfinite(slerp_value), lerp_t, slerp_value)


register_estimator(SlerpEstimator())
