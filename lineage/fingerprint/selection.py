"""Which bytes of a checkpoint make its fingerprint: a deterministic, versioned selection.

The selection depends only on tensor names and shapes (never on dtype or values), so two
checkpoints of one architecture sample the same rows, and a bf16 copy of a float32 model
samples exactly what the original does. Rows are taken from the *start* of each matrix: a
row slice of a row-major tensor is one contiguous byte range, rows [0, r) of two models with
different budgets share a prefix, and a 1-D vector that precedes a matrix in the file
coalesces with that matrix's first rows into one request.

What is taken (``METHOD_VERSION`` names this exact recipe; change it and bump the version):
- every 1-D tensor (norm weights, biases) whole, up to ``MAX_VECTOR_VALUES``;
- a block of ``EMBEDDING_ROWS`` rows of each embedding / output head, at row
  ``min(EMBEDDING_START, vocab // 4)``;
- rows [0, r) of every other matrix (attention and MLP projections of every layer), with
  one ``r`` for the whole checkpoint, as large as the element budget allows (1 to
  ``MAX_PROJECTION_ROWS``);
- a matrix whose rows are wider than ``MAX_ROW_VALUES`` (fused expert tensors flattened to
  2-D, or a hostile header declaring one enormous row) gives a single row of it instead, cut
  to its first ``MAX_ROW_VALUES`` values: still one contiguous range, and the bytes read per
  tensor are bounded whatever the shapes (at most ``MAX_PROJECTION_ROWS * MAX_ROW_VALUES``
  values).

The element budget is ``BASE_BUDGET_VALUES + BUDGET_FRACTION * total``: a 7B-class model
reads about 0.03 % of its weight bytes, a 20 MB model about 1.5 %, a tiny test model most
of itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from lineage.records import TensorInfo

# rows-v2: rows wider than MAX_ROW_VALUES are cut (rows-v1 read them whole, however wide).
METHOD_VERSION = "rows-v2"
FLOAT_DTYPES: dict[str, int] = {"F32": 4, "F16": 2, "BF16": 2}  # dtype -> bytes per value
BASE_BUDGET_VALUES = 64 * 1024
BUDGET_FRACTION = 0.0003
MAX_VECTOR_VALUES = 16 * 1024
EMBEDDING_ROWS = 16
EMBEDDING_START = 1000
MAX_PROJECTION_ROWS = 32
MAX_ROW_VALUES = 64 * 1024  # wider than any dense projection (405B-class MLPs: 53,248)
_EMBEDDING_MARKERS = ("embed", "wte", "wpe", "lm_head", "word_embeddings", "output.weight")


@dataclass(frozen=True)
class TensorSlice:
    """Rows [row_start, row_start + rows) of one tensor, flattened to 2-D, and of each row
    its first ``cols`` values: every value of a row (``cols == row_width``), or, for one
    row too wide to read whole, a prefix of it (``rows == 1``). Either way one byte range."""

    name: str
    info: TensorInfo
    kind: str  # vector | embedding | projection
    row_start: int
    rows: int
    cols: int
    row_width: int = 0  # values in a full row of the tensor; 0: ``cols``

    def __post_init__(self) -> None:
        if self.row_width == 0:
            object.__setattr__(self, "row_width", self.cols)
        if self.rows > 1 and self.cols != self.row_width:
            raise ValueError(f"{self.name}: a cut row must be read alone to stay contiguous")

    @property
    def values(self) -> int:
        return self.rows * self.cols

    def byte_range(self, data_start: int) -> tuple[int, int]:
        """(first byte, length) of the slice in its file."""
        width = FLOAT_DTYPES[self.info.dtype]
        first = data_start + self.info.data_offsets[0] + self.row_start * self.row_width * width
        return first, self.rows * self.cols * width


@dataclass(frozen=True)
class Selection:
    slices: list[TensorSlice]
    skipped: list[str]  # tensors of a dtype a fingerprint does not read (int8, fp8, packed)
    total_values: int  # every value of every tensor: the denominator of the budget
    projection_rows: int

    @property
    def selected_values(self) -> int:
        return sum(item.values for item in self.slices)


def tensor_kind(name: str, info: TensorInfo) -> str:
    if len(info.shape) <= 1:
        return "vector"
    lowered = name.lower()
    if any(marker in lowered for marker in _EMBEDDING_MARKERS):
        return "embedding"
    return "projection"


def budget_values(total_values: int) -> int:
    return min(total_values, BASE_BUDGET_VALUES + math.ceil(BUDGET_FRACTION * total_values))


def select(tensors: dict[str, TensorInfo]) -> Selection:
    """The slices of ``tensors`` a fingerprint reads, sorted by name."""
    total = sum(info.numel for info in tensors.values())
    readable = {
        name: info
        for name, info in tensors.items()
        if info.dtype in FLOAT_DTYPES and info.numel > 0
    }
    skipped = sorted(set(tensors) - set(readable))

    fixed: list[TensorSlice] = []
    projections: list[tuple[str, TensorInfo, int, int]] = []
    for name in sorted(readable):
        info = readable[name]
        kind = tensor_kind(name, info)
        rows, cols = _as_matrix(info.shape)
        if kind == "vector":
            count = min(info.numel, MAX_VECTOR_VALUES)
            fixed.append(TensorSlice(name, info, kind, 0, 1, count))
        elif kind == "embedding":
            start = min(EMBEDDING_START, rows // 4)
            if cols > MAX_ROW_VALUES:
                fixed.append(TensorSlice(name, info, kind, start, 1, MAX_ROW_VALUES, cols))
            else:
                count = min(EMBEDDING_ROWS, rows - start)
                fixed.append(TensorSlice(name, info, kind, start, count, cols))
        else:
            projections.append((name, info, rows, cols))

    left = budget_values(total) - sum(item.values for item in fixed)
    per_row = sum(min(cols, MAX_ROW_VALUES) for _, _, _, cols in projections)
    rows_each = max(1, min(MAX_PROJECTION_ROWS, left // per_row if per_row else 1))
    sampled = [
        TensorSlice(name, info, "projection", 0, 1, MAX_ROW_VALUES, cols)
        if cols > MAX_ROW_VALUES
        else TensorSlice(name, info, "projection", 0, min(rows_each, rows), cols)
        for name, info, rows, cols in projections
    ]
    ordered = sorted(fixed + sampled, key=lambda item: item.name)
    return Selection(ordered, skipped, total, rows_each)


def _as_matrix(shape: tuple[int, ...]) -> tuple[int, int]:
    if len(shape) <= 1:
        return 1, (shape[0] if shape else 1)
    return shape[0], math.prod(shape[1:])
