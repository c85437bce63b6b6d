"""Recover a merge's recipe from weights: which method, which coefficients, how well.

mergekit's merges are exact functions of their inputs (mergekit 0.1.5, ``merge_methods/``):
- linear (normalize: true):  C = Σ wᵢ·Pᵢ / Σ wᵢ                       → least squares.
- task_arithmetic:            C = B + Σ λᵢ·(Pᵢ − B)                      → least squares in Δ.
- slerp, per output row r:    C_r = s₀·A_r + s₁·B_r, s₀ = sin((1−t)θ_r)/sin θ_r,
  s₁ = sin(tθ_r)/sin θ_r (plain lerp when the rows are nearly parallel) → a 2-coefficient
  fit per sampled row, then t from (s₀, s₁) in closed form.
- ties: Δᵢ = top-k by magnitude of Pᵢ − B (k = density·numel), signs elected by the sum of
  wᵢ·Δᵢ, C = B + Σ_{i agrees} wᵢΔᵢ / Σ_{i agrees} wᵢ.
- dare_ties: Δᵢ = Bernoulli(density) mask of Pᵢ − B, rescaled to keep its L1 norm (≈ 1/density),
  same sign election, no normalisation: C = B + Σ_{i agrees} wᵢ·ρᵢ·Δᵢ.
For the sparse methods the zero pattern of C − B gives the densities and the entries a
single parent explains give the weights (see ``estimate_sparse``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from lineage.verify.aligned import AlignedTensor, stacked

EXACT_RESIDUAL = 0.01  # relative residual below this (above dtype rounding): an exact merge
SPARSE_ZERO_FRACTION = 0.02  # share of unchanged entries above which C − B looks trimmed
RATIO_TOLERANCE = 1e-4


@dataclass
class MergeEstimate:
    method: str
    coefficients: dict[str, float]
    residual: float  # ‖C − fit‖ / ‖C − reference‖
    t: float | None = None
    density: dict[str, float] | None = None
    details: dict[str, object] = field(default_factory=dict)

    @property
    def exact(self) -> bool:
        return self.residual < EXACT_RESIDUAL

    def to_dict(self) -> dict[str, object]:
        return {
            "method": self.method,
            "coefficients": {name: round(value, 4) for name, value in self.coefficients.items()},
            "t": None if self.t is None else round(self.t, 4),
            "residual": float(f"{self.residual:.3g}"),
            "density": None
            if self.density is None
            else {name: round(value, 3) for name, value in self.density.items()},
            **self.details,
        }


# -- linear and task arithmetic -----------------------------------------------------------


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
        residual = _relative(target - design @ coefficients, scale)
    else:
        residual = _relative(target - design @ coefficients, child - reference)
    weights = {name: float(value) for name, value in zip(names, coefficients, strict=True)}
    total = sum(weights.values())
    method = "linear" if base is None or abs(total - 1.0) < 0.02 else "task_arithmetic"
    return MergeEstimate(method, weights, residual, details={"sum": round(total, 4)})


# -- slerp --------------------------------------------------------------------------------


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
        return MergeEstimate("slerp", {}, math.inf)
    all_t = np.concatenate(ts)
    all_t = all_t[np.isfinite(all_t)]
    t = float(np.median(all_t)) if all_t.size else math.nan
    residual = math.sqrt(residual_sq / scale_sq) if scale_sq else math.inf
    spread = float(np.percentile(all_t, 95) - np.percentile(all_t, 5)) if all_t.size else 0.0
    return MergeEstimate(
        "slerp",
        {names[0]: 1.0 - t, names[1]: t},
        residual,
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


# -- ties and dare ------------------------------------------------------------------------


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
        zero = sparse_fraction(tensors, base=base)
        density = 1.0 - zero ** (1.0 / max(len(names), 1))
        fit = fit_linear(tensors, names, base=base)
        return MergeEstimate(
            "ties",
            fit.coefficients,
            fit.residual,
            density={name: density for name in names},
            details={"note": "density from the zero pattern, assuming equal densities"},
        )
    pure = [[], []]
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
    if both:
        y_mixed = np.concatenate([item[0] for item in both])
        design = np.stack(
            [
                np.concatenate([item[1] for item in both]),
                np.concatenate([item[2] for item in both]),
            ],
            axis=1,
        )
        pair, *_ = np.linalg.lstsq(design, y_mixed, rcond=None)
        residual_sq += float(((y_mixed - design @ pair) ** 2).sum())
    else:
        pair = np.array([math.nan, math.nan])
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
        method,
        weights,
        residual,
        density=density,
        details={"unchanged_fraction": round(sparse_fraction(tensors, base=base), 4)},
    )


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


def _relative(residual: np.ndarray, scale: np.ndarray) -> float:
    denominator = float(np.linalg.norm(scale))
    return float(np.linalg.norm(residual)) / denominator if denominator else math.inf
