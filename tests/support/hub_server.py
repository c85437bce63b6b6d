"""A loopback emulation of the Hugging Face Hub endpoints this project uses.

Tests and benchmarks drive the *real* ``huggingface_hub`` client against it, so what is
emulated is what that client reads: JSON shapes of ``/api/models``, ``Link`` pagination,
the ``/resolve`` headers (``X-Repo-Commit``, ``ETag``, ``X-Linked-*``, ranges) and the
``X-Error-Code`` headers that ``hf_raise_for_status`` turns into typed errors.

Dataset repos (``add_repo(..., repo_type="dataset")``) live in their own namespace, as on
the Hub, and are served where huggingface_hub looks for them: ``/api/datasets/{id}``
(info, ``revision``, ``tree``, ``refs``, ``commits``) and
``/datasets/{id}/resolve/{revision}/{path}``.

    with FakeHub(tokens={"hf_good"}) as hub:
        sha = hub.add_repo("org/base", {"config.json": json_file({"model_type": "llama"})})
        info = HfApi(endpoint=hub.endpoint, token=False).model_info("org/base")
        assert info.sha == sha and hub.count(path_contains="/api/models/org/base") == 1

Everything is in memory and deterministic: the same calls in the same order give the same
commit shas. Requests are counted server side (``requests``, ``count``, ``bytes_sent``) and
faults are injected per path substring (``fail_next``, ``delay``).
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import fnmatch
import hashlib
import json
import math
import random
import re
import socket
import struct
import sys
import threading
import time
import traceback
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qsl, quote, unquote, unquote_plus, urlencode

import yaml

# ---------------------------------------------------------------------------------------
# Helpers that build repository files (tests use them to make tiny repos)
# ---------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------
# Server-side request log
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RequestRecord:
    """One request as the server saw it. ``path`` and ``query`` are percent-decoded."""

    method: str
    path: str
    query: str
    range: str | None
    status: int
    bytes_sent: int  # response body bytes actually written (0 for HEAD)
    auth_present: bool  # an Authorization header was sent (valid or not)


# ---------------------------------------------------------------------------------------
# Repository content: files, commits, and what the Hub derives from them
# ---------------------------------------------------------------------------------------

# The Hub's default .gitattributes (abridged): these patterns are stored with Git LFS.
# fmt: off
_DEFAULT_LFS_PATTERNS = (
    "*.7z", "*.arrow", "*.bin", "*.bz2", "*.ckpt", "*.ftz", "*.gz", "*.h5", "*.joblib",
    "*.lfs.*", "*.mlmodel", "*.model", "*.msgpack", "*.npy", "*.npz", "*.onnx", "*.ot",
    "*.parquet", "*.pb", "*.pickle", "*.pkl", "*.pt", "*.pth", "*.rar", "*.safetensors",
    "saved_model/**/*", "*.tar.*", "*.tar", "*.tflite", "*.tgz", "*.wasm", "*.xz", "*.zip",
    "*.zst", "*tfevents*", "*.gguf",
)
# fmt: on
DEFAULT_GITATTRIBUTES = "".join(
    f"{pattern} filter=lfs diff=lfs merge=lfs -text\n" for pattern in _DEFAULT_LFS_PATTERNS
).encode()

_LFS_SIZE_THRESHOLD = 10 * 1024 * 1024  # the Hub refuses regular git files above 10 MB
_RELATIONS = ("adapter", "merge", "quantized", "finetune")
_REPO_ID = re.compile(r"[A-Za-z0-9][\w.\-]*(/[\w.\-]+)?")
_SHA40 = re.compile(r"[0-9a-f]{40}")
# Same front-matter regex as huggingface_hub.repocard.
_YAML_BLOCK = re.compile(r"^(\s*---[\r\n]+)([\S\s]*?)([\r\n]+---(\r\n|\n|$))")
_EPOCH = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)


def _iso(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _git_blob_oid(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


@dataclass(frozen=True)
class _File:
    data: bytes
    is_lfs: bool
    oid: str  # git blob oid (of the LFS pointer for LFS files), as the Hub reports it
    sha256: str
    pointer_size: int

    @classmethod
    def build(cls, path: str, data: bytes, lfs_patterns: list[str]) -> _File:
        sha256 = hashlib.sha256(data).hexdigest()
        is_lfs = (
            _matches_any(path, lfs_patterns)
            or len(data) > _LFS_SIZE_THRESHOLD
            or b"\0" in data[:8000]  # the Hub's upload sends binary files to LFS
        )
        if is_lfs:
            pointer = (
                "version https://git-lfs.github.com/spec/v1\n"
                f"oid sha256:{sha256}\nsize {len(data)}\n"
            )
            return cls(data, True, _git_blob_oid(pointer.encode()), sha256, len(pointer))
        return cls(data, False, _git_blob_oid(data), sha256, 0)

    @property
    def etag(self) -> str:
        return f'"{self.sha256 if self.is_lfs else self.oid}"'


def _matches_any(path: str, patterns: list[str]) -> bool:
    name = path.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatchcase(path if "/" in p else name, p) for p in patterns)


def _lfs_patterns(gitattributes: bytes | None) -> list[str]:
    text = (gitattributes or b"").decode("utf-8", "replace")
    return [
        line.split()[0]
        for line in text.splitlines()
        if line.strip() and not line.startswith("#") and "filter=lfs" in line
    ]


@dataclass(frozen=True)
class _Analysis:
    """What the Hub computes from one commit's files (cached: commits are immutable)."""

    card: dict[str, Any] | None
    config: dict[str, Any] | None
    safetensors: dict[str, Any] | None
    gguf: dict[str, Any] | None
    library_name: str | None
    pipeline_tag: str | None
    base_models: list[str]
    relation: str | None
    tags: list[str]


@dataclass
class _Commit:
    sha: str
    parent: str | None
    files: dict[str, _File]
    title: str
    date: str
    analysis: _Analysis


@dataclass
class _Repo:
    repo_id: str
    object_id: str  # the Hub's Mongo-style "_id"
    private: bool
    gated: bool | str
    created_at: str
    extra_tags: list[str]
    downloads: int
    likes: int
    commits: dict[str, _Commit] = field(default_factory=dict)
    repo_type: str = "model"  # or "dataset": its own id namespace and URL prefix
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def head(self) -> _Commit:
        return self.commits[self.branches["main"]]

    def resolve(self, revision: str) -> _Commit | None:
        sha = self.branches.get(revision) or self.tags.get(revision)
        if sha is None and _SHA40.fullmatch(revision):
            sha = revision
        return self.commits.get(sha) if sha else None

    def tags_at(self, commit: _Commit) -> list[str]:
        return list(dict.fromkeys(commit.analysis.tags + self.extra_tags))


def _json_safe(value: Any) -> Any:
    """YAML can hold dates and sets; the Hub serves them as JSON strings / lists."""

    def default(obj: Any) -> Any:
        if isinstance(obj, (dt.date, dt.datetime)):
            return obj.isoformat()
        if isinstance(obj, (set, frozenset)):
            return sorted(obj, key=str)
        raise TypeError(type(obj).__name__)

    return json.loads(json.dumps(value, default=default))


def _parse_card(readme: bytes | None) -> dict[str, Any] | None:
    if readme is None:
        return None
    match = _YAML_BLOCK.search(readme.decode("utf-8", "replace"))
    if match is None:
        return None
    try:
        data = yaml.safe_load(match.group(2))
        return _json_safe(data) if isinstance(data, dict) else None
    except (yaml.YAMLError, TypeError, ValueError):
        return None  # the Hub omits cardData when the front matter does not parse


def _parse_json_dict(raw: bytes | None) -> dict[str, Any] | None:
    if raw is None:
        return None
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _safetensors_header_counts(data: bytes) -> dict[str, int] | None:
    """Parameter count per dtype from one file's header; None if the header is unreadable."""
    if len(data) < 8:
        return None
    (header_len,) = struct.unpack("<Q", data[:8])
    if header_len > len(data) - 8:
        return None  # a lying header length (e.g. a "header bomb"): the Hub skips the file
    try:
        header = json.loads(data[8 : 8 + header_len])
        counts: dict[str, int] = {}
        for name, tensor in header.items():
            if name != "__metadata__":
                dtype, shape = str(tensor["dtype"]), [int(d) for d in tensor["shape"]]
                counts[dtype] = counts.get(dtype, 0) + math.prod(shape)
        return counts
    except (ValueError, TypeError, KeyError, AttributeError):
        return None


def _safetensors_parameters(files: dict[str, _File]) -> dict[str, Any] | None:
    totals: dict[str, int] = {}
    found = False
    for path, file in files.items():
        counts = _safetensors_header_counts(file.data) if path.endswith(".safetensors") else None
        if counts is None:
            continue
        found = True
        for dtype, count in counts.items():
            totals[dtype] = totals.get(dtype, 0) + count
    if not found:
        return None
    return {"parameters": totals, "total": sum(totals.values())}


class _GGUFReader:
    """Bounded reader of a GGUF header: metadata key/values and tensor shapes."""

    _SCALARS: ClassVar[dict[int, str]] = {
        0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?",
        10: "<Q", 11: "<q", 12: "<d",
    }  # fmt: skip

    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def take(self, fmt: str) -> Any:
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.data):
            raise ValueError("truncated GGUF header")
        (value,) = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += size
        return value

    def string(self) -> str:
        length = self.take("<Q")
        if length > 1 << 20 or self.pos + length > len(self.data):
            raise ValueError("GGUF string too long")
        self.pos += length
        return self.data[self.pos - length : self.pos].decode("utf-8", "replace")

    def value(self, kind: int) -> Any:
        if kind in self._SCALARS:
            return self.take(self._SCALARS[kind])
        if kind == 8:
            return self.string()
        if kind == 9:
            item_kind, count = self.take("<I"), self.take("<Q")
            if count > 1 << 20:
                raise ValueError("GGUF array too long")
            return [self.value(item_kind) for _ in range(count)]
        raise ValueError(f"unknown GGUF value type {kind}")


def _gguf_summary(files: dict[str, _File]) -> dict[str, Any] | None:
    for path, file in sorted(files.items()):
        if not path.endswith(".gguf"):
            continue
        reader = _GGUFReader(file.data)
        try:
            if reader.data[:4] != b"GGUF":
                continue
            reader.pos = 4
            reader.take("<I")  # version
            tensor_count, kv_count = reader.take("<Q"), reader.take("<Q")
            if tensor_count > 100_000 or kv_count > 10_000:
                continue
            metadata = {reader.string(): reader.value(reader.take("<I")) for _ in range(kv_count)}
            total = 0
            for _ in range(tensor_count):
                reader.string()
                dims = [reader.take("<Q") for _ in range(reader.take("<I"))]
                reader.take("<I"), reader.take("<Q")  # tensor type, data offset
                total += math.prod(dims)
        except ValueError:
            continue
        architecture = metadata.get("general.architecture")
        summary = {"total": total, "architecture": architecture}
        if architecture and f"{architecture}.context_length" in metadata:
            summary["context_length"] = metadata[f"{architecture}.context_length"]
        return summary
    return None


def _string_list(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [item for item in value if isinstance(item, str)]
    return []


def _analyse(files: dict[str, _File]) -> _Analysis:
    def raw(path: str) -> bytes | None:
        return files[path].data if path in files else None

    card = _parse_card(raw("README.md"))
    card_or_empty = card or {}
    model_config = _parse_json_dict(raw("config.json"))
    adapter_config = _parse_json_dict(raw("adapter_config.json"))

    # The Hub's "config" property keeps only a few keys of config.json, plus a peft summary.
    config: dict[str, Any] = {}
    for key in ("architectures", "model_type", "quantization_config"):
        if model_config is not None and key in model_config:
            config[key] = model_config[key]
    if adapter_config is not None:
        config["peft"] = {
            "base_model_name_or_path": adapter_config.get("base_model_name_or_path"),
            "task_type": adapter_config.get("task_type"),
        }

    safetensors = _safetensors_parameters(files)
    gguf = _gguf_summary(files)
    has_gguf = any(p.endswith(".gguf") for p in files)

    library_name = card_or_empty.get("library_name")
    if not isinstance(library_name, str):
        library_name = (
            "peft"
            if adapter_config is not None
            else "transformers"
            if model_config is not None
            else "gguf"
            if has_gguf
            else None
        )
    pipeline_tag = card_or_empty.get("pipeline_tag")
    if not isinstance(pipeline_tag, str):
        architectures = _string_list(config.get("architectures"))
        pipeline_tag = (
            "text-generation" if any(a.endswith("ForCausalLM") for a in architectures) else None
        )

    base_models = [
        b for b in _string_list(card_or_empty.get("base_model")) if _REPO_ID.fullmatch(b)
    ]
    relation = None
    if base_models:
        declared = card_or_empty.get("base_model_relation")
        if declared in _RELATIONS:
            relation = declared
        elif adapter_config is not None:
            relation = "adapter"
        elif len(base_models) >= 2 or "mergekit_config.yml" in files:
            relation = "merge"
        elif "quantization_config" in config or has_gguf:
            relation = "quantized"
        else:
            relation = "finetune"

    tags: list[str] = []
    tags += [library_name] if library_name else []
    tags += ["safetensors"] if safetensors else []
    tags += ["gguf"] if has_gguf else []
    tags += [config["model_type"]] if isinstance(config.get("model_type"), str) else []
    tags += [pipeline_tag] if pipeline_tag else []
    tags += _string_list(card_or_empty.get("tags"))
    tags += [f"dataset:{d}" for d in _string_list(card_or_empty.get("datasets"))]
    tags += _string_list(card_or_empty.get("language"))
    for base in base_models:
        tags += [f"base_model:{base}", f"base_model:{relation}:{base}"]
    tags += [f"license:{lic}" for lic in _string_list(card_or_empty.get("license"))]
    tags += ["region:us"]

    return _Analysis(
        card=card,
        config=config or None,
        safetensors=safetensors,
        gguf=gguf,
        library_name=library_name,
        pipeline_tag=pipeline_tag,
        base_models=base_models,
        relation=relation,
        tags=list(dict.fromkeys(tags)),
    )


# ---------------------------------------------------------------------------------------
# HTTP responses
# ---------------------------------------------------------------------------------------


@dataclass
class _Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def _json_response(
    payload: Any, status: int = 200, headers: dict[str, str] | None = None
) -> _Response:
    body = json.dumps(payload).encode()
    return _Response(
        status, body, {"Content-Type": "application/json; charset=utf-8", **(headers or {})}
    )


def _error(
    status: int, message: str, code: str | None = None, headers: dict[str, str] | None = None
) -> _Response:
    extra = {"X-Error-Message": message, **({"X-Error-Code": code} if code else {})}
    return _json_response({"error": message}, status, {**extra, **(headers or {})})


class _HubError(Exception):
    """Raised inside a route to answer with an error response."""

    def __init__(self, response: _Response):
        self.response = response


# fmt: off
# Expand properties the Hub accepts (huggingface_hub's ExpandModelProperty_T, and xetEnabled).
_EXPANDABLE = frozenset((
    "author", "baseModels", "cardData", "childrenModelCount", "config", "createdAt", "disabled",
    "downloads", "downloadsAllTime", "evalResults", "gated", "gguf", "inference",
    "inferenceProviderMapping", "lastModified", "library_name", "likes", "mask_token",
    "model-index", "pipeline_tag", "private", "resourceGroup", "safetensors", "sha", "siblings",
    "spaces", "tags", "transformersInfo", "trendingScore", "usedStorage", "widgetData",
    "xetEnabled",
))
# What /api/models/{id} returns without expand (the real one adds widget and inference data).
_INFO_FIELDS = (
    "_id", "id", "private", "pipeline_tag", "library_name", "tags", "downloads", "likes",
    "modelId", "author", "sha", "lastModified", "gated", "disabled", "model-index", "config",
    "cardData", "siblings", "spaces", "createdAt", "safetensors", "gguf", "usedStorage",
)
# Expand properties of datasets (huggingface_hub's ExpandDatasetProperty_T).
_DATASET_EXPANDABLE = frozenset((
    "author", "cardData", "citation", "createdAt", "description", "disabled", "downloads",
    "downloadsAllTime", "gated", "lastModified", "likes", "mainSize", "paperswithcode_id",
    "private", "resourceGroup", "sha", "siblings", "tags", "trendingScore", "usedStorage",
))
# What /api/datasets/{id} returns without expand.
_DATASET_INFO_FIELDS = (
    "_id", "id", "author", "sha", "lastModified", "private", "gated", "disabled", "tags",
    "downloads", "likes", "cardData", "siblings", "createdAt", "usedStorage",
)
# What each item of /api/models holds without expand; full=true adds _LIST_FULL_FIELDS.
_LIST_FIELDS = (
    "_id", "id", "likes", "trendingScore", "private", "downloads", "tags", "pipeline_tag",
    "library_name", "createdAt", "modelId",
)
# fmt: on
_LIST_FULL_FIELDS = ["author", "sha", "lastModified", "gated", "disabled", "siblings"]
_SORT_KEYS = {"downloads", "likes", "createdAt", "lastModified", "trendingScore"}


@dataclass
class _Failure:
    path_substring: str
    statuses: list[int]
    retry_after: int | None


@dataclass
class _Delay:
    path_substring: str
    seconds: float
    times: int


# ---------------------------------------------------------------------------------------
# The fake Hub
# ---------------------------------------------------------------------------------------


class FakeHub:
    """In-memory Hub: repos with files and commits, served on 127.0.0.1 in a thread.

    ``page_size`` caps ``/api/models``, tree and commit pages (the real Hub: 1000);
    ``latency_s`` is slept before every response; ``tokens`` are the valid bearer tokens
    (every valid token is granted every private and gated repo); ``redirect_lfs`` makes
    ``/resolve`` of LFS files answer 302 to a "CDN" on another origin, as huggingface.co does.
    """

    def __init__(
        self,
        *,
        page_size: int = 1000,
        latency_s: float = 0.0,
        tokens: set[str] | None = None,
        redirect_lfs: bool = False,
    ):
        self.page_size = page_size
        self.latency_s = latency_s
        self.tokens = set(tokens or ())
        self.redirect_lfs = redirect_lfs
        # Faults a real server or proxy shows, switched on by tests: answer Range requests
        # with 200 and the whole file; make every list page's Link: next point to itself;
        # serve files under another commit than the one asked for (X-Repo-Commit).
        self.ignore_ranges = False
        self.link_loop = False
        self.served_commit: str | None = None
        self.listing_body: bytes | None = None  # served as every /api/models answer
        # Bodies of requests whose path holds drip_path are sent a byte every drip_s seconds.
        self.drip_path: str | None = None
        self.drip_s = 0.5
        self.drip_headers = False  # drip the status line and headers too
        # The share of requests that meet a random fault (429, 503, a reset connection, a
        # body cut short), for soak tests; seeded, so a run can be repeated.
        self.chaos = 0.0
        self._chaos_rng = random.Random(0)
        # At most this many requests a second; the rest get 429 with Retry-After: 1.
        self.rate_limit_per_s: float | None = None
        self._recent: list[float] = []
        self.endpoint = ""
        self._lock = threading.RLock()
        self._repos: dict[str, _Repo] = {}
        self._datasets: dict[str, _Repo] = {}  # dataset ids are a namespace of their own
        # tag -> model repos at head, in insertion order: the Hub answers filter=base_model:X
        # from an index. Scanning every repo per query made the server's CPU, not the
        # crawler's, the limit of the crawl benchmark. Rebuilt after any change.
        self._tag_index: dict[str, list[_Repo]] | None = None
        # Model info bodies by (repo type, repo, commit, query): the real Hub's CPU is not
        # the crawler's, and on a 2-core machine the test double's must not be either.
        self._info_bodies: dict[tuple[Any, ...], bytes] = {}
        self._blobs: dict[str, bytes] = {}  # sha256 -> content, served by the "CDN"
        self._commit_counter = 0
        self._log: list[RequestRecord] = []
        self._failures: list[_Failure] = []
        self._delays: list[_Delay] = []
        self._in_flight = 0
        self.max_in_flight = 0  # most requests the server was handling at once
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> str:
        if self._server is not None:
            return self.endpoint
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.hub = self
        port = self._server.server_address[1]
        self.endpoint = f"http://127.0.0.1:{port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self.endpoint

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.close_connections()  # idle keep-alive connections would otherwise linger
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeHub:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- content ------------------------------------------------------------------------

    def add_repo(
        self,
        repo_id: str,
        files: dict[str, bytes],
        *,
        gated: bool | str = False,
        private: bool = False,
        created_at: str | None = None,
        extra_tags: list[str] | None = None,
        downloads: int = 0,
        likes: int = 0,
        message: str = "initial commit",
        repo_type: str = "model",
    ) -> str:
        """Create ``repo_id`` (replacing any repo of that name) with one commit; return its sha.

        A ``.gitattributes`` with the Hub's default LFS patterns is added unless given.
        ``gated=True`` is served as ``"auto"``. ``repo_type="dataset"`` makes a dataset repo.
        """
        if not _REPO_ID.fullmatch(repo_id):
            raise ValueError(f"invalid repo id {repo_id!r}")
        with self._lock:
            first_commit_date = _iso(_EPOCH + dt.timedelta(minutes=self._commit_counter + 1))
            repo = _Repo(
                repo_id=repo_id,
                object_id=hashlib.sha1(repo_id.encode()).hexdigest()[:24],
                private=private,
                gated="auto" if gated is True else gated,
                created_at=created_at or first_commit_date,
                extra_tags=list(extra_tags or []),
                downloads=downloads,
                likes=likes,
                repo_type=repo_type,
            )
            self._repos_of(repo_type)[repo_id] = repo
            files = {".gitattributes": DEFAULT_GITATTRIBUTES, **files}
            return self._commit_locked(repo, "main", files, delete=(), message=message)

    def commit(
        self,
        repo_id: str,
        files: dict[str, bytes],
        *,
        delete: Iterable[str] = (),
        branch: str = "main",
        message: str = "Upload files",
        repo_type: str = "model",
    ) -> str:
        """Add a commit on ``branch`` (created from main if new); older shas stay readable."""
        with self._lock:
            repo = self._repos_of(repo_type)[repo_id]
            return self._commit_locked(repo, branch, files, delete=delete, message=message)

    def delete_repo(self, repo_id: str, *, repo_type: str = "model") -> None:
        with self._lock:
            del self._repos_of(repo_type)[repo_id]
            self._forget_derived()

    def add_tag_or_branch(
        self,
        repo_id: str,
        name: str,
        sha: str | None = None,
        *,
        branch: bool = False,
        repo_type: str = "model",
    ) -> None:
        """Point tag (or branch) ``name`` at ``sha`` (default: the head of main)."""
        with self._lock:
            repo = self._repos_of(repo_type)[repo_id]
            target = sha or repo.branches["main"]
            if target not in repo.commits:
                raise KeyError(f"{repo_id} has no commit {target}")
            (repo.branches if branch else repo.tags)[name] = target
            self._forget_derived()

    def add_local_tree(self, root: Path) -> dict[str, str]:
        """Upload every ``<org>/<name>/`` folder under ``root`` as a repo; return repo_id -> sha."""
        shas: dict[str, str] = {}
        folders = Path(root).glob("*/*")
        for folder in sorted(f for f in folders if f.is_dir() and not f.name.startswith(".")):
            if folder.parent.name.startswith("."):
                continue
            files = {name: path.read_bytes() for name, path in iter_repo_files(folder)}
            repo_id = f"{folder.parent.name}/{folder.name}"
            shas[repo_id] = self.add_repo(repo_id, files)
        return shas

    def head_sha(self, repo_id: str, revision: str = "main", *, repo_type: str = "model") -> str:
        with self._lock:
            commit = self._repos_of(repo_type)[repo_id].resolve(revision)
            if commit is None:
                raise KeyError(f"{repo_id} has no revision {revision}")
            return commit.sha

    def _repos_of(self, repo_type: str) -> dict[str, _Repo]:
        if repo_type == "model":
            return self._repos
        if repo_type == "dataset":
            return self._datasets
        raise ValueError(f"FakeHub serves model and dataset repos, not {repo_type!r}")

    def _commit_locked(
        self,
        repo: _Repo,
        branch: str,
        changes: dict[str, bytes],
        *,
        delete: Iterable[str],
        message: str,
    ) -> str:
        parent_sha = repo.branches.get(branch) or repo.branches.get("main")
        parent = repo.commits.get(parent_sha) if parent_sha else None
        raw = {path: f.data for path, f in (parent.files if parent else {}).items()}
        for path in delete:
            raw.pop(path, None)
        raw.update(changes)
        patterns = _lfs_patterns(raw.get(".gitattributes"))
        files = {path: _File.build(path, data, patterns) for path, data in sorted(raw.items())}

        self._commit_counter += 1
        digest = hashlib.sha1(f"{repo.repo_id}\n{self._commit_counter}\n{parent_sha}\n".encode())
        for path, file in files.items():
            digest.update(f"{path}\0{file.oid}\n".encode())
        sha = digest.hexdigest()
        date = _iso(_EPOCH + dt.timedelta(minutes=self._commit_counter))
        repo.commits[sha] = _Commit(sha, parent_sha, files, message, date, _analyse(files))
        repo.branches[branch] = sha
        self._forget_derived()
        for file in files.values():
            if file.is_lfs:
                self._blobs[file.sha256] = file.data
        return sha

    # -- fault injection ----------------------------------------------------------------

    def fail_next(
        self, path_substring: str, statuses: list[int], *, retry_after: int | None = None
    ) -> None:
        """The next ``len(statuses)`` requests whose path (or query) contains the substring
        answer these statuses instead (with ``Retry-After`` when given)."""
        with self._lock:
            self._failures.append(_Failure(path_substring, list(statuses), retry_after))

    def delay(self, path_substring: str, seconds: float, *, times: int = 1) -> None:
        """Hang ``seconds`` before answering the next ``times`` matching requests."""
        with self._lock:
            self._delays.append(_Delay(path_substring, seconds, times))

    def set_chaos(self, share: float, *, seed: int = 0) -> None:
        """From now on, ``share`` of the requests meet a random fault (seeded)."""
        with self._lock:
            self.chaos = share
            self._chaos_rng = random.Random(seed)

    def _chaos_fault(self) -> str | None:
        if not self.chaos:
            return None
        with self._lock:
            if self._chaos_rng.random() >= self.chaos:
                return None
            return self._chaos_rng.choice(("429", "503", "reset", "truncate"))

    def _rate_limited(self) -> _Response | None:
        """429 (Retry-After: 1) for a request over ``rate_limit_per_s`` in the last second."""
        if self.rate_limit_per_s is None:
            return None
        now = time.monotonic()
        with self._lock:
            self._recent = [moment for moment in self._recent if now - moment < 1.0]
            if len(self._recent) >= self.rate_limit_per_s:
                return _error(429, "Too Many Requests", None, {"Retry-After": "1"})
            self._recent.append(now)
        return None

    def _take_failure(self, target: str) -> _Response | None:
        with self._lock:
            for failure in self._failures:
                if failure.statuses and failure.path_substring in target:
                    status = failure.statuses.pop(0)
                    headers = {}
                    if failure.retry_after is not None:
                        headers["Retry-After"] = str(failure.retry_after)
                    message = "Too Many Requests" if status == 429 else f"Injected HTTP {status}"
                    return _error(status, message, headers=headers)
        return None

    def _take_delay(self, target: str) -> float:
        with self._lock:
            for delay in self._delays:
                if delay.times > 0 and delay.path_substring in target:
                    delay.times -= 1
                    return delay.seconds
        return 0.0

    # -- accounting ---------------------------------------------------------------------

    @property
    def requests(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._log)

    def count(self, *, method: str | None = None, path_contains: str | None = None) -> int:
        return sum(1 for r in self.requests if _record_matches(r, method, path_contains))

    def bytes_sent(self, path_contains: str | None = None) -> int:
        return sum(r.bytes_sent for r in self.requests if _record_matches(r, None, path_contains))

    def reset_log(self) -> None:
        with self._lock:
            self._log.clear()
            self.max_in_flight = 0

    # -- request handling ---------------------------------------------------------------

    def _serve(self, handler: _Handler) -> None:
        started = time.monotonic()
        with self._lock:
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
        try:
            raw_path, _, raw_query = handler.path.partition("?")
            path, query = unquote(raw_path), unquote_plus(raw_query)
            target = f"{path}?{query}" if query else path
            hang = self._take_delay(target)
            response = self._take_failure(target) or self._rate_limited()
            if response is None:
                try:
                    response = self._route(handler.command, raw_path, raw_query, handler)
                except _HubError as error:
                    response = error.response
                except Exception:  # a bug in the fake: answer 500 and show it in the test log
                    traceback.print_exc(file=sys.stderr)
                    response = _error(500, "FakeHub internal error")
            remaining = self.latency_s + hang - (time.monotonic() - started)
            if remaining > 0:
                time.sleep(remaining)
            include_body = handler.command != "HEAD"
            fault = self._chaos_fault()
            if fault == "429":
                response = _error(429, "Too Many Requests", None, {"Retry-After": "0"})
            elif fault == "503":
                response = _error(503, "Service Unavailable")
            record = RequestRecord(
                method=handler.command,
                path=path,
                query=query,
                range=handler.headers.get("Range"),
                status=0 if fault == "reset" else response.status,
                bytes_sent=len(response.body) if include_body else 0,
                auth_present=handler.headers.get("Authorization") is not None,
            )
            # Logged before writing: a client holding its answer must find the request counted.
            with self._lock:
                self._log.append(record)
            drip = self.drip_s if self.drip_path and self.drip_path in target else None
            sent = handler.send(
                response,
                include_body=include_body,
                drip_s=drip,
                drip_headers=self.drip_headers,
                reset=fault == "reset",
                truncate=fault == "truncate",
            )
            if not sent and record.bytes_sent:
                self._forget_bytes(record)
        finally:
            with self._lock:
                self._in_flight -= 1

    def _forget_bytes(self, record: RequestRecord) -> None:
        """The client went away before the body was written (e.g. it timed out)."""
        with self._lock:
            for index, logged in enumerate(self._log):
                if logged is record:
                    self._log[index] = replace(record, bytes_sent=0)

    def _route(self, method: str, raw_path: str, raw_query: str, handler: _Handler) -> _Response:
        if method not in ("GET", "HEAD"):
            return _error(405, f"{method} is not supported by FakeHub")
        query = parse_qsl(raw_query, keep_blank_values=True)
        segments = [unquote(s) for s in raw_path.strip("/").split("/")]
        if segments[0] == "_cdn":  # signed CDN URL: no auth
            return self._serve_cdn(segments, handler.headers.get("Range"))

        token_ok = self._check_token(handler.headers.get("Authorization"))
        if segments[:2] == ["api", "models"]:
            if len(segments) == 2:
                return self._list_models(query, token_ok)
            return self._repo_api(segments[2:], query, token_ok)
        if segments[:2] == ["api", "datasets"] and len(segments) > 2:
            return self._repo_api(segments[2:], query, token_ok, repo_type="dataset")
        if segments[:2] == ["api", "whoami-v2"]:
            if not token_ok:
                return _error(401, "Invalid username or password.")
            return _json_response({"type": "user", "name": "fake-user", "auth": {}})
        if segments[0] == "datasets" and "resolve" in segments[2:4]:
            return self._resolve(
                segments[1:], handler.headers.get("Range"), token_ok, repo_type="dataset"
            )
        if "resolve" in segments[1:3]:
            return self._resolve(segments, handler.headers.get("Range"), token_ok)
        return _error(404, "Sorry, we can't find the page you are looking for.")

    def _check_token(self, authorization: str | None) -> bool:
        """True for a valid token, False for none; an invalid token is a 401 everywhere."""
        if authorization is None:
            return False
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() == "bearer" and token.strip() in self.tokens:
            return True
        raise _HubError(_error(401, "Invalid credentials in Authorization header"))

    # -- repo lookup --------------------------------------------------------------------

    def _visible_repo(self, repo_id: str, token_ok: bool, repo_type: str = "model") -> _Repo:
        with self._lock:
            repo = self._repos_of(repo_type).get(repo_id)
        if repo is None or (repo.private and not token_ok):
            if token_ok:
                raise _HubError(_error(404, "Repository not found", "RepoNotFound"))
            raise _HubError(_error(401, "Invalid username or password.", "RepoNotFound"))
        return repo

    def _commit_at(self, repo: _Repo, revision: str) -> _Commit:
        with self._lock:
            commit = repo.resolve(revision)
        if commit is None:
            raise _HubError(_error(404, f"Invalid rev id: {revision}", "RevisionNotFound"))
        return commit

    def _split_repo_id(
        self, segments: list[str], keywords: set[str], repo_type: str = "model"
    ) -> tuple[str, list[str]]:
        """``org/name/<kw>/...`` or ``name/<kw>/...``: the Hub allows both id forms."""
        with self._lock:
            two_known = "/".join(segments[:2]) in self._repos_of(repo_type)
        if len(segments) >= 2 and segments[1] in keywords and not two_known:
            return segments[0], segments[1:]
        return "/".join(segments[:2]), segments[2:]

    # -- /api/models/{repo_id}/... ------------------------------------------------------

    def _repo_api(
        self,
        segments: list[str],
        query: list[tuple[str, str]],
        token_ok: bool,
        repo_type: str = "model",
    ) -> _Response:
        keywords = {"revision", "tree", "refs", "commits"}
        repo_id, rest = self._split_repo_id(segments, keywords, repo_type)
        repo = self._visible_repo(repo_id, token_ok, repo_type)
        action = rest[0] if rest else "info"
        if action == "info" or action == "revision":
            revision = "/".join(rest[1:]) if action == "revision" else "main"
            commit = self._commit_at(repo, revision)
            key = (repo.repo_type, repo.repo_id, commit.sha, tuple(query))
            body = self._info_bodies.get(key)
            if body is None:
                body = json.dumps(self._info_payload(repo, commit, query)).encode()
                self._info_bodies[key] = body
            return _Response(200, body, {"Content-Type": "application/json; charset=utf-8"})
        if action == "tree":
            commit = self._commit_at(repo, rest[1] if len(rest) > 1 else "main")
            return self._tree(repo, commit, "/".join(rest[2:]), query)
        if action == "refs":
            return self._refs(repo, query)
        if action == "commits":
            commit = self._commit_at(repo, rest[1] if len(rest) > 1 else "main")
            return self._commits(repo, commit, query)
        return _error(404, "Sorry, we can't find the page you are looking for.")

    def _info_payload(
        self, repo: _Repo, commit: _Commit, query: list[tuple[str, str]]
    ) -> dict[str, Any]:
        is_dataset = repo.repo_type == "dataset"
        expand = _expand_values(query, _DATASET_EXPANDABLE if is_dataset else _EXPANDABLE)
        blobs = _truthy(dict(query).get("blobs"))
        if expand:
            return self._model_json(repo, commit, ["_id", "id", *expand], blobs=blobs)
        fields = _DATASET_INFO_FIELDS if is_dataset else _INFO_FIELDS
        return self._model_json(repo, commit, fields, blobs=blobs)

    def _model_json(
        self, repo: _Repo, commit: _Commit, fields: Iterable[str], *, blobs: bool = False
    ) -> dict[str, Any]:
        payload: dict[str, Any] = {}
        for name in fields:
            value = self._property(repo, commit, name, blobs=blobs)
            if value is not None:  # the Hub leaves out what a repo does not have
                payload[name] = value
        return payload

    def _property(self, repo: _Repo, commit: _Commit, name: str, *, blobs: bool) -> Any:
        analysis = commit.analysis
        card = analysis.card or {}
        simple = {
            "_id": repo.object_id,
            "id": repo.repo_id,
            "modelId": repo.repo_id,
            "author": repo.repo_id.split("/")[0] if "/" in repo.repo_id else None,
            "sha": commit.sha,
            "lastModified": commit.date,
            "createdAt": repo.created_at,
            "private": repo.private,
            "gated": repo.gated,
            "disabled": False,
            "downloads": repo.downloads,
            "downloadsAllTime": repo.downloads,
            "likes": repo.likes,
            "trendingScore": 0,
            "pipeline_tag": analysis.pipeline_tag,
            "library_name": analysis.library_name,
            "cardData": analysis.card,
            "config": analysis.config,
            "safetensors": analysis.safetensors,
            "gguf": analysis.gguf,
            "spaces": [],
            "model-index": card.get("model-index"),
            "widgetData": card.get("widget"),
            "xetEnabled": False,
        }
        if name in simple:
            return simple[name]
        if name == "tags":
            return repo.tags_at(commit)
        if name == "siblings":
            return [_sibling(path, file, blobs) for path, file in commit.files.items()]
        if name == "usedStorage":
            with self._lock:
                unique = {
                    f.oid: len(f.data) for c in repo.commits.values() for f in c.files.values()
                }
            return sum(unique.values())
        if name == "baseModels":
            if not analysis.base_models:
                return None
            with self._lock:
                known = {
                    b: self._repos[b].object_id for b in analysis.base_models if b in self._repos
                }
            models = [{"_id": known.get(b, ""), "id": b} for b in analysis.base_models]
            return {"relation": analysis.relation, "models": models}
        if name == "childrenModelCount":
            with self._lock:  # from the tag index, as the Hub counts: not a scan per request
                return len(self._tagged(f"base_model:{repo.repo_id}"))
        return None  # accepted by the Hub but not emulated (inference, transformersInfo, ...)

    # -- /api/models (list) -------------------------------------------------------------

    def _list_models(self, query: list[tuple[str, str]], token_ok: bool) -> _Response:
        if self.listing_body is not None:  # a broken server's answer, verbatim
            return _Response(200, self.listing_body, {"Content-Type": "application/json"})
        params = dict(query)
        expand = _expand_values(query)
        if expand and any(params.get(k) for k in ("full", "config", "cardData")):
            return _error(
                400, '"expand" cannot be used together with "full", "config" or "cardData"'
            )
        filters = [v for k, v in query if k == "filter" and v]
        search = params.get("search", "").lower()
        with self._lock:
            candidates = self._tagged(filters[0]) if filters else list(self._repos.values())
            repos = [r for r in candidates if token_ok or not r.private]
        selected = []
        for repo in repos:
            tags = set(repo.tags_at(repo.head))
            if not all(f in tags for f in filters):
                continue
            if params.get("author") and not repo.repo_id.startswith(params["author"] + "/"):
                continue
            if search and search not in repo.repo_id.lower():
                continue
            if (
                "pipeline_tag" in params
                and repo.head.analysis.pipeline_tag != params["pipeline_tag"]
            ):
                continue
            if "gated" in params and bool(repo.gated) != _truthy(params["gated"]):
                continue
            selected.append(repo)
        sort = params.get("sort")
        if sort in _SORT_KEYS:  # the client sends no direction: the Hub sorts descending
            selected.sort(key=lambda r: self._property(r, r.head, sort, blobs=False), reverse=True)

        if expand:
            fields = ["_id", "id", *expand]
        else:
            fields = list(_LIST_FIELDS)
            fields += _LIST_FULL_FIELDS if _truthy(params.get("full")) else []
            fields += ["config"] if _truthy(params.get("config")) else []
            fields += ["cardData"] if _truthy(params.get("cardData")) else []
        limit = int(params["limit"]) if params.get("limit", "").isdigit() else None
        page_size = min(self.page_size, limit) if limit else self.page_size
        page, headers = self._paginate(selected, "/api/models", query, page_size)
        payload = [self._model_json(r, r.head, fields) for r in page]
        return _json_response(payload, headers=headers)

    def _forget_derived(self) -> None:
        """Drop the tag index and cached info bodies after any change to the repos."""
        self._tag_index = None
        self._info_bodies = {}

    def _tagged(self, tag: str) -> list[_Repo]:
        """Model repos whose head carries ``tag`` (call with the lock held)."""
        if self._tag_index is None:
            index: dict[str, list[_Repo]] = {}
            for repo in self._repos.values():
                for name in repo.tags_at(repo.head):
                    index.setdefault(name, []).append(repo)
            self._tag_index = index
        return list(self._tag_index.get(tag, []))

    def _paginate(
        self, items: list[Any], path: str, query: list[tuple[str, str]], page_size: int
    ) -> tuple[list[Any], dict[str, str]]:
        """Cursor pagination with a GitHub-style ``Link: <url>; rel="next"`` header."""
        cursor = dict(query).get("cursor")
        try:
            offset = int(base64.urlsafe_b64decode(cursor.encode()).decode()) if cursor else 0
        except ValueError as error:
            raise _HubError(_error(400, "Invalid cursor")) from error
        end = offset + max(1, page_size)
        if end >= len(items) and not self.link_loop:
            return items[offset:], {}
        kept = [(k, v) for k, v in query if k != "cursor"]
        following = offset if self.link_loop else end  # a Link: next that points to itself
        kept.append(("cursor", base64.urlsafe_b64encode(str(following).encode()).decode()))
        url = f"{self.endpoint}{quote(path)}?{urlencode(kept)}"
        return items[offset:end], {"Link": f'<{url}>; rel="next"'}

    # -- tree, refs, commits ------------------------------------------------------------

    def _tree(
        self, repo: _Repo, commit: _Commit, prefix: str, query: list[tuple[str, str]]
    ) -> _Response:
        params = dict(query)
        recursive = _truthy(params.get("recursive"))
        directories = {
            "/".join(parts[:i])
            for parts in (p.split("/") for p in commit.files)
            for i in range(1, len(parts))
        }
        prefix = prefix.strip("/")
        if prefix and prefix not in directories:
            raise _HubError(
                _error(404, f"{prefix} does not exist on the revision", "EntryNotFound")
            )
        base = f"{prefix}/" if prefix else ""

        def listed(path: str) -> bool:
            return path.startswith(base) and (recursive or "/" not in path[len(base) :])

        entries: list[dict[str, Any]] = []
        for directory in sorted(d for d in directories if listed(d)):
            inside = sorted(f.oid for p, f in commit.files.items() if p.startswith(directory + "/"))
            oid = hashlib.sha1("\n".join([directory, *inside]).encode()).hexdigest()
            entries.append({"type": "directory", "oid": oid, "size": 0, "path": directory})
        for path, file in commit.files.items():
            if listed(path):
                entry: dict[str, Any] = {"type": "file", "oid": file.oid, "size": len(file.data)}
                if file.is_lfs:
                    entry["lfs"] = {
                        "oid": file.sha256,
                        "size": len(file.data),
                        "pointerSize": file.pointer_size,
                    }
                entry["path"] = path
                entries.append(entry)
        page_size = min(self.page_size, 50) if _truthy(params.get("expand")) else self.page_size
        tree_path = f"/api/{repo.repo_type}s/{repo.repo_id}/tree/{commit.sha}" + (
            f"/{prefix}" if prefix else ""
        )
        page, headers = self._paginate(entries, tree_path, query, page_size)
        return _json_response(page, headers=headers)

    def _refs(self, repo: _Repo, query: list[tuple[str, str]]) -> _Response:
        with self._lock:
            branches, tags = dict(repo.branches), dict(repo.tags)

        def refs(names: dict[str, str], kind: str) -> list[dict[str, str]]:
            return [
                {"name": name, "ref": f"refs/{kind}/{name}", "targetCommit": sha}
                for name, sha in sorted(names.items())
            ]

        payload: dict[str, Any] = {
            "branches": refs(branches, "heads"),
            "converts": [],
            "tags": refs(tags, "tags"),
        }
        if _truthy(dict(query).get("include_prs")):
            payload["pullRequests"] = []
        return _json_response(payload)

    def _commits(self, repo: _Repo, commit: _Commit, query: list[tuple[str, str]]) -> _Response:
        history: list[dict[str, Any]] = []
        current: _Commit | None = commit
        while current is not None:
            history.append(
                {
                    "id": current.sha,
                    "title": current.title,
                    "message": "",
                    "authors": [{"user": "fake-user"}],
                    "date": current.date,
                }
            )
            current = repo.commits.get(current.parent) if current.parent else None
        path = f"/api/{repo.repo_type}s/{repo.repo_id}/commits/{commit.sha}"
        page, headers = self._paginate(history, path, query, self.page_size)
        return _json_response(page, headers=headers)

    # -- /{repo_id}/resolve/{revision}/{path} -------------------------------------------

    def _resolve(
        self,
        segments: list[str],
        range_header: str | None,
        token_ok: bool,
        repo_type: str = "model",
    ) -> _Response:
        repo_id, rest = self._split_repo_id(segments, {"resolve"}, repo_type)
        if len(rest) < 3 or rest[0] != "resolve":
            return _error(404, "Sorry, we can't find the page you are looking for.")
        revision, filename = rest[1], "/".join(rest[2:])
        repo = self._visible_repo(repo_id, token_ok, repo_type)
        if repo.gated and not token_ok:
            message = (
                f"Access to {repo_type} {repo_id} is restricted. You must have access to it and be "
                "authenticated to access it. Please log in."
            )
            raise _HubError(_error(401, message, "GatedRepo"))
        commit = self._commit_at(repo, revision)
        file = commit.files.get(filename)
        if file is None:
            raise _HubError(
                _error(404, "Entry not found", "EntryNotFound", {"X-Repo-Commit": commit.sha})
            )
        served = self.served_commit or commit.sha
        headers = {"X-Repo-Commit": served, "ETag": file.etag, "Accept-Ranges": "bytes"}
        if file.is_lfs:
            headers |= {"X-Linked-Etag": file.etag, "X-Linked-Size": str(len(file.data))}
        if file.is_lfs and self.redirect_lfs:
            # Another origin (localhost vs 127.0.0.1) so the client treats it as a CDN.
            port = self.endpoint.rsplit(":", 1)[1]
            location = f"http://localhost:{port}/_cdn/{file.sha256}?repo={quote(repo_id)}"
            return _Response(302, b"", {**headers, "Location": location})
        content_type = "application/octet-stream" if file.is_lfs else "text/plain; charset=utf-8"
        range_header = None if self.ignore_ranges else range_header
        return _ranged(file.data, range_header, {**headers, "Content-Type": content_type})

    def _serve_cdn(self, segments: list[str], range_header: str | None) -> _Response:
        with self._lock:
            data = self._blobs.get(segments[1]) if len(segments) == 2 else None
        if data is None:
            return _Response(403, b"AccessDenied", {"Content-Type": "application/xml"})
        headers = {"ETag": f'"{segments[1]}"', "Accept-Ranges": "bytes"}
        return _ranged(data, range_header, {**headers, "Content-Type": "application/octet-stream"})


def _ranged(data: bytes, range_header: str | None, headers: dict[str, str]) -> _Response:
    """Serve ``data`` honouring a single ``bytes=`` range (others are ignored, as S3 does)."""
    size = len(data)
    match = re.fullmatch(r"\s*bytes=(\d*)-(\d*)\s*", range_header or "")
    if match is None or match.groups() == ("", ""):
        return _Response(200, data, headers)
    first, last = match.groups()
    if first == "":  # suffix range: the last N bytes
        start, end = max(0, size - int(last)), size - 1
    else:
        start = int(first)
        end = min(int(last), size - 1) if last else size - 1
        if last and int(last) < start:
            return _Response(200, data, headers)  # syntactically invalid: ignore the header
    if start >= size or end < start:
        return _Response(416, b"", {**headers, "Content-Range": f"bytes */{size}"})
    return _Response(
        206, data[start : end + 1], {**headers, "Content-Range": f"bytes {start}-{end}/{size}"}
    )


def _sibling(path: str, file: _File, blobs: bool) -> dict[str, Any]:
    if not blobs:
        return {"rfilename": path}
    sibling: dict[str, Any] = {"rfilename": path, "size": len(file.data), "blobId": file.oid}
    if file.is_lfs:
        sibling["lfs"] = {
            "sha256": file.sha256,
            "size": len(file.data),
            "pointerSize": file.pointer_size,
        }
    return sibling


def _expand_values(
    query: list[tuple[str, str]], allowed: frozenset[str] = _EXPANDABLE
) -> list[str]:
    values = [v for k, v in query if k in ("expand", "expand[]") and v]
    unknown = sorted(set(values) - allowed)
    if unknown:
        raise _HubError(_error(400, f'"expand" contains unknown properties: {", ".join(unknown)}'))
    return list(dict.fromkeys(values))


def _truthy(value: str | None) -> bool:
    return (value or "").lower() in ("1", "true", "yes")


def _record_matches(record: RequestRecord, method: str | None, path_contains: str | None) -> bool:
    if method is not None and record.method != method.upper():
        return False
    return path_contains is None or path_contains in record.path


# ---------------------------------------------------------------------------------------
# HTTP plumbing
# ---------------------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # the benchmark opens many connections at once
    allow_reuse_address = True
    hub: FakeHub

    def __init__(self, *args: Any, **kwargs: Any):
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(*args, **kwargs)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: every response carries Content-Length
    disable_nagle_algorithm = True  # headers and body are separate writes: avoid 40 ms stalls
    server: _Server

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)  # drain the body so the connection stays usable
        self.server.hub._serve(self)

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = _dispatch

    def send(
        self,
        response: _Response,
        *,
        include_body: bool,
        drip_s: float | None = None,
        drip_headers: bool = False,
        reset: bool = False,
        truncate: bool = False,
    ) -> bool:
        """Write the response (its body a byte at a time, ``drip_s`` apart, when given, and
        its status line and headers too with ``drip_headers``); False if the client went
        away first. ``reset`` closes the connection without an answer; ``truncate`` sends
        half the body, then closes it."""
        if reset:
            self.close_connection = True
            return False
        body = response.body if include_body else b""
        cut = truncate and len(body) > 1
        try:
            self.send_response(response.status)
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(response.body)))
            if drip_s is not None and drip_headers:
                # http.server keeps the head in _headers_buffer until end_headers().
                head = b"".join(self._headers_buffer) + b"\r\n"
                self._headers_buffer = []
                self._drip(head, drip_s)
            else:
                self.end_headers()
            if cut:
                self.close_connection = True
                self.wfile.write(body[: len(body) // 2])
            elif drip_s is not None:
                self._drip(body, drip_s)
            elif body:
                self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # e.g. the client timed out during a delay()
            return False
        return not cut

    def _drip(self, data: bytes, drip_s: float) -> None:
        for index in range(len(data)):
            self.wfile.write(data[index : index + 1])
            self.wfile.flush()
            time.sleep(drip_s)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the request log is FakeHub.requests


def iter_repo_files(root: Path) -> Iterator[tuple[str, Path]]:
    """(posix relative path, path) of every file under ``root``, skipping ``.git``."""
    for path in sorted(Path(root).rglob("*")):
        if path.is_file() and ".git" not in path.relative_to(root).parts:
            yield path.relative_to(root).as_posix(), path
