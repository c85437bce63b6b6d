"""Builders of the files of tiny model repos: cards, JSON, safetensors and GGUF files.

Tests and benchmarks make Hub repos from these bytes (``FakeHub.add_repo``) or write
them to folders the local source reads.

    hub.add_repo("org/m", {"README.md": model_card({"base_model": "org/base"})})
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml


def model_card(front_matter: dict[str, Any] | str | None, body: str = "# Model\n") -> bytes:
    """A README.md: ``front_matter`` as YAML (a dict) or verbatim (a str, e.g. malformed)."""
    if front_matter is None:
        return body.encode()
    text = front_matter if isinstance(front_matter, str) else yaml.safe_dump(front_matter)
    return f"---\n{text.rstrip()}\n---\n{body}".encode()


def json_file(payload: Any) -> bytes:
    return json.dumps(payload, indent=2, sort_keys=True).encode()


def safetensors_file(
    tensors: dict[str, Any] | None = None, metadata: dict[str, str] | None = None
) -> bytes:
    """Bytes of a safetensors file holding numpy arrays (default: one tiny F32 matrix)."""
    import numpy as np
    from safetensors.numpy import save

    if tensors is None:
        tensors = {"model.embed_tokens.weight": np.arange(32, dtype=np.float32).reshape(8, 4)}
    return save(tensors, metadata=metadata)


_GGUF_ALIGNMENT = 32


def gguf_file(
    *,
    architecture: str = "llama",
    context_length: int = 2048,
    tensors: dict[str, tuple[int, ...]] | None = None,
) -> bytes:
    """A minimal, valid GGUF v3 file: two metadata keys and zero-filled F32 tensors."""
    tensors = tensors or {"token_embd.weight": (4, 8)}

    def gguf_string(text: str) -> bytes:
        raw = text.encode()
        return struct.pack("<Q", len(raw)) + raw

    kvs = [
        gguf_string("general.architecture") + struct.pack("<I", 8) + gguf_string(architecture),
        gguf_string(f"{architecture}.context_length")
        + struct.pack("<I", 4)
        + struct.pack("<I", context_length),
    ]
    infos, data = b"", b""
    for name, shape in tensors.items():
        dims = b"".join(struct.pack("<Q", d) for d in shape)
        infos += gguf_string(name) + struct.pack("<I", len(shape)) + dims
        infos += struct.pack("<IQ", 0, len(data))  # type 0 = F32, offset into the data section
        data += bytes(4 * math.prod(shape))
        data += bytes(-len(data) % _GGUF_ALIGNMENT)
    header = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs)) + b"".join(kvs) + infos
    return header + bytes(-len(header) % _GGUF_ALIGNMENT) + data


def iter_repo_files(root: Path) -> Iterator[tuple[str, Path]]:
    """(posix relative path, path) of every file under ``root``, skipping ``.git``."""
    for path in sorted(Path(root).rglob("*")):
        if path.is_file() and ".git" not in path.relative_to(root).parts:
            yield path.relative_to(root).as_posix(), path
