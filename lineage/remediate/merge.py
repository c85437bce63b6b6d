"""The streamed linear merge: θ(λ) = (1−λ)·θ_aligned + λ·θ_finetune, written as safetensors.

The merge is written in the fine-tune's layout: its shard file names and ``weight_map`` (or
its single ``model.safetensors``), its dtype per tensor, and its order of tensors within each
shard. Each output shard's header is computed first (names, dtypes and shapes are the
fine-tune's, so the data offsets are known before any value is) and written, then each
tensor's bytes are streamed after it as they are merged. Inputs are read with positional
reads from the offsets in their headers, not memory-mapped, and large tensors are combined
``BLOCK_ELEMENTS`` elements at a time into reused buffers: the memory the writer holds is a
few blocks, whatever the size of a shard or of the embedding matrix.

The arithmetic is mergekit's ``linear`` method with weights (1−λ, λ) and ``normalize``
(``mergekit/merge_methods/linear.py``): accumulate ``w·θ`` in float32 (float64 when an input
is float64), divide by the sum of the weights, cast to the output dtype. The operations are
elementwise, so a block gives bit for bit what ``combine`` gives for the whole tensor, and
the result equals a ``mergekit-yaml`` run of ``merge_method: linear`` on the same two models,
without mergekit at run time. λ = 0 and λ = 1 copy the aligned and the fine-tune's bytes.

Everything is validated from the safetensors headers and ``config.json`` before a byte is
written, and the free space beside ``out`` is checked against the bytes the merge will take.
The merge is written into a temporary folder beside ``out`` (same filesystem), fsynced and
renamed into place: ``out`` never holds a half-written model.

Only the weights (and the index of a sharded fine-tune) are written here; the config,
tokenizer and card of a remediated model are the caller's.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import secrets
import shutil
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from lineage.bounded import MIB, load_json_object
from lineage.errors import MalformedFileError
from lineage.records import TensorInfo
from lineage.remediate.errors import (
    InvalidLambdaError,
    MergeWriteError,
    NotMergeableError,
    NoWeightsError,
    OutputExistsError,
    OutputNotWritableError,
)
from lineage.safetensors_header import (
    DTYPE_BITS,
    MAX_INDEX_BYTES,
    FileRangeReader,
    parse_safetensors_index,
    read_safetensors_layout,
)

WEIGHTS_FILE = "model.safetensors"
INDEX_FILE = "model.safetensors.index.json"
CONFIG_FILE = "config.json"
MAX_CONFIG_BYTES = 4 * MIB
# The config.json fields two models must agree on to merge (compared when both set them).
ARCHITECTURE_FIELDS = ("architectures", "model_type")
# safetensors dtypes that are floating point: these are merged; any other is copied.
FLOAT_DTYPES = frozenset(
    {"F16", "BF16", "F32", "F64", "F8_E5M2", "F8_E4M3", "F8_E4M3FNUZ", "F8_E5M2FNUZ"}
)
# The torch dtype of each floating-point safetensors dtype, to read and cast its values.
TORCH_DTYPES: dict[str, torch.dtype] = {
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "F32": torch.float32,
    "F64": torch.float64,
    "F8_E5M2": torch.float8_e5m2,
    "F8_E4M3": torch.float8_e4m3fn,
    "F8_E4M3FNUZ": torch.float8_e4m3fnuz,
    "F8_E5M2FNUZ": torch.float8_e5m2fnuz,
}
# Elements read, combined and written at once: the two inputs and the output of a block are
# held (6 MiB at 1 Mi elements of BF16, 12 MiB of F32), in buffers reused block to block.
BLOCK_ELEMENTS = 1024 * 1024
# Elements per torch operation, in float32 buffers of that size. Below 32768 (its grain
# size) torch runs an elementwise operation on one thread: on 2 cores shared with other
# processes, its two-thread pool made the same operations 10 to 50 times slower.
SERIAL_ELEMENTS = 32 * 1024 - 1
# Bytes read and written at once where a tensor is copied (λ 0 or 1, non-float tensors).
COPY_BYTES = 4 * MIB
# What the free-space check adds to the bytes of the files: filesystem blocks and metadata.
FREE_SPACE_MARGIN = 1 * MIB


@dataclass(frozen=True)
class WrittenFile:
    """One file the merge wrote: its name inside ``out``, sha256 and size in bytes."""

    name: str
    sha256: str
    size: int


@dataclass(frozen=True)
class MergeResult:
    """What ``merge_linear`` wrote into ``out``."""

    out: Path
    lam: float  # the fine-tune's share: 0 is the aligned model, 1 the fine-tune
    shards: tuple[WrittenFile, ...]  # the weight files, in the fine-tune's order
    index: WrittenFile | None  # model.safetensors.index.json when the fine-tune is sharded

    @property
    def files(self) -> tuple[WrittenFile, ...]:
        return self.shards + ((self.index,) if self.index else ())

    @property
    def total_bytes(self) -> int:
        """Bytes written: the shards and the index."""
        return sum(file.size for file in self.files)


@dataclass(frozen=True)
class Checkpoint:
    """A local model folder's safetensors layout, read from its headers and index only."""

    folder: Path
    name: str  # how messages name it: a repo id, else the folder
    tensors: dict[str, TensorInfo]  # in weight_map order; TensorInfo.file is the shard
    shards: dict[str, list[str]]  # shard file (sorted) -> its tensors, in weight_map order
    shard_metadata: dict[str, dict[str, str]]  # shard file -> its header's __metadata__
    data_starts: dict[str, int]  # shard file -> 8 + header length; + data_offsets: a tensor
    index: dict[str, Any] | None  # the parsed index json of a sharded checkpoint
    config: dict[str, Any] | None  # config.json, when there is one


@dataclass(frozen=True)
class ShardPlan:
    """One output shard, laid out before a byte of it is written."""

    name: str
    header: bytes  # the 8-byte header length, then the JSON header padded to 8 bytes
    tensors: tuple[str, ...]  # in the order of their bytes: the fine-tune's order
    size: int  # bytes of the whole file


def merge_linear(
    aligned: Path,
    finetune: Path,
    lam: float,
    out: Path,
    *,
    overwrite: bool = False,
    aligned_name: str | None = None,
    finetune_name: str | None = None,
) -> MergeResult:
    """Write θ(λ) = (1−λ)·θ_aligned + λ·θ_finetune into ``out``, in the fine-tune's layout.

    ``aligned_name`` and ``finetune_name`` (repo ids) name the models in messages; the
    folders name them otherwise. ``out`` must be absent or empty unless ``overwrite``.
    Raises a ``RemediationError`` (one line) on bad input, before anything is written, and
    ``MergeWriteError`` when the disk lacks the room (checked first) or writing fails,
    leaving neither ``out`` changed nor a temporary folder behind. A non-float tensor that
    differs between the two is found as it is read, and also leaves nothing.
    """
    lam = _checked_lambda(lam)
    aligned, finetune, out = Path(aligned), Path(finetune), Path(out)
    ft = read_checkpoint(finetune, finetune_name or str(finetune))
    al = read_checkpoint(aligned, aligned_name or str(aligned))
    check_mergeable(ft, al)
    _check_output(out, overwrite=overwrite, inputs=(ft, al))
    plans = [plan_shard(shard, ft) for shard in ft.shards]
    index_text = _index_text(ft) if ft.index is not None else None
    _check_free_space(out, sum(plan.size for plan in plans) + len(index_text or b""))

    staging = _make_staging_folder(out)
    try:
        with _InputFiles() as inputs:
            shards = tuple(_write_shard(staging, plan, ft, al, lam, inputs) for plan in plans)
        index = _write_index(staging, index_text) if index_text is not None else None
        _fsync_path(staging)
        _move_into_place(staging, out)
    except BaseException as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(exc, OSError):
            raise MergeWriteError(
                f"could not write the merge into {out}: {_cause(exc)}; none of it was kept"
            ) from exc
        raise
    return MergeResult(out=out, lam=lam, shards=shards, index=index)


# ----------------------------------------------------------------------------- reading


def read_checkpoint(folder: Path, name: str) -> Checkpoint:
    """The safetensors layout of a local model folder (sharded or single-file)."""
    if not folder.is_dir():
        raise NoWeightsError(f"{name} is not a folder ({folder}); give a local model folder")
    index_path, single_path = folder / INDEX_FILE, folder / WEIGHTS_FILE
    index: dict[str, Any] | None = None
    if index_path.is_file():
        index_text = _read_bytes(index_path, MAX_INDEX_BYTES, name)
        index = load_json_object(
            index_text, repo_id=name, filename=INDEX_FILE, max_bytes=MAX_INDEX_BYTES
        )
        weight_map = parse_safetensors_index(index_text, repo_id=name, filename=INDEX_FILE)
    elif single_path.is_file():
        weight_map = None
    else:
        raise NoWeightsError(
            f"{name} holds no safetensors weights: neither {WEIGHTS_FILE} nor {INDEX_FILE} "
            f"is in {folder}"
        )

    headers: dict[str, tuple[dict[str, TensorInfo], dict[str, str], int]] = {}
    for shard in sorted(set(weight_map.values())) if weight_map else [WEIGHTS_FILE]:
        path = folder / shard
        if not path.is_file():
            raise MalformedFileError(
                f"the index names shard {shard}, which is not in {folder}",
                repo_id=name,
                file=INDEX_FILE,
            )
        headers[shard] = read_safetensors_layout(
            FileRangeReader(path), filename=shard, repo_id=name
        )
    if weight_map is None:
        weight_map = dict.fromkeys(headers[WEIGHTS_FILE][0], WEIGHTS_FILE)

    tensors: dict[str, TensorInfo] = {}
    shards: dict[str, list[str]] = {shard: [] for shard in headers}
    for tensor, shard in weight_map.items():
        info = headers[shard][0].get(tensor)
        if info is None:
            raise MalformedFileError(
                f"the index puts {tensor} in {shard}, whose header does not hold it",
                repo_id=name,
                file=INDEX_FILE,
            )
        tensors[tensor] = info
        shards[shard].append(tensor)
    config_path = folder / CONFIG_FILE
    config = (
        load_json_object(
            _read_bytes(config_path, MAX_CONFIG_BYTES, name),
            repo_id=name,
            filename=CONFIG_FILE,
            max_bytes=MAX_CONFIG_BYTES,
        )
        if config_path.is_file()
        else None
    )
    return Checkpoint(
        folder=folder,
        name=name,
        tensors=tensors,
        shards=shards,
        shard_metadata={shard: metadata for shard, (_, metadata, _) in headers.items()},
        index=index,
        config=config,
        data_starts={shard: data_start for shard, (_, _, data_start) in headers.items()},
    )


def check_mergeable(ft: Checkpoint, al: Checkpoint) -> None:
    """Raise ``NotMergeableError`` naming the first field or tensor the two disagree on."""

    def mismatch(detail: str) -> NotMergeableError:
        return NotMergeableError(ft.name, al.name, detail)

    if ft.config is not None and al.config is not None:
        for key in ARCHITECTURE_FIELDS:
            if key in ft.config and key in al.config and ft.config[key] != al.config[key]:
                raise mismatch(
                    f"{CONFIG_FILE} {key} is {_show(ft.config[key])} in {ft.name}, "
                    f"{_show(al.config[key])} in {al.name}"
                )
    for tensor in ft.tensors:
        if tensor not in al.tensors:
            raise mismatch(f"{tensor} is in {ft.name}, not in {al.name}")
    for tensor in al.tensors:
        if tensor not in ft.tensors:
            raise mismatch(f"{tensor} is in {al.name}, not in {ft.name}")
    for tensor, info in ft.tensors.items():
        other = al.tensors[tensor]
        if info.shape != other.shape:
            raise mismatch(
                f"{tensor} is {list(info.shape)} in {ft.name}, {list(other.shape)} in {al.name}"
            )
        if (info.dtype in FLOAT_DTYPES) != (other.dtype in FLOAT_DTYPES) or (
            info.dtype not in FLOAT_DTYPES and info.dtype != other.dtype
        ):
            raise mismatch(f"{tensor} is {info.dtype} in {ft.name}, {other.dtype} in {al.name}")


# ----------------------------------------------------------------------------- merging


def combine(aligned: torch.Tensor, finetune: torch.Tensor, lam: float) -> torch.Tensor:
    """(1−λ)·aligned + λ·finetune in the fine-tune's dtype, as mergekit's ``linear`` does it."""
    out_dtype = finetune.dtype
    if lam == 0.0:
        return aligned.to(out_dtype)
    if lam == 1.0:
        return finetune
    compute = torch.float64 if torch.float64 in (aligned.dtype, finetune.dtype) else torch.float32
    weights = torch.tensor([1.0 - lam, lam], dtype=compute)
    result = torch.zeros(finetune.shape, dtype=compute)
    result.addcmul_(aligned.to(compute), weights[0])
    result.addcmul_(finetune.to(compute), weights[1])
    result.div_(weights.sum())
    return result.to(out_dtype)


def plan_shard(shard: str, ft: Checkpoint) -> ShardPlan:
    """The header of an output shard: the fine-tune's tensors (those its index puts there),
    names, dtypes and shapes, with contiguous offsets in the fine-tune's order.

    Written as safetensors writes it: compact JSON, ``__metadata__`` first when the
    fine-tune's header has one, padded with spaces to a multiple of 8 bytes.
    """
    tensors = sorted(ft.shards[shard], key=lambda tensor: ft.tensors[tensor].data_offsets)
    entries: dict[str, Any] = {}
    if ft.shard_metadata[shard]:
        entries["__metadata__"] = ft.shard_metadata[shard]
    offset = 0
    for tensor in tensors:
        info = ft.tensors[tensor]
        size = info.data_offsets[1] - info.data_offsets[0]
        entries[tensor] = {
            "dtype": info.dtype,
            "shape": list(info.shape),
            "data_offsets": [offset, offset + size],
        }
        offset += size
    text = json.dumps(entries, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * (-len(text) % 8)
    header = struct.pack("<Q", len(text)) + text
    return ShardPlan(name=shard, header=header, tensors=tuple(tensors), size=len(header) + offset)


class _InputFiles:
    """Positional reads of the inputs' shards, each opened once and closed at the end.

    ``os.preadv`` into a reused buffer: nothing is memory-mapped, so what was read leaves
    only the page cache, never this process's resident memory.
    """

    def __init__(self) -> None:
        self._fds: dict[Path, int] = {}

    def __enter__(self) -> _InputFiles:
        return self

    def __exit__(self, *exc: object) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()

    def read_into(self, checkpoint: Checkpoint, tensor: str, start: int, into: memoryview) -> None:
        """Fill ``into`` with the bytes of ``tensor`` from byte ``start`` of its data."""
        info = checkpoint.tensors[tensor]
        path = checkpoint.folder / info.file
        fd = self._fds.get(path)
        if fd is None:
            fd = self._fds[path] = os.open(path, os.O_RDONLY)
        offset = checkpoint.data_starts[info.file] + info.data_offsets[0] + start
        done = 0
        while done < len(into):
            count = os.preadv(fd, [into[done:]], offset + done)
            if count == 0:
                raise OSError(f"{path} ended inside {tensor}; was it changed during the merge?")
            done += count


class _Buffers:
    """The buffers a block is read, combined and written through, reused block to block.

    Byte buffers are uint8 tensors (``torch.empty``: pages are touched only as they are
    filled) seen both as torch values and, for reads, writes and hashing, as a memoryview.
    """

    def __init__(self) -> None:
        self._bytes: dict[str, tuple[torch.Tensor, memoryview]] = {}
        self._compute: dict[tuple[str, torch.dtype], torch.Tensor] = {}

    def raw(self, role: str, size: int) -> tuple[torch.Tensor, memoryview]:
        held = self._bytes.get(role)
        if held is None or held[0].numel() < size:
            self._bytes.pop(role, None)
            buffer = torch.empty(size, dtype=torch.uint8)
            held = self._bytes[role] = (buffer, memoryview(buffer.numpy()))
        return held[0][:size], held[1][:size]

    def values(self, role: str, dtype: torch.dtype, count: int) -> tuple[torch.Tensor, memoryview]:
        """``count`` values of ``dtype`` and the same memory as bytes."""
        raw, view = self.raw(role, count * dtype.itemsize)
        return raw.view(dtype), view

    def compute(self, role: str, dtype: torch.dtype, count: int) -> torch.Tensor:
        tensor = self._compute.get((role, dtype))
        if tensor is None or tensor.numel() < count:
            self._compute.pop((role, dtype), None)
            tensor = self._compute[(role, dtype)] = torch.empty(count, dtype=dtype)
        return tensor[:count]


class _ShardWriter:
    """One output file, written front to back and hashed as it is written."""

    def __init__(self, path: Path):
        self.path = path
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        self.digest = hashlib.sha256()
        self.size = 0

    def __enter__(self) -> _ShardWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)

    def write(self, data: bytes | memoryview) -> None:
        self.digest.update(data)
        _write_all(self.fd, data)
        self.size += len(data)

    def finish(self) -> WrittenFile:
        os.fsync(self.fd)
        return WrittenFile(name=self.path.name, sha256=self.digest.hexdigest(), size=self.size)


def _write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _write_shard(
    staging: Path,
    plan: ShardPlan,
    ft: Checkpoint,
    al: Checkpoint,
    lam: float,
    inputs: _InputFiles,
) -> WrittenFile:
    """Write one of the fine-tune's shards: its header, then each tensor as it is merged."""
    buffers = _Buffers()
    with _ShardWriter(staging / plan.name) as out:
        out.write(plan.header)
        for tensor in plan.tensors:
            _write_tensor(out, tensor, ft, al, lam, inputs, buffers)
        return out.finish()


def _write_tensor(
    out: _ShardWriter,
    tensor: str,
    ft: Checkpoint,
    al: Checkpoint,
    lam: float,
    inputs: _InputFiles,
    buffers: _Buffers,
) -> None:
    ft_info, al_info = ft.tensors[tensor], al.tensors[tensor]
    if ft_info.dtype not in FLOAT_DTYPES:  # the same dtype in both (check_mergeable)
        if lam == 0.0:
            _copy(out, al, tensor, inputs, buffers)
        elif lam == 1.0:
            _copy(out, ft, tensor, inputs, buffers)
        else:
            _copy_if_equal(out, tensor, ft, al, inputs, buffers)
    elif lam == 1.0 or (lam == 0.0 and al_info.dtype == ft_info.dtype):
        _copy(out, ft if lam == 1.0 else al, tensor, inputs, buffers)
    else:
        _combine_blocks(out, tensor, ft, al, lam, inputs, buffers)


def _copy(
    out: _ShardWriter, source: Checkpoint, tensor: str, inputs: _InputFiles, buffers: _Buffers
) -> None:
    begin, end = source.tensors[tensor].data_offsets
    for start in range(0, end - begin, COPY_BYTES):
        _, block = buffers.raw("copy", min(COPY_BYTES, end - begin - start))
        inputs.read_into(source, tensor, start, block)
        out.write(block)


def _copy_if_equal(
    out: _ShardWriter,
    tensor: str,
    ft: Checkpoint,
    al: Checkpoint,
    inputs: _InputFiles,
    buffers: _Buffers,
) -> None:
    """A tensor that is not floating point is the same in both models, or the merge stops."""
    begin, end = ft.tensors[tensor].data_offsets
    for start in range(0, end - begin, COPY_BYTES):
        size = min(COPY_BYTES, end - begin - start)
        theirs, theirs_bytes = buffers.raw("aligned", size)
        ours, ours_bytes = buffers.raw("finetune", size)
        inputs.read_into(al, tensor, start, theirs_bytes)
        inputs.read_into(ft, tensor, start, ours_bytes)
        if not torch.equal(theirs, ours):
            raise NotMergeableError(
                ft.name,
                al.name,
                f"{tensor} holds {ft.tensors[tensor].dtype} values that differ between "
                "them; only floating-point tensors are averaged",
            )
        out.write(ours_bytes)


def _combine_blocks(
    out: _ShardWriter,
    tensor: str,
    ft: Checkpoint,
    al: Checkpoint,
    lam: float,
    inputs: _InputFiles,
    buffers: _Buffers,
) -> None:
    """``combine``, read and written ``BLOCK_ELEMENTS`` at a time and computed
    ``SERIAL_ELEMENTS`` at a time: the same elementwise operations, so the same bits."""
    ft_dtype = TORCH_DTYPES[ft.tensors[tensor].dtype]
    al_dtype = TORCH_DTYPES[al.tensors[tensor].dtype]
    compute = torch.float64 if torch.float64 in (al_dtype, ft_dtype) else torch.float32
    weights = torch.tensor([1.0 - lam, lam], dtype=compute)
    total = weights.sum()
    numel = ft.tensors[tensor].numel
    for start in range(0, numel, BLOCK_ELEMENTS):
        count = min(BLOCK_ELEMENTS, numel - start)
        aligned, aligned_bytes = buffers.values("aligned", al_dtype, count)
        inputs.read_into(al, tensor, start * al_dtype.itemsize, aligned_bytes)
        if lam != 0.0:
            finetune, finetune_bytes = buffers.values("finetune", ft_dtype, count)
            inputs.read_into(ft, tensor, start * ft_dtype.itemsize, finetune_bytes)
        merged, merged_bytes = buffers.values("merged", ft_dtype, count)
        for part in range(0, count, SERIAL_ELEMENTS):
            end = min(count, part + SERIAL_ELEMENTS)
            if lam == 0.0:  # the aligned model in the fine-tune's dtype
                merged[part:end].copy_(aligned[part:end])
                continue
            result = buffers.compute("result", compute, end - part)
            result.zero_()
            result.addcmul_(_as(aligned[part:end], compute, buffers), weights[0])
            result.addcmul_(_as(finetune[part:end], compute, buffers), weights[1])
            result.div_(total)
            merged[part:end].copy_(result)
        out.write(merged_bytes)


def _as(values: torch.Tensor, dtype: torch.dtype, buffers: _Buffers) -> torch.Tensor:
    """``values.to(dtype)``, into a reused buffer when it is a conversion."""
    if values.dtype == dtype:
        return values
    return buffers.compute("converted", dtype, values.numel()).copy_(values)


def _index_text(ft: Checkpoint) -> bytes:
    """The fine-tune's index, its ``total_size`` recomputed from what will be written."""
    assert ft.index is not None
    index = dict(ft.index)
    metadata = dict(index.get("metadata") or {})
    metadata["total_size"] = sum(
        info.numel * _dtype_bytes(info.dtype) for info in ft.tensors.values()
    )
    index["metadata"] = metadata
    return (json.dumps(index, indent=2) + "\n").encode("utf-8")


def _write_index(staging: Path, text: bytes) -> WrittenFile:
    with _ShardWriter(staging / INDEX_FILE) as out:
        out.write(text)
        return out.finish()


def _dtype_bytes(dtype: str) -> int:
    return DTYPE_BITS[dtype] // 8


# ----------------------------------------------------------------------------- the output


def _checked_lambda(lam: object) -> float:
    if isinstance(lam, bool) or not isinstance(lam, (int, float)):
        raise InvalidLambdaError(lam)
    value = float(lam)
    if math.isnan(value) or not 0.0 <= value <= 1.0:
        raise InvalidLambdaError(lam)
    return value


def _check_output(out: Path, *, overwrite: bool, inputs: tuple[Checkpoint, ...]) -> None:
    target = out.resolve()
    for checkpoint in inputs:
        source = checkpoint.folder.resolve()
        if source == target or source.is_relative_to(target):
            raise OutputExistsError(
                f"{out} holds {checkpoint.name}, an input of the merge; choose another folder"
            )
    if not (out.exists() or out.is_symlink()) or overwrite:
        return
    if not out.is_dir():
        raise OutputExistsError(
            f"{out} exists and is not a folder; remove it, choose another folder or overwrite"
        )
    if any(out.iterdir()):
        raise OutputExistsError(
            f"{out} exists and is not empty; choose another folder or overwrite it"
        )


def _make_staging_folder(out: Path) -> Path:
    """A temporary folder beside ``out``, so that renaming it into place is atomic."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    except OSError as exc:
        raise OutputNotWritableError(
            f"cannot write into {out}: {_cause(exc)}; choose a folder you can write to"
        ) from exc


def _check_free_space(out: Path, needed: int) -> None:
    """Refuse, before writing, a merge that the filesystem of ``out`` has no room for."""
    folder = out.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return  # cannot tell: the write itself will say if the disk fills
    if free < needed + FREE_SPACE_MARGIN:
        raise MergeWriteError(
            f"not enough free space to write the merge into {out}: it needs {needed:,} bytes "
            f"and {folder} has {free:,} free; free some space or choose another folder"
        )


def _move_into_place(staging: Path, out: Path) -> None:
    """Rename ``staging`` to ``out``; an existing ``out`` is replaced only once it is whole."""
    if out.is_dir() and not out.is_symlink() and not any(out.iterdir()):
        out.rmdir()
    if out.exists() or out.is_symlink():
        previous = out.with_name(f".{out.name}.{secrets.token_hex(4)}.previous")
        os.rename(out, previous)
        try:
            os.rename(staging, out)
        except BaseException:
            os.rename(previous, out)
            raise
        if previous.is_dir() and not previous.is_symlink():
            shutil.rmtree(previous, ignore_errors=True)
        else:
            previous.unlink(missing_ok=True)
    else:
        os.rename(staging, out)
    _fsync_path(out.parent)


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _read_bytes(path: Path, limit: int, name: str) -> bytes:
    with open(path, "rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise MalformedFileError(
            f"larger than the {limit} byte limit", repo_id=name, file=path.name
        )
    return data


def _cause(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        where = f" ({exc.filename})" if exc.filename else ""
        return f"{exc.strerror}{where}"
    return str(exc).replace("\n", " ") or type(exc).__name__


def _show(value: object) -> str:
    return json.dumps(value) if isinstance(value, (list, dict)) else repr(value)


__all__ = [
    "Checkpoint",
    "MergeResult",
    "WrittenFile",
    "check_mergeable",
    "combine",
    "merge_linear",
    "read_checkpoint",
]
