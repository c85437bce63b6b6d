"""What a loopback Hub repo holds: files (Git or LFS), commits, branches and tags, and
what the Hub derives from a commit's files (card data, config summary, parameter
counts, library, pipeline tag, base models and their relation, tags).
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import hashlib
import json
import math
import re
import struct
from dataclasses import dataclass, field
from typing import Any, ClassVar

import yaml

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
REPO_ID = re.compile(r"[A-Za-z0-9][\w.\-]*(/[\w.\-]+)?")
_SHA40 = re.compile(r"[0-9a-f]{40}")
# Same front-matter regex as huggingface_hub.repocard.
_YAML_BLOCK = re.compile(r"^(\s*---[\r\n]+)([\S\s]*?)([\r\n]+---(\r\n|\n|$))")
EPOCH = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)


def iso(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _git_blob_oid(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


@dataclass(frozen=True)
class RepoFile:
    data: bytes
    is_lfs: bool
    oid: str  # git blob oid (of the LFS pointer for LFS files), as the Hub reports it
    sha256: str
    pointer_size: int

    @classmethod
    def build(cls, path: str, data: bytes, lfs_patterns: list[str]) -> RepoFile:
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


def lfs_patterns(gitattributes: bytes | None) -> list[str]:
    text = (gitattributes or b"").decode("utf-8", "replace")
    return [
        line.split()[0]
        for line in text.splitlines()
        if line.strip() and not line.startswith("#") and "filter=lfs" in line
    ]


@dataclass(frozen=True)
class Analysis:
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
class Commit:
    sha: str
    parent: str | None
    files: dict[str, RepoFile]
    title: str
    date: str
    analysis: Analysis


@dataclass
class Repo:
    repo_id: str
    object_id: str  # the Hub's Mongo-style "_id"
    private: bool
    gated: bool | str
    created_at: str
    extra_tags: list[str]
    downloads: int
    likes: int
    commits: dict[str, Commit] = field(default_factory=dict)
    repo_type: str = "model"  # or "dataset": its own id namespace and URL prefix
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def head(self) -> Commit:
        return self.commits[self.branches["main"]]

    def resolve(self, revision: str) -> Commit | None:
        sha = self.branches.get(revision) or self.tags.get(revision)
        if sha is None and _SHA40.fullmatch(revision):
            sha = revision
        return self.commits.get(sha) if sha else None

    def tags_at(self, commit: Commit) -> list[str]:
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


def _safetensors_parameters(files: dict[str, RepoFile]) -> dict[str, Any] | None:
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


def _gguf_summary(files: dict[str, RepoFile]) -> dict[str, Any] | None:
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


def analyse(files: dict[str, RepoFile]) -> Analysis:
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

    base_models = [b for b in _string_list(card_or_empty.get("base_model")) if REPO_ID.fullmatch(b)]
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

    return Analysis(
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
