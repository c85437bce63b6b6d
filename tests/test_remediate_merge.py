"""The streamed linear merge writer: θ(λ) = (1−λ)·θ_aligned + λ·θ_finetune.

Checked against mergekit's own ``linear`` merge of the same tiny Llamas (single-file and
sharded, float32 and bfloat16), for the fine-tune's layout and dtypes, for one-line errors
that leave no output, for a disk that fills mid-write, and for reading one tensor at a time.
"""

from __future__ import annotations

import errno
import hashlib
import json
import math
import shutil
import weakref
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
import yaml
from mergekit.config import MergeConfiguration
from mergekit.merge import MergeOptions, run_merge
from safetensors import safe_open
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
from lineage.remediate.merge import INDEX_FILE, WEIGHTS_FILE, merge_linear
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
    real_save_file = merge_module.save_file
    written: list[str] = []

    def save_then_fill(tensors: dict[str, torch.Tensor], filename: str, **kwargs: object) -> None:
        if written:
            raise OSError(errno.ENOSPC, "No space left on device", filename)
        real_save_file(tensors, filename, **kwargs)
        written.append(filename)

    monkeypatch.setattr(merge_module, "save_file", save_then_fill)
    out = tmp_path / "out"
    if overwrite:
        out.mkdir()
        (out / "previous.txt").write_text("the model that was there")
    with pytest.raises(MergeWriteError) as error:
        merge_linear(pairs.bf16_sharded_al, pairs.bf16_sharded_ft, 0.5, out, overwrite=overwrite)
    message = str(error.value)
    assert "\n" not in message and error.value.exit_code == EXIT_PROBLEMS
    assert str(out) in message and "No space left on device" in message
    assert len(written) == 1  # the first shard was written, then the disk filled
    if overwrite:
        assert [p.name for p in out.iterdir()] == ["previous.txt"]
        assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    else:
        assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------- memory


def test_reads_one_tensor_at_a_time_and_writes_shard_by_shard(
    pairs: Pairs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At most two input tensors (one of each model) are alive at once, and the bytes read
    between two shard writes stay within two of the fine-tune's shards."""
    live = {"now": 0, "most": 0}
    read_since_write = {"bytes": 0, "most": 0}
    events: list[tuple[str, str]] = []
    real_safe_open, real_save_file = merge_module.safe_open, merge_module.save_file

    def released() -> None:
        live["now"] -= 1

    class CountingHandle:
        def __init__(self, handle: object):
            self._handle = handle

        def __enter__(self) -> CountingHandle:
            self._handle.__enter__()  # type: ignore[attr-defined]
            return self

        def __exit__(self, *exc: object) -> None:
            self._handle.__exit__(*exc)  # type: ignore[attr-defined]

        def get_tensor(self, name: str) -> torch.Tensor:
            tensor = self._handle.get_tensor(name)  # type: ignore[attr-defined]
            live["now"] += 1
            live["most"] = max(live["most"], live["now"])
            weakref.finalize(tensor, released)
            read_since_write["bytes"] += tensor.numel() * tensor.element_size()
            read_since_write["most"] = max(read_since_write["most"], read_since_write["bytes"])
            events.append(("read", name))
            return tensor

    def counting_save_file(tensors: dict[str, torch.Tensor], filename: str, **kw: object) -> None:
        events.append(("write", Path(filename).name))
        read_since_write["bytes"] = 0
        real_save_file(tensors, filename, **kw)

    monkeypatch.setattr(
        merge_module, "safe_open", lambda *a, **kw: CountingHandle(real_safe_open(*a, **kw))
    )
    monkeypatch.setattr(merge_module, "save_file", counting_save_file)
    finetune = pairs.f32_sharded_ft
    merge_linear(pairs.f32_single_al, finetune, 0.5, tmp_path / "out")

    assert live["most"] <= 2
    largest_shard = max((finetune / shard).stat().st_size for shard in shard_names(finetune))
    assert 0 < read_since_write["most"] <= 2 * largest_shard
    # Each shard's tensors are read (once, from each model) just before that shard is written.
    weight_map = json.loads((finetune / INDEX_FILE).read_text())["weight_map"]
    pending: list[str] = []
    for kind, name in events:
        if kind == "read":
            pending.append(name)
            continue
        expected = [t for t, shard in weight_map.items() if shard == name]
        assert sorted(pending) == sorted(expected * 2), name
        pending = []
    assert pending == [] and [n for k, n in events if k == "write"] == sorted(
        set(weight_map.values())
    )
