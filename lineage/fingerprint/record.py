"""A fingerprint: the sampled rows of a checkpoint as float32, with where they came from.

Stored in the registry as one compact little-endian float32 blob plus a JSON index (one
entry per tensor: name, dtype, shape, which rows, and statistics of the sampled values).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lineage.errors import MalformedFileError


@dataclass
class TensorSample:
    """Rows [row_start, row_start + values.shape[0]) of one tensor, as float32 (rows, cols)."""

    name: str
    dtype: str  # as stored in the checkpoint (F32, F16, BF16)
    shape: tuple[int, ...]
    kind: str  # vector | embedding | projection
    row_start: int
    values: np.ndarray

    def stats(self) -> dict[str, float]:
        data = self.values.astype(np.float64)
        return {
            "mean": float(data.mean()),
            "std": float(data.std()),
            "absmax": float(np.abs(data).max()),
            "l2": float(np.sqrt((data * data).sum())),
        }

    def index_entry(self) -> dict[str, Any]:
        rows, cols = self.values.shape
        return {
            "name": self.name,
            "dtype": self.dtype,
            "shape": list(self.shape),
            "kind": self.kind,
            "row_start": self.row_start,
            "rows": rows,
            "cols": cols,
            **self.stats(),
        }


@dataclass
class Fingerprint:
    method: str
    signature: str  # architecture signature: names and shapes of every tensor
    tensors: dict[str, TensorSample]
    weight_bytes: int = 0  # bytes of all tensors in the checkpoint
    bytes_read: int = 0  # bytes requested, headers included
    requests: int = 0
    skipped: list[str] = field(default_factory=list)

    @property
    def value_count(self) -> int:
        return sum(sample.values.size for sample in self.tensors.values())

    def index(self) -> list[dict[str, Any]]:
        return [self.tensors[name].index_entry() for name in sorted(self.tensors)]

    def blob(self) -> bytes:
        parts = [self.tensors[name].values.astype("<f4").ravel() for name in sorted(self.tensors)]
        return np.concatenate(parts).tobytes() if parts else b""

    @classmethod
    def from_blob(
        cls,
        *,
        method: str,
        signature: str,
        index: list[dict[str, Any]],
        blob: bytes,
        **counts: Any,
    ) -> Fingerprint:
        values = np.frombuffer(blob, dtype="<f4")
        tensors: dict[str, TensorSample] = {}
        offset = 0
        for entry in index:
            rows, cols = int(entry["rows"]), int(entry["cols"])
            chunk = values[offset : offset + rows * cols]
            if chunk.size != rows * cols:
                raise MalformedFileError(
                    f"stored fingerprint blob is shorter than its index ({entry['name']})"
                )
            tensors[entry["name"]] = TensorSample(
                name=entry["name"],
                dtype=entry["dtype"],
                shape=tuple(entry["shape"]),
                kind=entry["kind"],
                row_start=int(entry["row_start"]),
                values=chunk.reshape(rows, cols).astype(np.float32),
            )
            offset += rows * cols
        return cls(method=method, signature=signature, tensors=tensors, **counts)


def architecture_signature(shapes: dict[str, tuple[int, ...]]) -> str:
    """16 hex digits naming the set of (tensor name, shape): equal for one architecture."""
    digest = hashlib.sha256()
    for name in sorted(shapes):
        digest.update(f"{name}:{','.join(map(str, shapes[name]))}\n".encode())
    return digest.hexdigest()[:16]
