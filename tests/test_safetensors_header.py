"""safetensors headers read through byte ranges: real files, and hostile ones."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from transformers import LlamaConfig, LlamaForCausalLM

from lineage.errors import FileTooLargeError, MalformedFileError
from lineage.records import TensorInfo
from lineage.safetensors_header import (
    MAX_HEADER_BYTES,
    SPECULATIVE_READ_BYTES,
    BytesRangeReader,
    FileRangeReader,
    parse_safetensors_index,
    read_safetensors_header,
    summarize_safetensors,
)
from tests.support.tiny_models import TINY_LLAMA

ALL_TORCH_DTYPES = [
    torch.float64,
    torch.float32,
    torch.float16,
    torch.bfloat16,
    torch.int64,
    torch.int32,
    torch.int16,
    torch.int8,
    torch.uint8,
    torch.uint16,
    torch.uint32,
    torch.uint64,
    torch.bool,
    torch.float8_e4m3fn,
    torch.float8_e5m2,
    torch.complex64,
]


def _tensor(dtype: torch.dtype, shape: tuple[int, ...], seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    values = torch.randn(shape, generator=generator) * 50
    if dtype == torch.bool:
        return values > 0
    if dtype == torch.complex64:
        return torch.complex(values, -values)
    if not dtype.is_floating_point:
        return values.abs().to(torch.int64).to(dtype)
    return values.to(dtype)


@pytest.fixture(scope="module")
def real_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, torch.Tensor]]:
    shapes = [(2, 3), (5,), (1, 2, 3), (3, 1)]
    tensors = {
        f"layer.{i}.{str(dtype).removeprefix('torch.')}": _tensor(dtype, shapes[i % 4], seed=i)
        for i, dtype in enumerate(ALL_TORCH_DTYPES)
    }
    tensors["scalar"] = torch.tensor(3.5)
    tensors["empty"] = torch.zeros(0, 4, dtype=torch.bfloat16)
    path = tmp_path_factory.mktemp("safetensors") / "model.safetensors"
    save_file(tensors, path, metadata={"format": "pt", "merged_by": "test"})
    return path, tensors


def _assert_matches_safe_open(path: Path, tensors: dict[str, TensorInfo], metadata: dict) -> None:
    with safe_open(path, framework="pt") as handle:
        assert sorted(tensors) == sorted(handle.keys())
        assert metadata == (handle.metadata() or {})  # safe_open says None for no metadata
        for name, info in tensors.items():
            view = handle.get_slice(name)
            assert info.dtype == view.get_dtype()
            assert list(info.shape) == view.get_shape()


def test_real_file_matches_safe_open(real_file: tuple[Path, dict[str, torch.Tensor]]) -> None:
    path, saved = real_file
    tensors, metadata = read_safetensors_header(FileRangeReader(path), filename=path.name)
    _assert_matches_safe_open(path, tensors, metadata)
    assert metadata == {"format": "pt", "merged_by": "test"}

    # The offsets point at each tensor's own bytes.
    raw = path.read_bytes()
    data_start = 8 + struct.unpack("<Q", raw[:8])[0]
    for name, info in tensors.items():
        begin, end = info.data_offsets
        expected = bytes(saved[name].contiguous().untyped_storage())
        assert raw[data_start + begin : data_start + end] == expected, name
        assert info.file == "model.safetensors"
    assert tensors["scalar"].shape == () and tensors["scalar"].numel == 1
    assert (
        tensors["empty"].shape == (0, 4)
        and tensors["empty"].data_offsets[0] == (tensors["empty"].data_offsets[1])
    )


def test_size_learned_on_first_read_like_http(
    real_file: tuple[Path, dict[str, torch.Tensor]],
) -> None:
    path, _ = real_file
    data = path.read_bytes()
    reader = BytesRangeReader(data, size_after_first_read=True)
    tensors, _ = read_safetensors_header(reader, filename=path.name)
    assert reader.reads == [(0, SPECULATIVE_READ_BYTES)]  # the header fit in one read
    local, _ = read_safetensors_header(FileRangeReader(path), filename=path.name)
    assert tensors == local
    # The size becomes known after the first read, so truncation is still caught.
    with pytest.raises(MalformedFileError, match="truncated"):
        read_safetensors_header(
            BytesRangeReader(data[:-4], size_after_first_read=True), filename=path.name
        )


def test_long_header_costs_one_more_read(tmp_path: Path) -> None:
    tensors = {
        f"model.layers.{i}.a.rather.long.tensor.name.weight": torch.ones(1) for i in range(1500)
    }
    path = tmp_path / "many.safetensors"
    save_file(tensors, path)
    data = path.read_bytes()
    header_length = struct.unpack("<Q", data[:8])[0]
    assert header_length > SPECULATIVE_READ_BYTES
    reader = BytesRangeReader(data)
    parsed, metadata = read_safetensors_header(reader, filename=path.name)
    assert reader.reads == [
        (0, SPECULATIVE_READ_BYTES),
        (SPECULATIVE_READ_BYTES, 8 + header_length - SPECULATIVE_READ_BYTES),
    ]
    _assert_matches_safe_open(path, parsed, metadata)


def test_sharded_checkpoint_index_and_summary(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(**TINY_LLAMA))
    model.save_pretrained(tmp_path, max_shard_size="40KB")
    index = parse_safetensors_index(
        (tmp_path / "model.safetensors.index.json").read_text(), repo_id="org/sharded"
    )
    state = model.state_dict()
    assert set(index) == set(state)
    shards = sorted(set(index.values()))
    assert len(shards) > 1

    per_file = [
        (shard, *read_safetensors_header(FileRangeReader(tmp_path / shard), filename=shard))
        for shard in shards
    ]
    summary = summarize_safetensors(per_file)
    assert summary.files == shards
    assert summary.parameter_count == sum(tensor.numel() for tensor in state.values())
    assert summary.parameters_by_dtype == {"F32": summary.parameter_count}
    assert {name: info.file for name, info in summary.tensors.items()} == index
    assert summary.metadata == {"format": "pt"}


def test_summary_refuses_a_tensor_in_two_shards() -> None:
    info = TensorInfo(dtype="F32", shape=(2,), file="a.safetensors", data_offsets=(0, 8))
    both = r"stored in both a\.safetensors and b\.safetensors"
    with pytest.raises(MalformedFileError, match=both):
        summarize_safetensors(
            [("a.safetensors", {"w": info}, {}), ("b.safetensors", {"w": info}, {})]
        )


# ---------------------------------------------------------------------------- hostile files


def _file(header: dict | bytes, data: bytes = b"", *, length: int | None = None) -> bytes:
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(raw) if length is None else length) + raw + data


def _read(data: bytes, **reader_options: object) -> tuple[dict, dict]:
    return read_safetensors_header(
        BytesRangeReader(data, **reader_options),  # type: ignore[arg-type]
        filename="bad.safetensors",
        repo_id="org/bad",
    )


def _error(data: bytes, **reader_options: object) -> str:
    with pytest.raises(MalformedFileError) as caught:
        _read(data, **reader_options)
    message = str(caught.value)
    assert message.startswith("org/bad: bad.safetensors: ")
    assert "\n" not in message
    return message


GOOD_ENTRY = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}


def test_truncated_data_of_a_real_file(real_file: tuple[Path, dict[str, torch.Tensor]]) -> None:
    path, _ = real_file
    data = path.read_bytes()
    truncated = path.with_name("truncated.safetensors")
    truncated.write_bytes(data[:-3])
    with pytest.raises(MalformedFileError, match="truncated: data ends at byte"):
        read_safetensors_header(FileRangeReader(truncated), filename=truncated.name)
    with pytest.raises(Exception):  # noqa: B017 - safetensors agrees the file is broken
        safe_open(truncated, framework="pt")


def test_header_length_beyond_the_file() -> None:
    data = _file({"w": GOOD_ENTRY}, bytes(8))
    lying = struct.pack("<Q", len(data)) + data[8:]
    expected = f"header length {len(data)} bytes exceeds the {len(data) - 8} bytes after"
    assert expected in _error(lying)
    # An HTTP reader learns the size on its first read: the length is still checked against it.
    reader = BytesRangeReader(lying, size_after_first_read=True)
    with pytest.raises(MalformedFileError, match=f"exceeds the {len(data) - 8} bytes"):
        read_safetensors_header(reader, filename="bad.safetensors")
    assert len(reader.reads) == 1


class _UnknownSizeReader(BytesRangeReader):
    def read(self, start: int, length: int) -> bytes:
        chunk = super().read(start, length)
        self.size = None
        return chunk


def test_header_length_beyond_the_file_when_size_stays_unknown() -> None:
    data = _file({"w": GOOD_ENTRY}, bytes(8))
    lying = struct.pack("<Q", len(data) + SPECULATIVE_READ_BYTES) + data[8:]
    with pytest.raises(MalformedFileError, match="truncated: the header is"):
        read_safetensors_header(_UnknownSizeReader(lying), filename="x.safetensors")


def test_huge_header_length_is_refused_before_reading() -> None:
    claimed = 200 * 1024 * 1024
    reader = BytesRangeReader(struct.pack("<Q", claimed) + b"{", size=10**12)
    with pytest.raises(FileTooLargeError, match="exceeds the 104857600 byte limit") as caught:
        read_safetensors_header(reader, filename="bomb.safetensors", repo_id="org/bomb")
    assert str(caught.value).startswith("org/bomb: bomb.safetensors: ")
    assert reader.reads == [(0, SPECULATIVE_READ_BYTES)]


def test_huge_header_length_in_a_sparse_file(tmp_path: Path) -> None:
    path = tmp_path / "sparse.safetensors"
    with path.open("wb") as handle:
        handle.write(struct.pack("<Q", MAX_HEADER_BYTES + 1))
        handle.truncate(MAX_HEADER_BYTES + 1024)  # sparse: no blocks are written
    with pytest.raises(FileTooLargeError):
        read_safetensors_header(FileRangeReader(path), filename=path.name)


def test_offsets_past_the_end_of_the_file() -> None:
    entries = {"a": GOOD_ENTRY, "b": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}}
    message = _error(_file(entries, bytes(12)))
    assert "tensor 'b': truncated: data ends at byte 16" in message
    assert "holds only 12 bytes" in message


def _entry(begin: int, end: int) -> dict:
    return {"dtype": "F32", "shape": [(end - begin) // 4], "data_offsets": [begin, end]}


@pytest.mark.parametrize(
    ("entries", "data_bytes", "expected"),
    [
        # issue 11: two tensors sharing bytes were accepted, then fingerprinted
        ({"a": _entry(0, 8), "b": _entry(4, 12)}, 12, "'b' data_offsets [4, 12] overlap"),
        ({"a": _entry(0, 8), "b": _entry(0, 8)}, 8, "overlap tensor 'a'"),
        ({"a": _entry(0, 16), "b": _entry(4, 8)}, 16, "overlap tensor 'a', which ends at byte 16"),
        # bytes no tensor owns: a gap between tensors, before the first, or after the last
        ({"a": _entry(0, 8), "b": _entry(12, 20)}, 20, "bytes 8-11 belong to no tensor"),
        ({"a": _entry(4, 12)}, 12, "bytes 0-3 belong to no tensor"),
        ({"a": _entry(0, 8)}, 16, "the tensors cover 8 bytes but the data section holds 16"),
    ],
)
def test_offsets_must_tile_the_data_section_like_safetensors(
    tmp_path: Path, entries: dict, data_bytes: int, expected: str
) -> None:
    data = _file(entries, bytes(data_bytes))
    assert expected in _error(data)
    path = tmp_path / "bad.safetensors"
    path.write_bytes(data)
    with pytest.raises(Exception):  # noqa: B017 - the safetensors library refuses it too
        safe_open(path, framework="pt")


def test_contiguous_offsets_in_any_header_order_are_accepted() -> None:
    entries = {
        "z": _entry(0, 8),
        "empty": {"dtype": "F32", "shape": [0], "data_offsets": [8, 8]},
        "a": _entry(8, 16),
    }
    tensors, _ = _read(_file(entries, bytes(16)))
    assert sorted(tensors) == ["a", "empty", "z"]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (b"not json at all", "header is not valid JSON"),
        (b"\xff\xfe{}", "header is not UTF-8"),
        (b"[1, 2]", "not a JSON object"),
        (b"[" * 100_000, "nested too deeply"),
        ({"w": {"dtype": "F128", "shape": [2], "data_offsets": [0, 8]}}, "unknown dtype 'F128'"),
        ({"w": {"dtype": 4, "shape": [2], "data_offsets": [0, 8]}}, "unknown dtype 4"),
        ({"w": {"shape": [2], "data_offsets": [0, 8]}}, "unknown dtype None"),
        ({"w": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}}, "shape must be"),
        ({"w": {"dtype": "F32", "shape": [2.0], "data_offsets": [0, 8]}}, "shape must be"),
        ({"w": {"dtype": "F32", "shape": [True], "data_offsets": [0, 4]}}, "shape must be"),
        ({"w": {"dtype": "F32", "shape": 2, "data_offsets": [0, 8]}}, "shape must be"),
        ({"w": {"dtype": "F32", "shape": [2], "data_offsets": [8, 0]}}, "data_offsets must be"),
        ({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0]}}, "data_offsets must be"),
        ({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}}, "span 4 bytes"),
        ({"w": {"dtype": "F4", "shape": [3], "data_offsets": [0, 2]}}, "do not fill whole bytes"),
        ({"w": [1, 2]}, "entry is a list"),
        ({"__metadata__": {"format": 1}, "w": GOOD_ENTRY}, "__metadata__ must map strings"),
        ({"__metadata__": ["pt"], "w": GOOD_ENTRY}, "__metadata__ must map strings"),
    ],
)
def test_malformed_headers(header: dict | bytes, expected: str) -> None:
    assert expected in _error(_file(header, bytes(16)))


def test_packed_and_empty_dtypes_are_accepted() -> None:
    header = {
        "f4": {"dtype": "F4", "shape": [4], "data_offsets": [0, 2]},
        "f6": {"dtype": "F6_E2M3", "shape": [4], "data_offsets": [2, 5]},
        "e8": {"dtype": "F8_E8M0", "shape": [3], "data_offsets": [5, 8]},
        "none": {"dtype": "BOOL", "shape": [0, 7], "data_offsets": [8, 8]},
        "__metadata__": None,
    }
    tensors, metadata = _read(_file(header, bytes(8)))
    assert {name: info.numel for name, info in tensors.items()} == {
        "f4": 4,
        "f6": 4,
        "e8": 3,
        "none": 0,
    }
    assert metadata == {}


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", "shorter than the 8-byte header length"),
        (b"\x01\x00\x00", "shorter than the 8-byte header length"),
        (struct.pack("<Q", 0), "too small"),
        (struct.pack("<Q", 2) + b"{", "exceeds the 1 bytes"),
        (struct.pack("<Q", 1) + b"{", "too small"),
    ],
)
def test_tiny_files(data: bytes, expected: str) -> None:
    assert expected in _error(data)


@pytest.mark.parametrize(
    ("shard", "problem"),
    [
        ("../../etc/passwd", "unsafe shard"),
        ("/abs.safetensors", "unsafe shard"),
        (3, "must be a file name"),
    ],
)
def test_index_with_unsafe_shard_names(shard: object, problem: str) -> None:
    text = json.dumps({"metadata": {}, "weight_map": {"w": "model-1.safetensors", "v": shard}})
    with pytest.raises(MalformedFileError, match=problem) as caught:
        parse_safetensors_index(text, repo_id="org/x")
    assert str(caught.value).startswith("org/x: model.safetensors.index.json: ")


@pytest.mark.parametrize("text", ['{"metadata": {}}', '{"weight_map": ["a"]}', "[]", "nope"])
def test_malformed_indexes(text: str) -> None:
    with pytest.raises(MalformedFileError):
        parse_safetensors_index(text)
