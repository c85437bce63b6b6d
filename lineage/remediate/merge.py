"""The streamed linear merge: θ(λ) = (1−λ)·θ_aligned + λ·θ_finetune, written as safetensors.

The merge is written tensor by tensor and shard by shard, in the fine-tune's layout: its
shard file names and ``weight_map`` (or its single ``model.safetensors``), and its dtype per
tensor. Each tensor is read alone through ``safetensors.safe_open`` and combined in float32
(float64 when an input is float64), then cast back. One output shard is assembled at a time,
so the peak memory is about that shard plus the two tensors being read, never the whole model.

The arithmetic is mergekit's ``linear`` method with weights (1−λ, λ) and ``normalize``
(``mergekit/merge_methods/linear.py``): accumulate ``w·θ`` in float32, divide by the sum of
the float32 weights, cast to the output dtype. So the result equals a ``mergekit-yaml`` run
of ``merge_method: linear`` on the same two models, without mergekit at run time. λ = 0 and
λ = 1 copy the aligned and the fine-tune's tensors exactly.

Everything is validated from the safetensors headers and ``config.json`` before a byte is
written. The merge is written into a temporary folder beside ``out`` (same filesystem),
fsynced and renamed into place: ``out`` never holds a half-written model.

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
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

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
    read_safetensors_header,
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
_HASH_CHUNK = 4 * MIB


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
    index: dict[str, Any] | None  # the parsed index json of a sharded checkpoint
    config: dict[str, Any] | None  # config.json, when there is one


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
    ``MergeWriteError`` when writing fails, leaving neither ``out`` changed nor a temporary
    folder behind.
    """
    lam = _checked_lambda(lam)
    aligned, finetune, out = Path(aligned), Path(finetune), Path(out)
    ft = read_checkpoint(finetune, finetune_name or str(finetune))
    al = read_checkpoint(aligned, aligned_name or str(aligned))
    check_mergeable(ft, al)
    _check_output(out, overwrite=overwrite, inputs=(ft, al))

    staging = _make_staging_folder(out)
    try:
        shards = tuple(_write_shard(staging, shard, ft, al, lam) for shard in ft.shards)
        index = _write_index(staging, ft) if ft.index is not None else None
        _fsync_path(staging)
        _move_into_place(staging, out)
    except BaseException as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(exc, (OSError, SafetensorError)):
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

    headers: dict[str, tuple[dict[str, TensorInfo], dict[str, str]]] = {}
    for shard in sorted(set(weight_map.values())) if weight_map else [WEIGHTS_FILE]:
        path = folder / shard
        if not path.is_file():
            raise MalformedFileError(
                f"the index names shard {shard}, which is not in {folder}",
                repo_id=name,
                file=INDEX_FILE,
            )
        headers[shard] = read_safetensors_header(
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
        shard_metadata={shard: metadata for shard, (_, metadata) in headers.items()},
        index=index,
        config=config,
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


class TensorReader:
    """One tensor at a time from a checkpoint's shards, through ``safe_open``.

    Shards are opened on first use and closed by ``close`` (after each output shard), so
    no file stays mapped longer than the output shard that needs it.
    """

    def __init__(self, checkpoint: Checkpoint, stack: ExitStack):
        self.checkpoint = checkpoint
        self._stack = stack
        self._open: dict[str, Any] = {}

    def get(self, tensor: str) -> torch.Tensor:
        shard = self.checkpoint.tensors[tensor].file
        handle = self._open.get(shard)
        if handle is None:
            path = self.checkpoint.folder / shard
            handle = self._stack.enter_context(safe_open(str(path), framework="pt"))
            self._open[shard] = handle
        return handle.get_tensor(tensor)


@contextmanager
def _readers(ft: Checkpoint, al: Checkpoint) -> Iterator[tuple[TensorReader, TensorReader]]:
    with ExitStack() as stack:
        yield TensorReader(ft, stack), TensorReader(al, stack)


def _merged_tensor(tensor: str, ft: TensorReader, al: TensorReader, lam: float) -> torch.Tensor:
    finetune = ft.get(tensor)
    aligned = al.get(tensor)
    if finetune.is_floating_point():
        return combine(aligned, finetune, lam)
    if lam == 0.0:
        return aligned
    if lam == 1.0 or torch.equal(aligned, finetune):
        return finetune
    raise NotMergeableError(
        ft.checkpoint.name,
        al.checkpoint.name,
        f"{tensor} holds {ft.checkpoint.tensors[tensor].dtype} values that differ between "
        "them; only floating-point tensors are averaged",
    )


def _write_shard(
    staging: Path, shard: str, ft: Checkpoint, al: Checkpoint, lam: float
) -> WrittenFile:
    """Merge and write one of the fine-tune's shards; only this shard is held in memory."""
    with _readers(ft, al) as (ft_reader, al_reader):
        tensors = {
            tensor: _merged_tensor(tensor, ft_reader, al_reader, lam) for tensor in ft.shards[shard]
        }
    path = staging / shard
    save_file(tensors, str(path), metadata=ft.shard_metadata[shard] or None)
    del tensors
    _fsync_path(path)
    return _describe(path)


def _write_index(staging: Path, ft: Checkpoint) -> WrittenFile:
    """The fine-tune's index, its ``total_size`` recomputed from what was written."""
    assert ft.index is not None
    index = dict(ft.index)
    metadata = dict(index.get("metadata") or {})
    metadata["total_size"] = sum(
        info.numel * _dtype_bytes(info.dtype) for info in ft.tensors.values()
    )
    index["metadata"] = metadata
    path = staging / INDEX_FILE
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(json.dumps(index, indent=2) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    return _describe(path)


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


def _describe(path: Path) -> WrittenFile:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return WrittenFile(name=path.name, sha256=digest.hexdigest(), size=size)


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
