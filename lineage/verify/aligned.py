"""Line up the sampled rows of several fingerprints: same tensor, same shape, same rows.

Fingerprints of one architecture sample the same rows (``lineage.fingerprint.selection``);
two with different budgets share a prefix of rows. Everything downstream works on the
intersection, in float64.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lineage.fingerprint.record import Fingerprint

MATRIX_KINDS = ("projection", "embedding")


@dataclass(frozen=True)
class AlignedTensor:
    name: str
    kind: str
    row_start: int
    values: tuple[np.ndarray, ...]  # one (rows, cols) float64 array per fingerprint, in order

    @property
    def size(self) -> int:
        return int(self.values[0].size)


def align(fingerprints: Sequence[Fingerprint]) -> list[AlignedTensor]:
    """The tensors every fingerprint sampled, restricted to the rows all of them hold."""
    if not fingerprints:
        return []
    names = set(fingerprints[0].tensors)
    for fingerprint in fingerprints[1:]:
        names &= set(fingerprint.tensors)
    aligned: list[AlignedTensor] = []
    for name in sorted(names):
        samples = [fingerprint.tensors[name] for fingerprint in fingerprints]
        if len({sample.shape for sample in samples}) != 1:
            continue
        if len({sample.values.shape[1] for sample in samples}) != 1:
            continue
        first = max(sample.row_start for sample in samples)
        end = min(sample.row_start + sample.values.shape[0] for sample in samples)
        if end <= first:
            continue
        values = tuple(
            sample.values[first - sample.row_start : end - sample.row_start].astype(np.float64)
            for sample in samples
        )
        aligned.append(AlignedTensor(name, samples[0].kind, first, values))
    return aligned


def matrices(tensors: Sequence[AlignedTensor]) -> list[AlignedTensor]:
    """Only the weight matrices: norm vectors start equal (ones) in independent models."""
    return [tensor for tensor in tensors if tensor.kind in MATRIX_KINDS]


def stacked(tensors: Sequence[AlignedTensor], index: int) -> np.ndarray:
    """Every aligned value of fingerprint ``index`` as one flat vector."""
    if not tensors:
        return np.zeros(0)
    return np.concatenate([tensor.values[index].ravel() for tensor in tensors])
