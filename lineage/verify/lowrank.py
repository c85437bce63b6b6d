"""Is a model its parent plus a merged LoRA? The rank of Δ on the sampled rows says.

A LoRA update is ΔW = B·A with r rows in A, so every row of ΔW lies in an r-dimensional
space: the sampled rows of a projection, stacked, have numerical rank r. Training leaves a
full-rank update (a low-rank bulk plus a dense tail), so a fine-tune's Δ has as many
significant singular values as rows sampled. Tensors whose Δ is exactly zero were not
targeted by the LoRA and tell which modules it touched.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lineage.documents.verify import MergedLora
from lineage.verify.aligned import AlignedTensor

RANK_TOLERANCE = 1e-3  # singular values below this fraction of the largest are rounding
ZERO_TOLERANCE = 1e-6  # |Δ| / |W| below this: the tensor was not changed


def numerical_rank(delta: np.ndarray, *, noise: float = 0.0) -> int:
    singular = np.linalg.svd(delta, compute_uv=False)
    if singular.size == 0 or singular[0] == 0.0:
        return 0
    return int((singular > max(RANK_TOLERANCE * singular[0], noise)).sum())


def merged_lora(
    tensors: Sequence[AlignedTensor], *, child: int = 0, parent: int = 1, noise_rel: float = 1e-6
) -> MergedLora | None:
    """A ``MergedLora`` when Δ = child − parent is low-rank on every changed projection.

    ``noise_rel`` is the rounding of the stored dtype relative to |W| (float32 ≈ 1e-7,
    bfloat16 ≈ 4e-3): singular values below that level are not counted.
    """
    ranks: list[int] = []
    modules: set[str] = set()
    for tensor in tensors:
        if tensor.kind != "projection":
            continue
        weight, base = tensor.values[child], tensor.values[parent]
        delta = weight - base
        scale = float(np.linalg.norm(base)) or 1.0
        if float(np.linalg.norm(delta)) <= ZERO_TOLERANCE * scale:
            continue
        rows, cols = delta.shape
        if rows < 2:
            return None  # one sampled row cannot show a rank
        noise = noise_rel * scale / np.sqrt(max(rows, 1))
        rank = numerical_rank(delta, noise=noise)
        if rank >= min(rows, cols) or 2 * rank > rows:
            return None  # as many directions as rows could show: not low-rank
        ranks.append(rank)
        modules.add(tensor.name.rsplit(".", 2)[-2] if tensor.name.count(".") >= 2 else tensor.name)
    if not ranks or max(ranks) == 0:
        return None
    return MergedLora(rank=int(np.median(ranks)), modules=sorted(modules), tensors=len(ranks))
