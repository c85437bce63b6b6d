"""Read a fingerprint from safetensors files by byte ranges: headers, then sampled rows.

Works on anything that hands out a ``ByteRangeReader`` per file name: the Hub (HTTP Range
through the huggingface_hub session and auth), a local folder (seek), a buffer. Every
header is bound-checked before it is read; the rows are read concurrently, neighbouring
ranges coalesced; a short read, or a NaN or Inf among the sampled values, is an error and
no fingerprint comes back.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from lineage.errors import FingerprintUnavailableError, MalformedFileError
from lineage.fingerprint.record import Fingerprint, TensorSample, architecture_signature
from lineage.fingerprint.selection import FLOAT_DTYPES, METHOD_VERSION, TensorSlice, select
from lineage.records import TensorInfo
from lineage.safetensors_header import DTYPE_BITS, ByteRangeReader, read_safetensors_layout

MAX_GAP_BYTES = 64 * 1024  # a gap this small costs less than one more HTTP round trip
GAP_ALLOWANCE = 0.25  # coalescing may add at most this fraction of the planned bytes
READ_WORKERS = 8


class CountingReader:
    """Counts the bytes and requests that go through a reader (thread-safe)."""

    def __init__(self, inner: ByteRangeReader):
        self.inner = inner
        self.bytes = 0
        self.requests = 0
        self._lock = threading.Lock()

    @property
    def size(self) -> int | None:
        return self.inner.size

    def read(self, start: int, length: int) -> bytes:
        data = self.inner.read(start, length)
        with self._lock:
            self.bytes += len(data)
            self.requests += 1
        return data


@dataclass(frozen=True)
class _Range:
    file: str
    start: int
    length: int
    slices: tuple[tuple[TensorSlice, int], ...]  # (slice, its offset inside this range)


def is_weight_file(name: str) -> bool:
    """A full-model safetensors file; a PEFT adapter's weights are not the model's."""
    base = name.rsplit("/", 1)[-1]
    return base.endswith(".safetensors") and not base.startswith("adapter_model")


def fingerprint_checkpoint(
    open_reader: Callable[[str], ByteRangeReader],
    weight_files: Sequence[str],
    *,
    repo_id: str | None = None,
    workers: int = READ_WORKERS,
) -> Fingerprint:
    """Fingerprint the checkpoint stored in ``weight_files`` (one file, or every shard)."""
    files = [name for name in weight_files if is_weight_file(name)]
    if not files:
        raise FingerprintUnavailableError("no safetensors weights to fingerprint", repo_id=repo_id)
    readers = {name: CountingReader(open_reader(name)) for name in files}

    tensors: dict[str, TensorInfo] = {}
    data_start: dict[str, int] = {}
    for name in files:
        file_tensors, _, start = read_safetensors_layout(
            readers[name], filename=name, repo_id=repo_id
        )
        for tensor, info in file_tensors.items():
            if tensor in tensors:
                raise MalformedFileError(
                    f"tensor {tensor!r} is stored in both {tensors[tensor].file} and {name}",
                    repo_id=repo_id,
                    file=name,
                )
            tensors[tensor] = info
        data_start[name] = start

    selection = select(tensors)
    if not selection.slices:
        dtypes = sorted({info.dtype for info in tensors.values()})
        raise FingerprintUnavailableError(
            f"no F32/F16/BF16 tensors to fingerprint (dtypes: {', '.join(dtypes) or 'none'})",
            repo_id=repo_id,
        )
    ranges = _coalesce(selection.slices, data_start)
    payloads = _read_all(ranges, readers, repo_id=repo_id, workers=workers)

    samples: dict[str, TensorSample] = {}
    for item, payload in zip(ranges, payloads, strict=True):
        for piece, offset in item.slices:
            _, length = piece.byte_range(0)
            samples[piece.name] = _decode(piece, payload[offset : offset + length], repo_id)
    return Fingerprint(
        method=METHOD_VERSION,
        signature=architecture_signature({name: info.shape for name, info in tensors.items()}),
        tensors=samples,
        weight_bytes=sum(info.numel * DTYPE_BITS[info.dtype] // 8 for info in tensors.values()),
        bytes_read=sum(reader.bytes for reader in readers.values()),
        requests=sum(reader.requests for reader in readers.values()),
        skipped=selection.skipped,
    )


def _coalesce(slices: list[TensorSlice], data_start: dict[str, int]) -> list[_Range]:
    """One range per slice, then merge neighbours across the smallest gaps first."""
    by_file: dict[str, list[tuple[int, int, TensorSlice]]] = {}
    for piece in slices:
        start, length = piece.byte_range(data_start[piece.info.file])
        by_file.setdefault(piece.info.file, []).append((start, length, piece))
    planned = sum(length for spans in by_file.values() for _, length, _ in spans)
    allowance = GAP_ALLOWANCE * planned

    ranges: list[_Range] = []
    for file in sorted(by_file):
        spans = sorted(by_file[file], key=lambda span: span[0])
        gaps = sorted(
            (spans[i + 1][0] - (spans[i][0] + spans[i][1]), i) for i in range(len(spans) - 1)
        )
        joined: set[int] = set()  # i in joined: span i and span i + 1 are read together
        for gap, i in gaps:
            if gap > MAX_GAP_BYTES or gap > allowance:
                break
            allowance -= gap
            joined.add(i)
        group: list[tuple[int, int, TensorSlice]] = []
        for i, span in enumerate(spans):
            group.append(span)
            if i not in joined:
                ranges.append(_as_range(file, group))
                group = []
    return ranges


def _as_range(file: str, group: list[tuple[int, int, TensorSlice]]) -> _Range:
    first = group[0][0]
    end = max(start + length for start, length, _ in group)
    return _Range(
        file, first, end - first, tuple((piece, start - first) for start, _, piece in group)
    )


def _read_all(
    ranges: list[_Range], readers: dict[str, CountingReader], *, repo_id: str | None, workers: int
) -> list[bytes]:
    def read(item: _Range) -> bytes:
        data = readers[item.file].read(item.start, item.length)
        if len(data) != item.length:
            raise MalformedFileError(
                f"truncated: tensor data needs bytes {item.start}-{item.start + item.length - 1}"
                f" but the file ends after {item.start + len(data)} bytes",
                repo_id=repo_id,
                file=item.file,
            )
        return data

    if workers <= 1 or len(ranges) <= 1:
        return [read(item) for item in ranges]
    with ThreadPoolExecutor(max_workers=min(workers, len(ranges))) as pool:
        return list(pool.map(read, ranges))


def _decode(piece: TensorSlice, raw: bytes, repo_id: str | None) -> TensorSample:
    dtype = piece.info.dtype
    if dtype == "F32":
        values = np.frombuffer(raw, dtype="<f4").astype(np.float32)
    elif dtype == "F16":
        values = np.frombuffer(raw, dtype="<f2").astype(np.float32)
    elif dtype == "BF16":
        values = (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
    else:  # the selection only keeps FLOAT_DTYPES
        raise AssertionError(f"{dtype} not in {sorted(FLOAT_DTYPES)}")
    values = values.reshape(piece.rows, piece.cols)
    if not np.isfinite(values).all():
        bad = int((~np.isfinite(values)).sum())
        raise MalformedFileError(
            f"tensor {piece.name} holds {bad} NaN or Inf value(s) in rows "
            f"{piece.row_start}-{piece.row_start + piece.rows - 1}",
            repo_id=repo_id,
            file=piece.info.file,
        )
    return TensorSample(
        name=piece.name,
        dtype=dtype,
        shape=piece.info.shape,
        kind=piece.kind,
        row_start=piece.row_start,
        values=values,
    )
