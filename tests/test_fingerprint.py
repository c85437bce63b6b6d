"""Weight fingerprints: selection, byte budget, dtype invariance, hostile files, storage."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save

from lineage.errors import FileTooLargeError, LineageError, MalformedFileError
from lineage.fingerprint import (
    METHOD_VERSION,
    Fingerprint,
    FingerprintUnavailableError,
    fingerprint_checkpoint,
)
from lineage.fingerprint.selection import MAX_PROJECTION_ROWS, MAX_ROW_VALUES, select
from lineage.records import TensorInfo
from lineage.safetensors_header import BytesRangeReader, FileRangeReader, read_safetensors_layout
from registry.database import Registry
from registry.store import record_snapshot
from registry.weights import load_fingerprint, save_fingerprint
from tests.support.weight_zoo import WeightZoo


def _local(folder: Path):
    return lambda name: FileRangeReader(folder / name)


def _weight_files(folder: Path) -> list[str]:
    index = folder / "model.safetensors.index.json"
    if index.exists():
        return sorted(set(json.loads(index.read_text())["weight_map"].values()))
    return ["model.safetensors"]


def _fingerprint(zoo: WeightZoo, role: str) -> Fingerprint:
    folder = zoo.path(role)
    return fingerprint_checkpoint(_local(folder), _weight_files(folder), repo_id=zoo.repo_id(role))


def _buffers(tensors: dict[str, np.ndarray]):
    data = save(tensors)
    return data, (lambda name: BytesRangeReader(data))


def test_selection_depends_on_names_and_shapes_only(weight_zoo: WeightZoo) -> None:
    f32 = _fingerprint(weight_zoo, "base")
    bf16 = _fingerprint(weight_zoo, "base_bf16")
    assert f32.method == bf16.method == METHOD_VERSION
    assert f32.signature == bf16.signature
    assert {n: (s.row_start, s.values.shape) for n, s in f32.tensors.items()} == {
        n: (s.row_start, s.values.shape) for n, s in bf16.tensors.items()
    }
    # every norm vector whole, a block of embedding rows, the first rows of every projection
    kinds = {sample.kind for sample in f32.tensors.values()}
    assert kinds == {"vector", "embedding", "projection"}
    norm = f32.tensors["model.norm.weight"]
    assert norm.values.shape == (1, 64)
    assert f32.tensors["model.layers.1.self_attn.q_proj.weight"].row_start == 0


def test_bf16_and_fp16_copies_fingerprint_as_the_same_model(weight_zoo: WeightZoo) -> None:
    for original, copy, tolerance in (("base", "base_bf16", 2**-8), ("ft_a", "ft_a_fp16", 2**-10)):
        a, b = _fingerprint(weight_zoo, original), _fingerprint(weight_zoo, copy)
        for name, sample in a.tensors.items():
            other = b.tensors[name].values
            scale = np.abs(sample.values).max()
            assert np.abs(sample.values - other).max() <= tolerance * scale, name
    # and a fine-tune does not: its rows move by percents, not by rounding
    base, tuned = _fingerprint(weight_zoo, "base"), _fingerprint(weight_zoo, "ft_a")
    q = "model.layers.0.self_attn.q_proj.weight"
    moved = np.linalg.norm(base.tensors[q].values - tuned.tensors[q].values)
    assert moved / np.linalg.norm(base.tensors[q].values) > 0.01


def test_sharded_checkpoint_reads_every_shard(weight_zoo: WeightZoo) -> None:
    files = _weight_files(weight_zoo.path("ft_c"))
    assert len(files) >= 2
    sharded = _fingerprint(weight_zoo, "ft_c")
    single = _fingerprint(weight_zoo, "ft_a")
    assert set(sharded.tensors) == set(single.tensors)
    assert sharded.signature == single.signature


def test_budget_of_a_20_mb_model_is_under_5_percent() -> None:
    rng = np.random.default_rng(0)
    tensors = {
        "model.embed_tokens.weight": rng.standard_normal((32000, 64)).astype(np.float32),
        "lm_head.weight": rng.standard_normal((32000, 64)).astype(np.float32),
        "model.norm.weight": np.ones(64, dtype=np.float32),
    }
    for layer in range(8):
        prefix = f"model.layers.{layer}"
        tensors[f"{prefix}.input_layernorm.weight"] = np.ones(64, dtype=np.float32)
        for name, shape in (("self_attn.q_proj", (64, 64)), ("mlp.down_proj", (64, 256))):
            tensors[f"{prefix}.{name}.weight"] = rng.standard_normal(shape).astype(np.float32)
    data, opener = _buffers(tensors)
    assert len(data) > 16 * 1024 * 1024
    fingerprint = fingerprint_checkpoint(opener, ["model.safetensors"])
    assert fingerprint.bytes_read <= 0.05 * fingerprint.weight_bytes
    assert fingerprint.tensors["model.embed_tokens.weight"].values.shape == (16, 64)
    np.testing.assert_array_equal(
        fingerprint.tensors["model.embed_tokens.weight"].values,
        tensors["model.embed_tokens.weight"][1000:1016],
    )


def test_7b_layout_selects_under_a_twentieth_of_a_percent() -> None:
    """Selection alone (the benchmark measures real reads on a sparse file)."""
    from lineage.records import TensorInfo

    shapes: dict[str, tuple[int, ...]] = {
        "model.embed_tokens.weight": (32000, 4096),
        "lm_head.weight": (32000, 4096),
        "model.norm.weight": (4096,),
    }
    for layer in range(32):
        p = f"model.layers.{layer}"
        shapes[f"{p}.input_layernorm.weight"] = (4096,)
        shapes[f"{p}.post_attention_layernorm.weight"] = (4096,)
        for proj in ("q_proj", "k_proj", "v_proj", "o_proj"):
            shapes[f"{p}.self_attn.{proj}.weight"] = (4096, 4096)
        shapes[f"{p}.mlp.gate_proj.weight"] = (11008, 4096)
        shapes[f"{p}.mlp.up_proj.weight"] = (11008, 4096)
        shapes[f"{p}.mlp.down_proj.weight"] = (4096, 11008)
    offset = 0
    tensors = {}
    for name, shape in sorted(shapes.items()):
        size = int(np.prod(shape)) * 2
        tensors[name] = TensorInfo("BF16", shape, "model.safetensors", (offset, offset + size))
        offset += size
    selection = select(tensors)
    assert selection.selected_values / selection.total_values < 0.0005
    assert selection.projection_rows >= 1


def test_reads_are_coalesced_and_concurrent_reads_agree(weight_zoo: WeightZoo) -> None:
    folder = weight_zoo.path("ft_b")
    serial = fingerprint_checkpoint(_local(folder), ["model.safetensors"], workers=1)
    parallel = fingerprint_checkpoint(_local(folder), ["model.safetensors"], workers=8)
    assert serial.blob() == parallel.blob()
    # fewer requests than sampled tensors: neighbouring ranges were merged
    assert serial.requests < len(serial.tensors)


def test_registry_round_trip(tmp_path: Path, weight_zoo: WeightZoo) -> None:
    from lineage.sources.local import LocalSource

    source = LocalSource(weight_zoo.root)
    fingerprint = _fingerprint(weight_zoo, "ft_a")
    with Registry.open(f"sqlite:///{tmp_path / 'r.db'}") as registry:
        with registry.session() as session:
            snapshot = source.fetch("wz/ft-a", None, known={})
            revision = record_snapshot(session, snapshot)
            save_fingerprint(session, revision, fingerprint)
            save_fingerprint(session, revision, fingerprint)  # replaces, never duplicates
        with registry.session(write=False) as session:
            loaded = load_fingerprint(session, revision.id, METHOD_VERSION)
    assert loaded is not None
    assert loaded.blob() == fingerprint.blob()
    assert loaded.signature == fingerprint.signature
    assert loaded.bytes_read == fingerprint.bytes_read


# -- hostile files ------------------------------------------------------------------------


def _header_only(header: dict, data_bytes: int) -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + bytes(data_bytes)


def test_truncated_data_is_an_error_naming_the_file() -> None:
    data, _ = _buffers({"model.layers.0.mlp.up_proj.weight": np.ones((64, 64), np.float32)})
    cut = data[: len(data) - 16000]  # into the rows the fingerprint samples

    class LyingSize(BytesRangeReader):
        """A server that claims the full size but sends a short body."""

    reader = LyingSize(cut, size=len(data))
    with pytest.raises(MalformedFileError) as caught:
        fingerprint_checkpoint(lambda name: reader, ["model.safetensors"], repo_id="org/cut")
    message = str(caught.value)
    assert "org/cut" in message and "model.safetensors" in message and "truncated" in message
    assert "\n" not in message


def test_header_offsets_past_the_end_are_refused() -> None:
    header = {"w.weight": {"dtype": "F32", "shape": [64, 64], "data_offsets": [0, 16384]}}
    data = _header_only(header, 100)
    with pytest.raises(MalformedFileError, match="truncated"):
        fingerprint_checkpoint(lambda n: BytesRangeReader(data), ["model.safetensors"])


def test_header_bomb_is_refused_before_reading_it() -> None:
    bomb = struct.pack("<Q", 200 * 1024 * 1024) + b"{" + bytes(64)
    reader = BytesRangeReader(bomb)
    with pytest.raises(FileTooLargeError):
        fingerprint_checkpoint(lambda n: reader, ["model.safetensors"], repo_id="org/bomb")
    assert sum(length for _, length in reader.reads) <= 64 * 1024


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_inf_weights_are_an_error_and_nothing_is_stored(bad: float, tmp_path: Path) -> None:
    weight = np.ones((8, 8), np.float32)
    weight[0, 3] = bad
    _, opener = _buffers({"model.layers.0.self_attn.q_proj.weight": weight})
    with pytest.raises(MalformedFileError, match="NaN or Inf") as caught:
        fingerprint_checkpoint(opener, ["model.safetensors"], repo_id="org/nan")
    assert "org/nan" in str(caught.value)


def test_nothing_to_fingerprint_is_a_clear_error() -> None:
    _, opener = _buffers({"q.weight": np.ones((4, 4), np.int8)})
    with pytest.raises(FingerprintUnavailableError, match="no F32/F16/BF16 tensors"):
        fingerprint_checkpoint(opener, ["model.safetensors"], repo_id="org/int8")
    with pytest.raises(FingerprintUnavailableError, match="no safetensors weights"):
        fingerprint_checkpoint(opener, ["adapter_model.safetensors"], repo_id="org/adapter")
    assert issubclass(FingerprintUnavailableError, LineageError)


def test_layout_reports_where_data_starts() -> None:
    data, _ = _buffers({"w": np.arange(4, dtype=np.float32)})
    tensors, _, start = read_safetensors_layout(BytesRangeReader(data), filename="m.safetensors")
    begin, end = tensors["w"].data_offsets
    assert np.frombuffer(data[start + begin : start + end], "<f4").tolist() == [0, 1, 2, 3]


class _RequestedBytes:
    """Counts the bytes *asked for* (not returned): what a Hub reader would download."""

    def __init__(self, inner: FileRangeReader):
        self.inner = inner
        self.size = inner.size
        self.requested = 0

    def read(self, start: int, length: int) -> bytes:
        self.requested += length
        return self.inner.read(start, length)


HUGE_VALUES = 512 * 1024 * 1024  # 2 GiB of float32: one declared row, never written


@pytest.mark.parametrize(
    ("name", "shape"),
    [
        ("model.layers.0.mlp.down_proj.weight", [1, HUGE_VALUES]),  # issue 11: one enormous row
        ("model.embed_tokens.weight", [4, HUGE_VALUES // 4]),  # a block of embedding rows
        ("model.layers.0.experts.down_proj", [8, 2048, HUGE_VALUES // 8 // 2048]),  # fused
        ("model.layers.0.self_attn.q_proj.weight", [HUGE_VALUES // 65536, 65536]),  # many rows
        ("model.norm.weight", [HUGE_VALUES]),  # one vector
    ],
)
def test_bytes_read_per_tensor_are_bounded_whatever_the_shape(
    tmp_path: Path, name: str, shape: list[int]
) -> None:
    header = json.dumps(
        {name: {"dtype": "F32", "shape": shape, "data_offsets": [0, HUGE_VALUES * 4]}}
    ).encode()
    path = tmp_path / "model.safetensors"
    with path.open("wb") as handle:
        handle.write(struct.pack("<Q", len(header)) + header)
        handle.truncate(8 + len(header) + HUGE_VALUES * 4)  # sparse: the data is never written
    readers: list[_RequestedBytes] = []

    def opener(filename: str) -> _RequestedBytes:
        readers.append(_RequestedBytes(FileRangeReader(tmp_path / filename)))
        return readers[-1]

    fingerprint = fingerprint_checkpoint(opener, ["model.safetensors"], repo_id="org/wide")
    header_reads = 64 * 1024  # the speculative header read
    cap = MAX_PROJECTION_ROWS * MAX_ROW_VALUES * 4  # the per-tensor bound, 8 MiB
    assert sum(reader.requested for reader in readers) <= header_reads + cap
    assert fingerprint.bytes_read <= header_reads + cap
    sample = fingerprint.tensors[name]
    assert sample.values.size <= MAX_PROJECTION_ROWS * MAX_ROW_VALUES
    assert tuple(sample.shape) == tuple(shape)


def test_a_cut_row_is_the_start_of_the_row_it_names() -> None:
    rows, width = 3, MAX_ROW_VALUES + 5
    weight = np.arange(rows * width, dtype=np.float32).reshape(rows, width) / 1000
    _, opener = _buffers({"model.embed_tokens.weight": weight, "x.weight": weight})
    fingerprint = fingerprint_checkpoint(opener, ["model.safetensors"])
    embedding = fingerprint.tensors["model.embed_tokens.weight"]
    assert embedding.values.shape == (1, MAX_ROW_VALUES)
    assert np.array_equal(embedding.values[0], weight[embedding.row_start, :MAX_ROW_VALUES])
    projection = fingerprint.tensors["x.weight"]
    assert projection.row_start == 0
    assert np.array_equal(projection.values[0], weight[0, :MAX_ROW_VALUES])


def test_rows_of_usual_widths_are_read_whole(weight_zoo: WeightZoo) -> None:
    tensors, _, _ = read_safetensors_layout(
        FileRangeReader(weight_zoo.path("base") / "model.safetensors"), filename="m.safetensors"
    )
    assert all(piece.cols == piece.row_width for piece in select(tensors).slices)
    # a 405B-class MLP row (53,248 values) is read whole: only wider rows are cut
    wide = {"mlp.down_proj.weight": TensorInfo("BF16", (16384, 53248), "m", (0, 0))}
    (piece,) = select(wide).slices
    assert piece.cols == piece.row_width == 53248 and piece.rows > 1
