"""Are two models related? A pooled cosine in Δ-space, judged against a null.

Raw cosine is ≈ 1 for any two fine-tunes of one base and separates nothing, so the
comparison is made on differences from a common reference (an ancestor both descend from):
if the child was made from the parent, the child's Δ contains the parent's Δ. With no
reference known, weights are centred per tensor and compared as they are (independently
initialised models still give ≈ 0).

The null is built from the data: the same pooled cosine after a circular shift of one side
by an offset that breaks the column alignment. Shifted pairs behave as unrelated models
with the same value distributions, so ``z = score / sd(null)`` says how far the match is
from what an independent model would reach. An independent model (same architecture,
own initialisation) scores z ≈ N(0, 1); a parent scores z in the hundreds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

NULL_SHIFTS = 24


@dataclass(frozen=True)
class Relatedness:
    score: float  # pooled cosine
    z: float  # score / null standard deviation
    null_sd: float
    values: int
    space: str  # "delta" (against a reference) or "raw" (centred weights)

    def to_dict(self) -> dict[str, float | int | str]:
        return {
            "score": round(self.score, 6),
            "z": round(self.z, 2),
            "null_sd": self.null_sd,
            "values": self.values,
            "space": self.space,
        }


def relatedness(
    first: Sequence[np.ndarray], second: Sequence[np.ndarray], *, space: str
) -> Relatedness:
    """Pooled cosine of two lists of per-tensor arrays (Δs, or raw weights to centre)."""
    if space == "raw":
        first = [array - array.mean() for array in first]
        second = [array - array.mean() for array in second]
    dot = 0.0
    norm_a = norm_b = 0.0
    null = np.zeros(NULL_SHIFTS)
    values = 0
    for a, b in zip(first, second, strict=True):
        flat_a, flat_b = a.ravel(), b.ravel()
        dot += float(flat_a @ flat_b)
        norm_a += float(flat_a @ flat_a)
        norm_b += float(flat_b @ flat_b)
        values += flat_a.size
        for index, shift in enumerate(_shifts(flat_a.size, a.shape[-1] if a.ndim else 1)):
            null[index] += float(flat_a @ np.roll(flat_b, shift))
    denominator = math.sqrt(norm_a * norm_b)
    if denominator == 0.0 or values == 0:
        return Relatedness(0.0, 0.0, 1.0, values, space)
    score = dot / denominator
    null_sd = max(float(np.sqrt(np.mean((null / denominator) ** 2))), 1.0 / math.sqrt(values))
    return Relatedness(score, score / null_sd, null_sd, values, space)


def _shifts(size: int, cols: int) -> list[int]:
    """NULL_SHIFTS offsets spread over the vector, none a multiple of the row length."""
    if size < 2:
        return [0] * NULL_SHIFTS
    shifts = []
    for index in range(NULL_SHIFTS):
        shift = 1 + (index * size) // NULL_SHIFTS + index
        shift %= size
        if cols > 1 and shift % cols == 0:
            shift = (shift + 1) % size
        shifts.append(shift or 1)
    return shifts
