"""Fingerprint cost: bytes requested and speed, against reading the full tensors.

Two checkpoints are built in a temporary folder:
- a 7B-class one with the exact Llama-2-7B layout (vocab 32000, hidden 4096, intermediate
  11008, 32 layers, 32 heads, no GQA; 6.74 B parameters), in BF16 by default, sharded as
  ``save_pretrained`` does (10 GB shards: two in BF16/F16) with a
  ``model.safetensors.index.json``. The shards are *sparse* files (length, JSON header, then a
  hole up to the full size), so they cost no disk; the hole reads as zeros, which decode.
- a "20 MB model": a tiny Llama-like layout in F32 with random values (not sparse).

Each is fingerprinted ``--repeats`` times through local ``FileRangeReader``s. Printed per
model: bytes requested (headers included) and their fraction of the weight bytes, range
requests, and fingerprints/s (with the default concurrent readers, and with one); next to
it, in the same run, a full read of every byte of every shard's data section through the
same readers (16 MiB chunks), in full reads/s, with the speed ratio and the byte ratio. The
7B full read stops after ``--full-read-limit-gb`` and is extrapolated from the measured
throughput (the output says so).
Targets: at most 0.05 % of the weight bytes for the 7B layout, at most 5 % for the 20 MB model.

With ``--hub`` (default) both fingerprints are repeated through the loopback Hub
(``testkit.hub_server.FakeHub``, in a process of its own, ``--latency-ms`` per request):
bytes and requests are counted by the server, and the time with the default concurrent
readers is set against one reader and against no range coalescing. The 7B shards are served
from private anonymous memory maps (the header written over untouched zero pages), so the
13.5 GB cost neither memory nor disk.

    python benchmarks/fingerprint.py [--dtype BF16|F16|F32] [--repeats 5]
        [--full-read-limit-gb 4] [--no-hub] [--latency-ms 30]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import mmap
import multiprocessing
import struct
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import lineage.fingerprint.read as fingerprint_read
from lineage.fingerprint import Fingerprint, fingerprint_checkpoint
from lineage.safetensors_header import (
    ByteRangeReader,
    FileRangeReader,
    parse_safetensors_index,
)
from lineage.sources.hub import HubSource
from lineage.sources.retry import RetryPolicy
from testkit.hub_server import FakeHub

BYTES_PER_VALUE = {"F32": 4, "F16": 2, "BF16": 2}
MAX_SHARD_BYTES = 10 * 10**9  # save_pretrained(max_shard_size="10GB"), as Llama-2-7b-hf has it
FULL_READ_CHUNK = 16 * 1024 * 1024
INDEX_NAME = "model.safetensors.index.json"
SINGLE_NAME = "model.safetensors"


# ----------------------------------------------------------------------------- layouts


@dataclass(frozen=True)
class LlamaLayout:
    vocab: int
    hidden: int
    intermediate: int
    layers: int
    heads: int

    def tensors(self) -> list[tuple[str, tuple[int, ...]]]:
        """Every tensor, in the model's (state_dict) order, the order shards are filled in."""
        h, i = self.hidden, self.intermediate
        out: list[tuple[str, tuple[int, ...]]] = [("model.embed_tokens.weight", (self.vocab, h))]
        for n in range(self.layers):
            prefix = f"model.layers.{n}"
            out += [(f"{prefix}.self_attn.{p}_proj.weight", (h, h)) for p in "qkvo"]
            out += [
                (f"{prefix}.mlp.gate_proj.weight", (i, h)),
                (f"{prefix}.mlp.up_proj.weight", (i, h)),
                (f"{prefix}.mlp.down_proj.weight", (h, i)),
                (f"{prefix}.input_layernorm.weight", (h,)),
                (f"{prefix}.post_attention_layernorm.weight", (h,)),
            ]
        out += [("model.norm.weight", (h,)), ("lm_head.weight", (self.vocab, h))]
        return out

    def config(self, dtype: str) -> dict:
        return {
            "architectures": ["LlamaForCausalLM"],
            "model_type": "llama",
            "vocab_size": self.vocab,
            "hidden_size": self.hidden,
            "intermediate_size": self.intermediate,
            "num_hidden_layers": self.layers,
            "num_attention_heads": self.heads,
            "num_key_value_heads": self.heads,
            "torch_dtype": {"F32": "float32", "F16": "float16", "BF16": "bfloat16"}[dtype],
        }


LLAMA_2_7B = LlamaLayout(vocab=32000, hidden=4096, intermediate=11008, layers=32, heads=32)
# 2 x 32000 x 64 embeddings (16.4 MB in F32) + 14 small layers (3.7 MB): ~20 MB.
TINY_20MB = LlamaLayout(vocab=32000, hidden=64, intermediate=256, layers=14, heads=4)


# ----------------------------------------------------------------------------- writing


def safetensors_prefix(shapes: dict[str, tuple[int, ...]], dtype: str) -> tuple[bytes, int]:
    """(8-byte length + JSON header, data section size); tensors laid out sorted by name."""
    width = BYTES_PER_VALUE[dtype]
    entries: dict[str, object] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name in sorted(shapes):
        size = math.prod(shapes[name]) * width
        entries[name] = {
            "dtype": dtype,
            "shape": list(shapes[name]),
            "data_offsets": [offset, offset + size],
        }
        offset += size
    header = json.dumps(entries, separators=(",", ":")).encode()
    header += b" " * (-len(header) % 8)  # safetensors pads the header to 8-byte alignment
    return struct.pack("<Q", len(header)) + header, offset


def shard(
    tensors: list[tuple[str, tuple[int, ...]]], dtype: str
) -> list[dict[str, tuple[int, ...]]]:
    """Split in model order as save_pretrained does: a new shard when the next would overflow."""
    shards: list[dict[str, tuple[int, ...]]] = [{}]
    filled = 0
    for name, shape in tensors:
        size = math.prod(shape) * BYTES_PER_VALUE[dtype]
        if shards[-1] and filled + size > MAX_SHARD_BYTES:
            shards.append({})
            filled = 0
        shards[-1][name] = shape
        filled += size
    return shards


def write_sparse_checkpoint(folder: Path, layout: LlamaLayout, dtype: str) -> list[str]:
    """Sparse shards + index + config in ``folder``; returns the shard names."""
    folder.mkdir(parents=True)
    shards = shard(layout.tensors(), dtype)
    names = [f"model-{k:05d}-of-{len(shards):05d}.safetensors" for k in range(1, len(shards) + 1)]
    weight_map: dict[str, str] = {}
    total = 0
    for name, shapes in zip(names, shards, strict=True):
        prefix, data_bytes = safetensors_prefix(shapes, dtype)
        with open(folder / name, "wb") as handle:
            handle.write(prefix)
            handle.truncate(len(prefix) + data_bytes)  # a hole: no disk blocks
        weight_map |= dict.fromkeys(shapes, name)
        total += data_bytes
    index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
    (folder / INDEX_NAME).write_text(json.dumps(index, indent=2))
    (folder / "config.json").write_text(json.dumps(layout.config(dtype), indent=2))
    return names


def write_random_checkpoint(folder: Path, layout: LlamaLayout, seed: int = 0) -> list[str]:
    """One F32 ``model.safetensors`` with random values (norms near 1, matrices ~N(0, 0.02))."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    shapes = dict(layout.tensors())
    prefix, _ = safetensors_prefix(shapes, "F32")
    with open(folder / SINGLE_NAME, "wb") as handle:
        handle.write(prefix)
        for name in sorted(shapes):
            shape = shapes[name]
            values = (
                1 + 0.1 * rng.standard_normal(shape)
                if len(shape) == 1
                else 0.02 * rng.standard_normal(shape)
            )
            handle.write(values.astype("<f4").tobytes())
    (folder / "config.json").write_text(json.dumps(layout.config("F32"), indent=2))
    return [SINGLE_NAME]


# ----------------------------------------------------------------------------- measuring


@dataclass
class Model:
    label: str
    repo_id: str
    folder: Path
    files: list[str]
    target_fraction: float
    sparse: bool


def weight_files(folder: Path) -> list[str]:
    """The shards named by the index, as a crawler finds them; else the single file."""
    index = folder / INDEX_NAME
    if index.is_file():
        return sorted(set(parse_safetensors_index(index.read_bytes()).values()))
    return [SINGLE_NAME]


@dataclass
class Timed:
    fingerprint: Fingerprint
    seconds: float  # per fingerprint


def time_fingerprints(
    open_reader: Callable[[str], ByteRangeReader], model: Model, repeats: int, workers: int
) -> Timed:
    """One untimed warm-up (its counts are reported), then ``repeats`` timed runs."""
    first = fingerprint_checkpoint(open_reader, model.files, repo_id=model.repo_id, workers=workers)
    started = time.perf_counter()
    for _ in range(repeats):
        again = fingerprint_checkpoint(
            open_reader, model.files, repo_id=model.repo_id, workers=workers
        )
        assert again.bytes_read == first.bytes_read, "a fingerprint must read the same bytes"
    return Timed(first, (time.perf_counter() - started) / repeats)


@dataclass
class FullRead:
    total_bytes: int  # every byte of every data section
    read_bytes: int
    seconds: float  # for read_bytes

    @property
    def seconds_per_full_read(self) -> float:
        return self.seconds * self.total_bytes / self.read_bytes

    @property
    def extrapolated(self) -> bool:
        return self.read_bytes < self.total_bytes


def full_read(
    open_reader: Callable[[str], ByteRangeReader], files: list[str], limit: int
) -> FullRead:
    """Read the data section of every shard in big chunks, stopping after ``limit`` bytes."""
    sections = []
    for reader in (open_reader(name) for name in files):
        (header_length,) = struct.unpack("<Q", reader.read(0, 8))
        assert reader.size is not None
        sections.append((reader, 8 + header_length, reader.size))
    total = sum(end - start for _, start, end in sections)
    read = 0
    started = time.perf_counter()
    for reader, start, end in sections:
        position = start
        while position < end and read < limit:
            length = min(FULL_READ_CHUNK, end - position, limit - read)
            chunk = reader.read(position, length)
            assert len(chunk) == length, "short read"
            position += length
            read += length
    return FullRead(total, read, time.perf_counter() - started)


def gb(count: float) -> str:
    return f"{count / 1e9:.2f} GB" if count >= 1e8 else f"{count / 1e6:.2f} MB"


def ratio(value: float) -> str:
    return f"{value:,.0f}x" if value >= 10 else f"{value:.2g}x"


def report_local(
    model: Model, timed: Timed, single: Timed, full: FullRead, repeats: int, workers: int
) -> None:
    fp = timed.fingerprint
    fraction = fp.bytes_read / fp.weight_bytes
    verdict = "PASS" if fraction <= model.target_fraction else "FAIL"
    print(f"\n== {model.label}: {len(model.files)} file(s), {gb(fp.weight_bytes)} of weights ==")
    print(
        f"fingerprint: {len(fp.tensors)} tensors sampled, {fp.value_count:,} values; "
        f"{fp.bytes_read:,} bytes requested ({gb(fp.bytes_read)}) in {fp.requests} range requests"
    )
    print(
        f"  = {100 * fraction:.4f} % of the weight bytes "
        f"(target <= {100 * model.target_fraction:g} %): {verdict}"
    )
    print(
        f"  speed: {1 / timed.seconds:.1f} fingerprints/s "
        f"({1000 * timed.seconds:.1f} ms each, mean of {repeats}, {workers} readers); "
        f"with 1 reader: {1 / single.seconds:.1f} fingerprints/s ({1000 * single.seconds:.1f} ms)"
    )
    rate = full.read_bytes / full.seconds
    line = (
        f"full read: {gb(full.read_bytes)} of {gb(full.total_bytes)} in {full.seconds:.2f} s "
        f"({rate / 1e9:.2f} GB/s)"
    )
    if full.extrapolated:
        line += (
            f"; --full-read-limit-gb reached, full read time EXTRAPOLATED from that "
            f"throughput: {full.seconds_per_full_read:.1f} s"
        )
    print(line)
    print(f"  speed: {1 / full.seconds_per_full_read:.3g} full reads/s")
    print(
        f"fingerprint vs full read ({workers} readers): speed ratio "
        f"{ratio(full.seconds_per_full_read / timed.seconds)}, "
        f"{full.total_bytes / fp.bytes_read:,.0f}x fewer bytes"
    )


# ----------------------------------------------------------------------------- the Hub


def _hub_bytes(path: Path, sparse: bool) -> bytes | mmap.mmap:
    """A file's content for FakeHub; a sparse shard as a private anonymous map of zero pages.

    Untouched private anonymous pages all map the kernel's one zero page, so hashing or
    slicing 13.5 GB of them costs neither memory nor disk, and reads what the hole reads.
    """
    if not sparse:
        return path.read_bytes()
    with open(path, "rb") as handle:
        (header_length,) = struct.unpack("<Q", handle.read(8))
        prefix = struct.pack("<Q", header_length) + handle.read(header_length)
    content = mmap.mmap(-1, path.stat().st_size, flags=mmap.MAP_PRIVATE)
    content[: len(prefix)] = prefix
    return content


def serve_hub(latency_s: float, repos: list[tuple[str, str, bool]], conn) -> None:
    """The Hub's process: upload ``repos`` (repo id, folder, sparse), serve, answer ``conn``."""
    with FakeHub(latency_s=latency_s) as hub:
        shas = {}
        started = time.perf_counter()
        for repo_id, folder, sparse in repos:
            files = {
                path.name: _hub_bytes(path, sparse and path.suffix == ".safetensors")
                for path in sorted(Path(folder).iterdir())
            }
            shas[repo_id] = hub.add_repo(repo_id, files)
        conn.send((hub.endpoint, shas, time.perf_counter() - started))
        while (command := conn.recv()) != "stop":
            if command == "reset":
                hub.reset_log()
                conn.send(None)
            elif command == "stats":
                resolve = "/resolve/"
                conn.send(
                    (hub.count(path_contains=resolve), hub.bytes_sent(resolve), hub.max_in_flight)
                )


@contextlib.contextmanager
def coalescing_disabled() -> Iterator[None]:
    """Ablation: one request per sampled slice (no gap is small enough to bridge)."""
    saved = fingerprint_read.MAX_GAP_BYTES
    fingerprint_read.MAX_GAP_BYTES = -1
    try:
        yield
    finally:
        fingerprint_read.MAX_GAP_BYTES = saved


def run_hub(models: list[Model], latency_ms: float, workers: int, workdir: Path) -> None:
    context = multiprocessing.get_context("spawn")
    conn, child_conn = context.Pipe()
    repos = [(m.repo_id, str(m.folder), m.sparse) for m in models]
    server = context.Process(
        target=serve_hub, args=(latency_ms / 1000, repos, child_conn), daemon=True
    )
    server.start()
    try:
        endpoint, shas, build_s = conn.recv()
        print(
            f"\n== loopback Hub (FakeHub, own process, {latency_ms:g} ms per request; "
            f"uploaded in {build_s:.1f} s) =="
        )
        source = HubSource(
            endpoint=endpoint,
            token=False,
            cache_dir=workdir / "hf-cache",
            policy=RetryPolicy(base_delay_s=0.05),
            offline=False,
        )
        for model in models:

            def open_reader(name: str, repo_id: str = model.repo_id) -> ByteRangeReader:
                return source.range_reader(repo_id, name, shas[repo_id])

            cases = [
                (f"{workers} readers, coalesced", workers, contextlib.nullcontext()),
                ("1 reader, coalesced", 1, contextlib.nullcontext()),
                (f"{workers} readers, no coalescing", workers, coalescing_disabled()),
            ]
            print(f"{model.label}:")
            baseline = None
            for label, count, patch in cases:
                conn.send("reset")
                conn.recv()
                with patch:
                    started = time.perf_counter()
                    fp = fingerprint_checkpoint(
                        open_reader, model.files, repo_id=model.repo_id, workers=count
                    )
                    seconds = time.perf_counter() - started
                conn.send("stats")
                requests, sent, in_flight = conn.recv()
                baseline = baseline or seconds
                print(
                    f"  {label:<26} {seconds:6.2f} s/fingerprint "
                    f"({seconds / baseline:4.1f}x the time), "
                    f"server: {requests} requests, {sent:,} bytes sent "
                    f"({100 * sent / fp.weight_bytes:.4f} % of weights), "
                    f"{in_flight} at once; client counted {fp.bytes_read:,} bytes"
                )
    finally:
        conn.send("stop")
        server.join(timeout=30)


# ----------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtype", choices=sorted(BYTES_PER_VALUE), default="BF16")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--workers", type=int, default=fingerprint_read.READ_WORKERS)
    parser.add_argument(
        "--full-read-limit-gb",
        type=float,
        default=4.0,
        help="stop the 7B full read after this much and extrapolate (keeps the run short)",
    )
    parser.add_argument("--hub", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--latency-ms", type=float, default=30.0)
    args = parser.parse_args()

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="fingerprint-bench-") as tmp:
        root = Path(tmp)
        big = root / "llama-2-7b"
        small = root / "tiny-20mb"
        write_sparse_checkpoint(big, LLAMA_2_7B, args.dtype)
        write_random_checkpoint(small, TINY_20MB)
        models = [
            Model(
                f"Llama-2-7B layout, {args.dtype}, sparse",
                "bench/llama-2-7b-sparse",
                big,
                weight_files(big),
                0.0005,
                sparse=True,
            ),
            Model(
                "20 MB model, F32, random",
                "bench/tiny-20mb",
                small,
                weight_files(small),
                0.05,
                sparse=False,
            ),
        ]
        for model in models:

            def open_reader(name: str, folder: Path = model.folder) -> ByteRangeReader:
                return FileRangeReader(folder / name)

            timed = time_fingerprints(open_reader, model, args.repeats, args.workers)
            single = time_fingerprints(open_reader, model, args.repeats, 1)
            if model.sparse:
                full = full_read(open_reader, model.files, int(args.full_read_limit_gb * 1e9))
            else:  # small enough to read whole, several times
                runs = [full_read(open_reader, model.files, 1 << 62) for _ in range(args.repeats)]
                full = FullRead(
                    runs[0].total_bytes,
                    runs[0].read_bytes,
                    sum(r.seconds for r in runs) / len(runs),
                )
            report_local(model, timed, single, full, args.repeats, args.workers)
        if args.hub:
            run_hub(models, args.latency_ms, args.workers, root)
    print(f"\ntotal benchmark time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
