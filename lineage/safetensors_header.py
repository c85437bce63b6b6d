"""Read and validate safetensors headers through byte ranges, never the weight data.

A safetensors file is an 8-byte little-endian header length N, N bytes of JSON
(``{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {str: str}}``), then
the data section, with offsets relative to its start. The length is checked before the
header is read, so a hostile file cannot make this code allocate more than the bound.

>>> import struct, json
>>> header = json.dumps({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}).encode()
>>> reader = BytesRangeReader(struct.pack("<Q", len(header)) + header + bytes(8))
>>> tensors, _ = read_safetensors_header(reader, filename="m.safetensors")
>>> tensors["w"].shape
(2,)
"""

from __future__ import annotations

import json
import os
import struct
from typing import Any, Protocol

from lineage.bounded import MIB, load_json_object, type_name
from lineage.errors import FileTooLargeError, InvalidReferenceError, MalformedFileError
from lineage.records import SafetensorsSummary, TensorInfo
from lineage.references import validate_filename

MAX_HEADER_BYTES = 100 * 1024 * 1024
MAX_INDEX_BYTES = 50 * MIB
# Most headers fit in the first read; a longer one costs exactly one more range request.
SPECULATIVE_READ_BYTES = 64 * 1024

# Bits per element of every dtype safetensors 0.8 knows (F4 and F6 are packed sub-byte types).
DTYPE_BITS: dict[str, int] = {
    "BOOL": 8,
    "F4": 4,
    "F6_E2M3": 6,
    "F6_E3M2": 6,
    "U8": 8,
    "I8": 8,
    "F8_E5M2": 8,
    "F8_E4M3": 8,
    "F8_E8M0": 8,
    "F8_E4M3FNUZ": 8,
    "F8_E5M2FNUZ": 8,
    "I16": 16,
    "U16": 16,
    "F16": 16,
    "BF16": 16,
    "I32": 32,
    "U32": 32,
    "F32": 32,
    "C64": 64,
    "F64": 64,
    "I64": 64,
    "U64": 64,
}


class ByteRangeReader(Protocol):
    """Random access to a file's bytes: a local file, an HTTP Range client, a buffer."""

    size: int | None  # total size when known; an HTTP reader learns it on its first read

    def read(self, start: int, length: int) -> bytes:
        """Up to ``length`` bytes from ``start``; fewer at the end of the file."""
        ...


class FileRangeReader:
    """Byte ranges of a local file."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = os.fspath(path)
        self.size: int | None = os.stat(self.path).st_size

    def read(self, start: int, length: int) -> bytes:
        with open(self.path, "rb") as handle:
            handle.seek(start)
            return handle.read(length)


class BytesRangeReader:
    """Byte ranges of an in-memory buffer, for tests.

    ``size`` overrides the reported size (a hostile server may claim anything);
    ``size_after_first_read`` hides it until the first read, as an HTTP reader does.
    """

    def __init__(
        self, data: bytes, *, size: int | None = None, size_after_first_read: bool = False
    ):
        self.data = data
        self._size = len(data) if size is None else size
        self.size: int | None = None if size_after_first_read else self._size
        self.reads: list[tuple[int, int]] = []

    def read(self, start: int, length: int) -> bytes:
        self.reads.append((start, length))
        self.size = self._size
        return self.data[start : start + length]


def read_safetensors_header(
    reader: ByteRangeReader, *, filename: str, repo_id: str | None = None
) -> tuple[dict[str, TensorInfo], dict[str, str]]:
    """Read, bound-check and validate the header of one safetensors file.

    Returns the tensors (name -> ``TensorInfo``) and the ``__metadata__`` mapping.
    """
    tensors, metadata, _ = read_safetensors_layout(reader, filename=filename, repo_id=repo_id)
    return tensors, metadata


def read_safetensors_layout(
    reader: ByteRangeReader, *, filename: str, repo_id: str | None = None
) -> tuple[dict[str, TensorInfo], dict[str, str], int]:
    """``read_safetensors_header`` plus where the data section starts (8 + header length).

    A tensor's bytes are ``data_start + data_offsets``: what a fingerprint reads by range.
    """

    def malformed(message: str) -> MalformedFileError:
        return MalformedFileError(message, repo_id=repo_id, file=filename)

    first = reader.read(0, SPECULATIVE_READ_BYTES)
    size = reader.size
    if len(first) < 8:
        raise malformed(f"truncated: {len(first)} bytes, shorter than the 8-byte header length")
    (header_length,) = struct.unpack("<Q", first[:8])
    if header_length > MAX_HEADER_BYTES:
        raise FileTooLargeError(
            f"safetensors header length {header_length} bytes exceeds the "
            f"{MAX_HEADER_BYTES} byte limit",
            repo_id=repo_id,
            file=filename,
        )
    if size is not None and header_length > size - 8:
        raise malformed(
            f"truncated or not safetensors: header length {header_length} bytes exceeds "
            f"the {max(size - 8, 0)} bytes after the length field"
        )
    if header_length < 2:
        raise malformed(f"header length {header_length} bytes is too small for a JSON object")

    header = first[8 : 8 + header_length]
    if len(header) < header_length:
        header += reader.read(len(first), 8 + header_length - len(first))
    if len(header) < header_length:
        raise malformed(
            f"truncated: the header is {header_length} bytes but the file ends after "
            f"{len(header)} of them"
        )
    data_bytes = None if size is None else size - 8 - header_length
    tensors, metadata = _parse_header(header, data_bytes, filename=filename, malformed=malformed)
    return tensors, metadata, 8 + header_length


def parse_safetensors_index(
    text: str | bytes,
    *,
    repo_id: str | None = None,
    filename: str = "model.safetensors.index.json",
) -> dict[str, str]:
    """Tensor name -> shard file name, from a sharded checkpoint's index."""
    data = load_json_object(text, repo_id=repo_id, filename=filename, max_bytes=MAX_INDEX_BYTES)
    weight_map = data.get("weight_map")
    if not isinstance(weight_map, dict):
        raise MalformedFileError(
            f"weight_map must be a mapping, got {type_name(weight_map)}",
            repo_id=repo_id,
            file=filename,
        )
    shards: dict[str, str] = {}
    checked: set[str] = set()
    for tensor, shard in weight_map.items():
        if not isinstance(shard, str):
            raise MalformedFileError(
                f"weight_map[{tensor!r}] must be a file name, got {type_name(shard)}",
                repo_id=repo_id,
                file=filename,
            )
        if shard not in checked:
            try:
                validate_filename(shard)
            except InvalidReferenceError as exc:
                raise MalformedFileError(
                    f"weight_map names an unsafe shard: {exc}", repo_id=repo_id, file=filename
                ) from None
            checked.add(shard)
        shards[tensor] = shard
    return shards


def summarize_safetensors(
    per_file: list[tuple[str, dict[str, TensorInfo], dict[str, str]]],
) -> SafetensorsSummary:
    """Merge the headers of a checkpoint's files (shards) into one summary.

    A tensor name in two files is a malformed checkpoint: its parameters would count twice.
    ``__metadata__`` entries of the first file that sets a key win.
    """
    files: list[str] = []
    tensors: dict[str, TensorInfo] = {}
    metadata: dict[str, str] = {}
    for filename, file_tensors, file_metadata in per_file:
        files.append(filename)
        for name, info in file_tensors.items():
            if name in tensors:
                raise MalformedFileError(
                    f"tensor {name!r} is stored in both {tensors[name].file} and {filename}",
                    file=filename,
                )
            tensors[name] = info
        for key, value in file_metadata.items():
            metadata.setdefault(key, value)
    return SafetensorsSummary(files=files, tensors=tensors, metadata=metadata)


# ----------------------------------------------------------------------------- helpers


def _parse_header(
    header: bytes, data_bytes: int | None, *, filename: str, malformed: Any
) -> tuple[dict[str, TensorInfo], dict[str, str]]:
    try:
        parsed = json.loads(header.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise malformed(f"header is not UTF-8 (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise malformed(f"header is not valid JSON: {exc.msg} at byte {exc.pos}") from None
    except RecursionError:
        raise malformed("header JSON is nested too deeply") from None
    if not isinstance(parsed, dict):
        raise malformed(f"header is {type_name(parsed)}, not a JSON object")

    metadata = parsed.pop("__metadata__", None)
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict) or not all(
        isinstance(value, str) for value in metadata.values()
    ):
        raise malformed("__metadata__ must map strings to strings")

    tensors: dict[str, TensorInfo] = {}
    for name, entry in parsed.items():
        problem = _tensor_problem(entry, data_bytes)
        if problem:
            raise malformed(f"tensor {_short(name)}: {problem}")
        tensors[name] = TensorInfo(
            dtype=entry["dtype"],
            shape=tuple(entry["shape"]),
            file=filename,
            data_offsets=(entry["data_offsets"][0], entry["data_offsets"][1]),
        )
    problem = _layout_problem(tensors, data_bytes)
    if problem:
        raise malformed(problem)
    return tensors, metadata


def _layout_problem(tensors: dict[str, TensorInfo], data_bytes: int | None) -> str | None:
    """The safetensors library's rule: sorted by offsets, the tensors tile the data section
    exactly, from byte 0 to its end, with no overlap and no gap (``Metadata::validate``).

    A file that breaks it is refused by ``safe_open``; read here it would give a fingerprint
    of bytes that two tensors share, or of bytes that belong to none.
    """
    ordered = sorted(tensors.items(), key=lambda item: item[1].data_offsets)
    end, previous = 0, None
    for name, info in ordered:
        begin, stop = info.data_offsets
        if begin < end:
            return (
                f"tensor {_short(name)} data_offsets [{begin}, {stop}] overlap tensor "
                f"{_short(previous)}, which ends at byte {end}"
            )
        if begin > end:
            return (
                f"data section bytes {end}-{begin - 1} belong to no tensor (a gap before "
                f"tensor {_short(name)}); safetensors requires contiguous data_offsets"
            )
        end, previous = stop, name
    if data_bytes is not None and end != data_bytes:
        return (
            f"the tensors cover {end} bytes but the data section holds {data_bytes}; "
            "safetensors requires data_offsets to cover the whole data section"
        )
    return None


def _tensor_problem(entry: Any, data_bytes: int | None) -> str | None:
    if not isinstance(entry, dict):
        return f"entry is {type_name(entry)}, not an object"
    dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
    if not isinstance(dtype, str) or dtype not in DTYPE_BITS:
        return f"unknown dtype {_short(dtype)}"
    if not isinstance(shape, list) or not all(_is_count(dim) for dim in shape):
        return "shape must be a list of non-negative integers"
    if (
        not isinstance(offsets, list)
        or len(offsets) != 2
        or not all(_is_count(offset) for offset in offsets)
        or offsets[0] > offsets[1]
    ):
        return "data_offsets must be [begin, end] with 0 <= begin <= end"
    numel = 1
    for dim in shape:
        numel *= dim
    bits = numel * DTYPE_BITS[dtype]
    if bits % 8:
        return f"{numel} elements of {dtype} do not fill whole bytes"
    begin, end = offsets
    if end - begin != bits // 8:
        return (
            f"data_offsets span {end - begin} bytes but shape {shape} of {dtype} needs {bits // 8}"
        )
    if data_bytes is not None and end > data_bytes:
        return (
            f"truncated: data ends at byte {end} of the data section, "
            f"which holds only {data_bytes} bytes"
        )
    return None


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:120] + "…"
