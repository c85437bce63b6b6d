"""The streamed linear merge writer: θ(λ) = (1−λ)·θ_aligned + λ·θ_finetune.

Checked against mergekit's own ``linear`` merge of the same tiny Llamas (single-file and
sharded, float32 and bfloat16), for the fine-tune's layout and dtypes, for one-line errors
that leave no output, for a disk that fills mid-write or is too full to start, and for
streaming: blocks of a few elements give exactly what ``combine`` gives for whole tensors
(odd rows, 1-D, 0-d and empty tensors, mixed dtypes), and reads, buffers and writes stay
within a block.
"""

from __future__ import annotations

import errno
import hashlib
import json
import math
import os
import shutil
import struct
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
import yaml
from mergekit.config import MergeConfiguration
from mergekit.merge import MergeOptions, run_merge
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from transformers import LlamaConfig, LlamaForCausalLM

import lineage.remediate.merge as merge_module
from lineage.errors import EXIT_PROBLEMS, EXIT_USAGE
from lineage.remediate.errors import (
    InvalidLambdaError,
    MergeWriteError,
    NotMergeableError,
    NoWeightsError,
    OutputExistsError,
)
from lineage.remediate.merge import INDEX_FILE, WEIGHTS_FILE, combine, merge_linear
from lineage.safetensors_header import FileRangeReader, read_safetensors_layout
from tests.support.tiny_models import TINY_LLAMA

SHARD = "20KB"  # the tiny Llama is ~107 KB in float32, ~54 KB in bfloat16: 3 shards or more


def save_llama(
    path: Path,
    seed: int,
    *,
    dtype: torch.dtype = torch.float32,
    max_shard_size: str | None = None,
    **overrides: int,
) -> Path:
    torch.manual_seed(seed)
    model = LlamaForCausalLM(LlamaConfig(**{**TINY_LLAMA, **overrides})).to(dtype)
    kwargs = {"max_shard_size": max_shard_size} if max_shard_size else {}
    model.save_pretrained(path, **kwargs)
    return path


@dataclass
class Pairs:
    root: Path
    f32_single_al: Path  # single model.safetensors, float32
    f32_sharded_ft: Path  # ≥ 3 shards, float32
    bf16_sharded_al: Path  # sharded at another size than the fine-tune: other shard names
    bf16_sharded_ft: Path  # ≥ 3 shards, bfloat16
    f32_single_ft: Path


@pytest.fixture(scope="module")
def pairs(tmp_path_factory: pytest.TempPathFactory) -> Pairs:
    root = tmp_path_factory.mktemp("remediate-merge")
    built = Pairs(
        root=root,
        f32_single_al=save_llama(root / "f32-al", seed=0),
        f32_sharded_ft=save_llama(root / "f32-ft", seed=1, max_shard_size=SHARD),
        bf16_sharded_al=save_llama(
            root / "bf16-al", seed=2, dtype=torch.bfloat16, max_shard_size="30KB"
        ),
        bf16_sharded_ft=save_llama(
            root / "bf16-ft", seed=3, dtype=torch.bfloat16, max_shard_size=SHARD
        ),
        f32_single_ft=save_llama(root / "f32-single-ft", seed=4),
    )
    for folder in (built.f32_sharded_ft, built.bf16_sharded_ft):
        assert len(shard_names(folder)) >= 3
    assert shard_names(built.bf16_sharded_al) != shard_names(built.bf16_sharded_ft)
    return built


def shard_names(folder: Path) -> list[str]:
    index = folder / INDEX_FILE
    if not index.exists():
        return [WEIGHTS_FILE]
    return sorted(set(json.loads(index.read_text())["weight_map"].values()))


def header(path: Path) -> dict[str, dict]:
    """A safetensors file's header, in the order the file lists its tensors."""
    with open(path, "rb") as handle:
        length = int.from_bytes(handle.read(8), "little")
        entries = json.loads(handle.read(length))
    entries.pop("__metadata__", None)
    return entries


def load_all(folder: Path) -> dict[str, torch.Tensor]:
    tensors: dict[str, torch.Tensor] = {}
    for path in sorted(folder.glob("*.safetensors")):
        with safe_open(str(path), framework="pt") as handle:
            for name in handle.keys():  # noqa: SIM118 (safe_open is not a mapping)
                tensors[name] = handle.get_tensor(name)
    return tensors


def mergekit_linear(aligned: Path, finetune: Path, lam: float, out: Path, dtype: str) -> Path:
    config = f"""\
models:
  - model: {aligned}
    parameters:
      weight: {1.0 - lam!r}
  - model: {finetune}
    parameters:
      weight: {lam!r}
merge_method: linear
dtype: {dtype}
"""
    run_merge(
        MergeConfiguration.model_validate(yaml.safe_load(config)),
        str(out),
        MergeOptions(copy_tokenizer=False, quiet=True),
    )
    return out


def assert_one_line_and_no_output(error: pytest.ExceptionInfo, out: Path, code: int) -> str:
    message = str(error.value)
    assert "\n" not in message and message
    assert error.value.exit_code == code
    assert not out.exists()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]
    return message


# ----------------------------------------------------------------------------- the numbers


@pytest.mark.parametrize(
    ("pair", "dtype", "lam"),
    [
        (("f32_single_al", "f32_sharded_ft"), "float32", 0.3),
        (("bf16_sharded_al", "bf16_sharded_ft"), "bfloat16", 0.3),
        (("bf16_sharded_al", "bf16_sharded_ft"), "bfloat16", 0.65),
    ],
)
def test_equals_mergekits_linear_merge(
    pairs: Pairs, tmp_path: Path, pair: tuple[str, str], dtype: str, lam: float
) -> None:
    aligned, finetune = getattr(pairs, pair[0]), getattr(pairs, pair[1])
    result = merge_linear(aligned, finetune, lam, tmp_path / "ours")
    reference = load_all(mergekit_linear(aligned, finetune, lam, tmp_path / "mergekit", dtype))
    ours = load_all(result.out)
    assert ours.keys() == reference.keys()
    for name, tensor in ours.items():
        assert tensor.dtype == reference[name].dtype == getattr(torch, dtype), name
        torch.testing.assert_close(tensor.float(), reference[name].float(), atol=1e-6, rtol=0)
    assert result.lam == lam


def test_lambda_zero_is_the_aligned_model_and_one_the_finetune(
    pairs: Pairs, tmp_path: Path
) -> None:
    aligned = load_all(pairs.bf16_sharded_al)
    finetune = load_all(pairs.bf16_sharded_ft)
    at_zero = load_all(
        merge_linear(pairs.bf16_sharded_al, pairs.bf16_sharded_ft, 0, tmp_path / "zero").out
    )
    at_one = load_all(
        merge_linear(pairs.bf16_sharded_al, pairs.bf16_sharded_ft, 1.0, tmp_path / "one").out
    )
    for name in finetune:
        assert torch.equal(at_zero[name], aligned[name]), name
        assert torch.equal(at_one[name], finetune[name]), name
        assert at_zero[name].dtype == at_one[name].dtype == torch.bfloat16


# ----------------------------------------------------------------------------- the layout


def test_keeps_the_finetunes_shards_weight_map_and_dtypes(pairs: Pairs, tmp_path: Path) -> None:
    # A float32 aligned model into a bfloat16 fine-tune: the output is bfloat16, like the
    # fine-tune, shard for shard.
    aligned = tmp_path / "f32-al"
    save_llama(aligned, seed=2, max_shard_size="50KB")
    result = merge_linear(aligned, pairs.bf16_sharded_ft, 0.5, tmp_path / "out")

    ft_index = json.loads((pairs.bf16_sharded_ft / INDEX_FILE).read_text())
    out_index = json.loads((result.out / INDEX_FILE).read_text())
    assert out_index["weight_map"] == ft_index["weight_map"]
    assert list(out_index["weight_map"]) == list(ft_index["weight_map"])
    assert out_index["metadata"]["total_size"] == ft_index["metadata"]["total_size"]
    assert sorted(p.name for p in result.out.iterdir()) == sorted(
        [*shard_names(pairs.bf16_sharded_ft), INDEX_FILE]
    )
    for shard in shard_names(pairs.bf16_sharded_ft):
        with (
            safe_open(str(pairs.bf16_sharded_ft / shard), framework="pt") as theirs,
            safe_open(str(result.out / shard), framework="pt") as ours,
        ):
            assert set(ours.keys()) == set(theirs.keys())
            assert ours.metadata() == theirs.metadata()
            for name in ours.keys():  # noqa: SIM118
                assert ours.get_slice(name).get_dtype() == theirs.get_slice(name).get_dtype()

    assert [file.name for file in result.shards] == shard_names(pairs.bf16_sharded_ft)
    assert result.index is not None and result.index.name == INDEX_FILE
    for file in result.files:
        data = (result.out / file.name).read_bytes()
        assert file.sha256 == hashlib.sha256(data).hexdigest()
        assert file.size == len(data)
    assert result.total_bytes == sum(p.stat().st_size for p in result.out.iterdir())


def test_a_single_file_finetune_gives_a_single_file(pairs: Pairs, tmp_path: Path) -> None:
    # The aligned model is sharded here: its tensors are found across its shards.
    aligned = tmp_path / "sharded-al"
    save_llama(aligned, seed=5, max_shard_size=SHARD)
    result = merge_linear(aligned, pairs.f32_single_ft, 0.4, tmp_path / "out")
    assert [p.name for p in result.out.iterdir()] == [WEIGHTS_FILE]
    assert result.index is None and [f.name for f in result.shards] == [WEIGHTS_FILE]
    merged, al, ft = load_all(result.out), load_all(aligned), load_all(pairs.f32_single_ft)
    for name, tensor in merged.items():
        torch.testing.assert_close(tensor, 0.6 * al[name] + 0.4 * ft[name], atol=1e-6, rtol=0)


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("lam", [1.5, -0.1, math.nan, math.inf, "0.5", True])
def test_a_lambda_outside_zero_one_is_refused(pairs: Pairs, tmp_path: Path, lam: object) -> None:
    out = tmp_path / "out"
    with pytest.raises(InvalidLambdaError) as error:
        merge_linear(pairs.f32_single_al, pairs.f32_single_ft, lam, out)  # type: ignore[arg-type]
    message = assert_one_line_and_no_output(error, out, EXIT_USAGE)
    assert repr(lam) in message and "[0, 1]" in message


def test_a_folder_without_safetensors_is_refused(pairs: Pairs, tmp_path: Path) -> None:
    empty = tmp_path / "no-weights"
    empty.mkdir()
    (empty / "config.json").write_text("{}")
    out = tmp_path / "out"
    with pytest.raises(NoWeightsError) as error:
        merge_linear(empty, pairs.f32_single_ft, 0.5, out, aligned_name="org/al")
    message = assert_one_line_and_no_output(error, out, EXIT_USAGE)
    assert message.startswith("org/al holds no safetensors weights")
    with pytest.raises(NoWeightsError) as error:
        merge_linear(tmp_path / "missing", pairs.f32_single_ft, 0.5, out)
    assert "is not a folder" in assert_one_line_and_no_output(error, out, EXIT_USAGE)


def test_different_shapes_name_the_first_mismatching_tensor(tmp_path: Path) -> None:
    ft = save_llama(tmp_path / "ft", seed=0, intermediate_size=64)
    al = save_llama(tmp_path / "al", seed=1, intermediate_size=48)
    out = tmp_path / "out"
    with pytest.raises(NotMergeableError) as error:
        merge_linear(al, ft, 0.5, out, aligned_name="org/al", finetune_name="org/ft")
    message = assert_one_line_and_no_output(error, out, EXIT_USAGE)
    ft_header, al_header = header(ft / WEIGHTS_FILE), header(al / WEIGHTS_FILE)
    first = next(name for name in ft_header if ".mlp." in name)  # in the fine-tune's order
    assert message == (
        f"org/ft and org/al do not merge: {first} is {ft_header[first]['shape']} in org/ft, "
        f"{al_header[first]['shape']} in org/al"
    )


def test_different_tensor_names_are_refused(tmp_path: Path) -> None:
    ft = save_llama(tmp_path / "ft", seed=0, num_hidden_layers=3)
    al = save_llama(tmp_path / "al", seed=1)
    out = tmp_path / "out"
    with pytest.raises(NotMergeableError) as error:
        merge_linear(al, ft, 0.5, out, aligned_name="org/al", finetune_name="org/ft")
    message = assert_one_line_and_no_output(error, out, EXIT_USAGE)
    assert message.startswith("org/ft and org/al do not merge: model.layers.2.")
    assert message.endswith(" is in org/ft, not in org/al")
    with pytest.raises(NotMergeableError) as error:  # the other way round
        merge_linear(ft, al, 0.5, out, aligned_name="org/big", finetune_name="org/small")
    assert assert_one_line_and_no_output(error, out, EXIT_USAGE).endswith(
        " is in org/big, not in org/small"
    )


@pytest.mark.parametrize(
    ("key", "value", "shown"),
    [
        ("architectures", ["MistralForCausalLM"], '["MistralForCausalLM"]'),
        ("model_type", "mistral", "'mistral'"),
    ],
)
def test_a_different_architecture_is_refused(
    pairs: Pairs, tmp_path: Path, key: str, value: object, shown: str
) -> None:
    al = tmp_path / "al"
    shutil.copytree(pairs.f32_single_al, al)
    config = json.loads((al / "config.json").read_text())
    theirs = config[key]
    config[key] = value
    (al / "config.json").write_text(json.dumps(config))
    out = tmp_path / "out"
    with pytest.raises(NotMergeableError) as error:
        merge_linear(
            al, pairs.f32_single_ft, 0.5, out, aligned_name="org/al", finetune_name="org/ft"
        )
    message = assert_one_line_and_no_output(error, out, EXIT_USAGE)
    ft_value = json.dumps(theirs) if isinstance(theirs, list) else repr(theirs)
    assert message == (
        f"org/ft and org/al do not merge: config.json {key} is {ft_value} in org/ft, "
        f"{shown} in org/al"
    )


def test_an_output_folder_that_is_not_empty_is_kept_unless_overwrite(
    pairs: Pairs, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    with pytest.raises(OutputExistsError) as error:
        merge_linear(pairs.f32_single_al, pairs.f32_single_ft, 0.5, out)
    assert "\n" not in str(error.value) and str(out) in str(error.value)
    assert error.value.exit_code == EXIT_USAGE
    assert [p.name for p in out.iterdir()] == ["mine.txt"]

    result = merge_linear(pairs.f32_single_al, pairs.f32_single_ft, 0.5, out, overwrite=True)
    assert [p.name for p in result.out.iterdir()] == [WEIGHTS_FILE]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # nothing left beside it

    empty = tmp_path / "empty"
    empty.mkdir()
    assert merge_linear(pairs.f32_single_al, pairs.f32_single_ft, 0.5, empty).out == empty


def test_an_input_folder_is_never_the_output(pairs: Pairs, tmp_path: Path) -> None:
    ft = tmp_path / "ft"
    shutil.copytree(pairs.f32_single_ft, ft)
    with pytest.raises(OutputExistsError) as error:
        merge_linear(pairs.f32_single_al, ft, 0.5, ft, overwrite=True)
    assert "an input of the merge" in str(error.value)
    assert (ft / WEIGHTS_FILE).read_bytes() == (pairs.f32_single_ft / WEIGHTS_FILE).read_bytes()


# ----------------------------------------------------------------------------- a full disk


@pytest.mark.parametrize("overwrite", [False, True])
def test_a_disk_that_fills_mid_write_leaves_nothing(
    pairs: Pairs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, overwrite: bool
) -> None:
    real_write_all = merge_module._write_all
    writes: dict[int, int] = {}  # file (inode) -> writes into it

    def write_then_fill(fd: int, data: bytes | memoryview) -> None:
        file = os.fstat(fd).st_ino
        writes[file] = writes.get(file, 0) + 1
        if len(writes) == 2 and writes[file] == 2:  # the second shard's first tensor
            raise OSError(errno.ENOSPC, "No space left on device")
        real_write_all(fd, data)

    monkeypatch.setattr(merge_module, "_write_all", write_then_fill)
    out = tmp_path / "out"
    if overwrite:
        out.mkdir()
        (out / "previous.txt").write_text("the model that was there")
    with pytest.raises(MergeWriteError) as error:
        merge_linear(pairs.bf16_sharded_al, pairs.bf16_sharded_ft, 0.5, out, overwrite=overwrite)
    message = str(error.value)
    assert "\n" not in message and error.value.exit_code == EXIT_PROBLEMS
    assert str(out) in message and "No space left on device" in message
    assert len(writes) == 2  # the first shard was written, then the second's header
    if overwrite:
        assert [p.name for p in out.iterdir()] == ["previous.txt"]
        assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    else:
        assert list(tmp_path.iterdir()) == []


def test_a_disk_without_room_for_the_merge_is_refused_before_writing(
    pairs: Pairs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    needed = merge_linear(
        pairs.bf16_sharded_al, pairs.bf16_sharded_ft, 0.5, tmp_path / "m"
    ).total_bytes
    real_disk_usage = shutil.disk_usage
    free = {"bytes": needed + merge_module.FREE_SPACE_MARGIN - 1}
    asked: list[Path] = []

    def disk_usage(path: str | Path) -> object:
        asked.append(Path(path))
        return real_disk_usage(path)._replace(free=free["bytes"])

    monkeypatch.setattr(merge_module.shutil, "disk_usage", disk_usage)
    monkeypatch.setattr(merge_module, "_write_all", lambda fd, data: pytest.fail("written"))
    out = tmp_path / "new" / "out"  # its parent does not exist yet: the check asks tmp_path
    with pytest.raises(MergeWriteError) as error:
        merge_linear(pairs.bf16_sharded_al, pairs.bf16_sharded_ft, 0.5, out)
    message = str(error.value)
    assert "\n" not in message and error.value.exit_code == EXIT_PROBLEMS
    assert message == (
        f"not enough free space to write the merge into {out}: it needs {needed:,} bytes and "
        f"{tmp_path} has {free['bytes']:,} free; free some space or choose another folder"
    )
    assert asked == [tmp_path]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]

    free["bytes"] += 1  # exactly the bytes and the margin: written
    monkeypatch.undo()
    monkeypatch.setattr(merge_module.shutil, "disk_usage", disk_usage)
    result = merge_linear(pairs.bf16_sharded_al, pairs.bf16_sharded_ft, 0.5, out)
    assert result.total_bytes == needed


# ----------------------------------------------------------------------------- streaming


def save_shards(folder: Path, shards: dict[str, dict[str, torch.Tensor]]) -> Path:
    """A checkpoint written by safetensors itself: one file, or shards with an index."""
    folder.mkdir()
    for name, tensors in shards.items():
        save_file(tensors, str(folder / name), metadata={"format": "pt"})
    if len(shards) > 1:
        weight_map = {t: name for name, tensors in shards.items() for t in tensors}
        (folder / INDEX_FILE).write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    return folder


def odd_tensors(seed: int, *, ids: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Odd row counts, every rank from 0-d to 2-d, an empty tensor, dtypes that differ
    between the two models (given per model below) and integer ids."""
    generator = torch.Generator().manual_seed(seed)

    def randn(*shape: int) -> torch.Tensor:
        return torch.randn(shape, generator=generator)

    return {
        "embed.weight": randn(33, 5).bfloat16(),
        "proj.weight": randn(17, 3),  # F32; BF16 in the fine-tune
        "proj.bias": randn(11).half(),
        "scale": randn(),  # 0-d
        "empty": randn(0, 4).bfloat16(),
        "wide": randn(9, 2).double(),  # F64; F32 in the aligned model
        "position_ids": torch.arange(13).unsqueeze(0) if ids is None else ids,
    }


@pytest.fixture(scope="module")
def odd_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("odd")
    aligned = odd_tensors(10)
    aligned["wide"] = aligned["wide"].float()
    finetune = odd_tensors(11)
    finetune["proj.weight"] = finetune["proj.weight"].bfloat16()
    names = list(finetune)
    return (
        save_shards(root / "al", {WEIGHTS_FILE: aligned}),
        save_shards(
            root / "ft",
            {
                "model-00001-of-00002.safetensors": {t: finetune[t] for t in names[:3]},
                "model-00002-of-00002.safetensors": {t: finetune[t] for t in names[3:]},
            },
        ),
    )


@pytest.mark.parametrize("lam", [0.0, 0.3, 0.65, 1.0])
def test_blocks_of_a_few_elements_give_combines_bits(
    odd_pair: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lam: float
) -> None:
    monkeypatch.setattr(merge_module, "BLOCK_ELEMENTS", 7)  # 33 × 5 is 23 blocks and 4 left
    monkeypatch.setattr(merge_module, "SERIAL_ELEMENTS", 3)
    monkeypatch.setattr(merge_module, "COPY_BYTES", 5)
    aligned, finetune = odd_pair
    result = merge_linear(aligned, finetune, lam, tmp_path / "out")

    al = load_file(str(aligned / WEIGHTS_FILE))
    ft = {}
    for shard in shard_names(finetune):
        ft.update(load_file(str(finetune / shard)))
    merged = {}
    for file in result.shards:
        path = result.out / file.name
        merged.update(load_file(str(path)))
        # Valid by our own strict reader too, and laid out as safetensors lays it out: the
        # header padded to 8 bytes, the fine-tune's metadata, its tensors in its order.
        (header_length,) = struct.unpack("<Q", path.read_bytes()[:8])
        assert header_length % 8 == 0
        ours, metadata, _ = read_safetensors_layout(FileRangeReader(path), filename=file.name)
        theirs, _, _ = read_safetensors_layout(
            FileRangeReader(finetune / file.name), filename=file.name
        )
        assert metadata == {"format": "pt"}
        assert list(ours) == list(theirs) and ours == theirs
    assert merged.keys() == ft.keys()
    for name, tensor in merged.items():
        if ft[name].is_floating_point():
            expected = combine(al[name], ft[name], lam)
        else:
            expected = al[name] if lam == 0.0 else ft[name]
        assert tensor.dtype == ft[name].dtype, name
        assert tensor.shape == ft[name].shape, name
        assert torch.equal(tensor, expected), name
    if lam == 1.0:  # the fine-tune byte for byte, header included
        for file in result.shards:
            assert (result.out / file.name).read_bytes() == (finetune / file.name).read_bytes()
    if 0.0 < lam < 1.0:  # the arithmetic is the documented one, not only combine's
        reference = (1 - lam) * al["embed.weight"].float() + lam * ft["embed.weight"].float()
        torch.testing.assert_close(merged["embed.weight"].float(), reference, atol=1e-2, rtol=0)


def test_integer_tensors_that_differ_stop_the_merge(
    odd_pair: tuple[Path, Path], tmp_path: Path
) -> None:
    aligned, finetune = odd_pair
    other = save_shards(
        tmp_path / "al", {WEIGHTS_FILE: odd_tensors(10, ids=torch.zeros(1, 13, dtype=torch.int64))}
    )
    out = tmp_path / "out"
    with pytest.raises(NotMergeableError) as error:
        merge_linear(other, finetune, 0.5, out, aligned_name="org/al", finetune_name="org/ft")
    message = assert_one_line_and_no_output(error, out, EXIT_USAGE)
    assert message == (
        "org/ft and org/al do not merge: position_ids holds I64 values that differ between "
        "them; only floating-point tensors are averaged"
    )
    assert merge_linear(aligned, finetune, 0.5, out).out == out  # equal ids: copied


def test_reads_buffers_and_writes_stay_within_a_block(
    pairs: Pairs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With blocks of 100 elements, every read, buffer and write holds at most a block,
    and no more than one block of each model is read before its merge is written: what the
    writer holds does not grow with a tensor or a shard."""
    finetune, aligned = pairs.f32_sharded_ft, pairs.bf16_sharded_al
    unpatched = merge_linear(aligned, finetune, 0.4, tmp_path / "whole")
    block, serial = 100, 30
    monkeypatch.setattr(merge_module, "BLOCK_ELEMENTS", block)
    monkeypatch.setattr(merge_module, "SERIAL_ELEMENTS", serial)
    block_bytes = block * 4  # float32 is the widest dtype here
    reads: list[int] = []
    writes: list[int] = []
    since_write = {"now": 0, "most": 0}
    buffers: list[int] = []
    computed: list[int] = []
    real_read_into = merge_module._InputFiles.read_into
    real_write_all = merge_module._write_all
    real_raw = merge_module._Buffers.raw
    real_compute = merge_module._Buffers.compute

    def read_into(self, checkpoint, tensor, start, into):  # type: ignore[no-untyped-def]
        reads.append(len(into))
        since_write["now"] += len(into)
        since_write["most"] = max(since_write["most"], since_write["now"])
        real_read_into(self, checkpoint, tensor, start, into)

    def write_all(fd: int, data: bytes | memoryview) -> None:
        writes.append(len(data))
        since_write["now"] = 0
        real_write_all(fd, data)

    def raw(self, role, size):  # type: ignore[no-untyped-def]
        buffers.append(size)
        return real_raw(self, role, size)

    def compute(self, role, dtype, count):  # type: ignore[no-untyped-def]
        computed.append(count)
        return real_compute(self, role, dtype, count)

    monkeypatch.setattr(merge_module._InputFiles, "read_into", read_into)
    monkeypatch.setattr(merge_module, "_write_all", write_all)
    monkeypatch.setattr(merge_module._Buffers, "raw", raw)
    monkeypatch.setattr(merge_module._Buffers, "compute", compute)
    result = merge_linear(aligned, finetune, 0.4, tmp_path / "blocks")

    assert max(reads) <= block_bytes and max(buffers) <= block_bytes
    assert max(computed) == serial
    assert since_write["most"] <= 2 * block_bytes  # one block of each model, then written
    headers = len(result.files)  # each file's first write is its header (or the index)
    assert sorted(writes)[:-headers] and max(sorted(writes)[:-headers]) <= block_bytes
    assert sum(reads) > 2 * max((finetune / s).stat().st_size for s in shard_names(finetune))
    for whole, blocks in zip(unpatched.files, result.files, strict=True):
        assert (whole.name, whole.sha256, whole.size) == (blocks.name, blocks.sha256, blocks.size)
