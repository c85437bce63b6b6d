"""Validate repo ids, revisions and file names; classify parent references.

Validators raise ``InvalidReferenceError`` (one line, quoting the value) and are used
wherever a name from a card, config or user reaches a URL or a path. ``parse_reference``
never raises: it classifies what a card or config wrote as a parent.

>>> ref = parse_reference("org/base@v1.0+org/lora")
>>> ref.kind, ref.repo_id, ref.revision, ref.lora
('repo', 'org/base', 'v1.0', 'org/lora')
>>> parse_reference("/home/me/ckpt").kind
'local_path'
"""

from __future__ import annotations

import re
from collections.abc import Callable

from lineage.errors import InvalidReferenceError
from lineage.local_refs import (
    hub_candidate,
    is_bare_name,
    is_working_folder,
    normalise_local_path,
)
from lineage.records import ModelReference

MAX_REPO_PART_CHARS = 96
MAX_REVISION_CHARS = 255
MAX_FILENAME_CHARS = 1024
# A reference longer than this is not a model name; keep only its start in records.
MAX_REFERENCE_CHARS = 512

# The Hub's rule, as huggingface_hub.utils.validate_repo_id checks it (ASCII only): a part
# starts and ends with a letter, digit or underscore and holds letters, digits, "-", "_", ".".
_REPO_PART = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?", re.ASCII)
# Characters git refuses in ref names (git check-ref-format), besides control characters.
_REVISION_FORBIDDEN = set(" ~^:?*[\\")
_WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:([\\/]|$)")
_HUB_HOSTS = ("huggingface.co/", "hf.co/", "www.huggingface.co/")


def _validated(value: str, what: str, problem_of: Callable[[str], str | None]) -> str:
    if not isinstance(value, str):
        raise InvalidReferenceError(f"{what} must be a string, not {type(value).__name__}")
    problem = problem_of(value)
    if problem:
        raise InvalidReferenceError(f"invalid {what} {_quote(value)}: {problem}")
    return value


def validate_repo_id(value: str) -> str:
    """Return ``value`` if it is a valid Hub model repo id (``name`` or ``namespace/name``)."""
    return _validated(value, "repo id", _repo_id_problem)


def validate_revision(value: str) -> str:
    """Return ``value`` if it is a safe branch, tag or commit name."""
    return _validated(value, "revision", _revision_problem)


def validate_filename(value: str) -> str:
    """Return ``value`` if it is a safe repo-relative file path (``a/b.safetensors``)."""
    return _validated(value, "file name", _filename_problem)


def parse_reference(raw: str) -> ModelReference:
    """Classify a parent reference as written: a repo (maybe ``@rev`` / ``+lora``), a local
    path, or invalid with the problem said. Never raises."""
    if not isinstance(raw, str):
        return _invalid(repr(raw), f"expected a string, got {type(raw).__name__}")
    text = raw.strip()
    if not text:
        return _invalid(text, "empty reference")
    if len(text) > MAX_REFERENCE_CHARS:
        return _invalid(text, f"longer than {MAX_REFERENCE_CHARS} characters")
    if _has_control_chars(text):
        return _invalid(text, "contains control characters")
    if text.lower().startswith("file://") or _looks_like_local_path(text):
        path, plus, lora = text.partition("+")  # mergekit's model+lora, paths included
        return _local(text, path.strip(), lora=lora.strip() or None if plus else None)

    hub_path = _strip_hub_url(text)
    if hub_path is not None:
        return _parse_hub_url_path(text, hub_path)
    if "://" in text:
        return _invalid(text, "a URL that is not a Hugging Face model page")

    # mergekit splits "model+lora" first, then "path@revision" in each part.
    model_part, plus, lora = text.partition("+")
    if plus:
        if "+" in lora:
            return _invalid(text, "more than one '+' (mergekit allows one: model+lora)")
        lora = lora.strip()
        model_part = model_part.strip()
        if not lora:
            return _invalid(text, "nothing after '+' (expected model+lora)")
        lora_problem = _lora_problem(lora)
        if lora_problem:
            return _invalid(text, lora_problem)
    name = model_part.partition("@")[0]
    if _looks_like_local_path(model_part) or name.count("/") >= 2 or name.endswith("/"):
        return _local(text, model_part, lora=lora or None)
    if (is_bare_name(name) or is_working_folder(name)) and not _repo_id_problem(name):
        # A namespace-less name in a recipe is a folder next to where mergekit ran (it tries
        # the path first); the Hub has had no namespace-less repos for years.
        return _local(text, model_part, lora=lora or None)
    return _repo_reference(text, model_part, lora=lora or None)


def _local(raw: str, path: str | None = None, *, lora: str | None = None) -> ModelReference:
    """A local reference, normalised, with the Hub repo its name plausibly maps to."""
    path = path if path is not None else raw
    candidate = hub_candidate(path)
    return ModelReference(
        raw=raw,
        kind="local_path",
        lora=lora,
        local_path=normalise_local_path(path),
        candidate=candidate.repo_id if candidate else None,
        candidate_revision=candidate.revision if candidate else None,
        candidate_confidence=candidate.confidence if candidate else None,
    )


# ----------------------------------------------------------------------------- helpers


def _repo_reference(raw: str, model_part: str, *, lora: str | None) -> ModelReference:
    name, at, revision = model_part.partition("@")
    if at:
        if "@" in revision:
            return _invalid(raw, "more than one '@' (expected repo@revision)")
        problem = _revision_problem(revision)
        if problem:
            return _invalid(raw, f"revision {_quote(revision)}: {problem}")
    problem = _repo_id_problem(name)
    if problem:
        return _invalid(raw, f"repo id {_quote(name)}: {problem}")
    return ModelReference(
        raw=raw, kind="repo", repo_id=name, revision=revision if at else None, lora=lora
    )


def _parse_hub_url_path(raw: str, path: str) -> ModelReference:
    # huggingface.co/org/name, optionally /tree/<revision> (the Hub's page of a revision).
    parts = [part for part in path.split("?")[0].split("#")[0].split("/") if part]
    if parts and parts[0] in ("datasets", "spaces"):
        return _invalid(raw, f"a Hub {parts[0][:-1]} URL, not a model")
    revision = None
    if len(parts) >= 4 and parts[2] == "tree":
        revision = "/".join(parts[3:])
        parts = parts[:2]
    if len(parts) not in (1, 2):
        return _invalid(raw, "a Hub URL that is not a model page")
    reference = _repo_reference(raw, "/".join(parts), lora=None)
    if revision is not None and reference.kind == "repo":
        problem = _revision_problem(revision)
        if problem:
            return _invalid(raw, f"revision {_quote(revision)}: {problem}")
        return ModelReference(raw=raw, kind="repo", repo_id=reference.repo_id, revision=revision)
    return reference


def _strip_hub_url(text: str) -> str | None:
    lowered = text.lower()
    for scheme in ("https://", "http://", "hf://", ""):
        if not lowered.startswith(scheme):
            continue
        rest = text[len(scheme) :]
        if scheme == "hf://":
            return rest
        for host in _HUB_HOSTS:
            if rest.lower().startswith(host):
                return rest[len(host) :]
    return None


def _looks_like_local_path(text: str) -> bool:
    return (
        text.startswith(("/", "./", "../", "~", ".\\", "..\\", "\\"))
        or text in (".", "..")
        or "\\" in text
        or bool(_WINDOWS_DRIVE.match(text))
    )


def _lora_problem(lora: str) -> str | None:
    if _looks_like_local_path(lora) or lora.count("/") >= 2:
        return None
    name, at, revision = lora.partition("@")
    problem = _repo_id_problem(name) or (_revision_problem(revision) if at else None)
    if problem:
        return f"LoRA {_quote(lora)} is neither a repo id nor a path: {problem}"
    return None


def _repo_id_problem(value: str) -> str | None:
    if not value:
        return "empty"
    parts = value.split("/")
    if len(parts) > 2:
        return "expected 'name' or 'namespace/name'"
    for part in parts:
        if not part:
            return "empty namespace or name"
        if len(part) > MAX_REPO_PART_CHARS:
            return f"a part is longer than {MAX_REPO_PART_CHARS} characters"
        if not _REPO_PART.fullmatch(part):
            return (
                "each part must start and end with a letter, digit or '_' and hold only "
                "letters, digits, '-', '_' and '.'"
            )
    if "--" in value or ".." in value:
        return "'--' and '..' are not allowed"
    if value.endswith(".git"):
        return "must not end with '.git'"
    return None


def _revision_problem(value: str) -> str | None:
    if not value:
        return "empty"
    if len(value) > MAX_REVISION_CHARS:
        return f"longer than {MAX_REVISION_CHARS} characters"
    if _has_control_chars(value):
        return "contains control characters"
    if ".." in value:
        return "'..' is not allowed"
    if value.startswith("/") or value.endswith("/") or "//" in value:
        return "empty path component"
    forbidden = sorted(set(value) & _REVISION_FORBIDDEN)
    if forbidden:
        return f"character {forbidden[0]!r} is not allowed"
    return None


def _filename_problem(value: str) -> str | None:
    if not value:
        return "empty"
    if len(value) > MAX_FILENAME_CHARS:
        return f"longer than {MAX_FILENAME_CHARS} characters"
    if _has_control_chars(value):
        return "contains control characters"
    if "\\" in value:
        return "backslashes are not allowed"
    if value.startswith("/") or _WINDOWS_DRIVE.match(value):
        return "absolute paths are not allowed"
    components = value.split("/")
    if any(part in ("", ".", "..") for part in components):
        return "empty, '.' and '..' path components are not allowed"
    return None


def _has_control_chars(value: str) -> bool:
    return any(ord(char) < 32 or ord(char) == 127 for char in value)


def _invalid(raw: str, problem: str) -> ModelReference:
    if len(raw) > MAX_REFERENCE_CHARS:
        raw = raw[:MAX_REFERENCE_CHARS] + "…"
    return ModelReference(raw=raw, kind="invalid", problem=problem)


def _quote(value: str) -> str:
    """Quote a hostile value for a one-line message: repr escapes control characters."""
    if len(value) > 200:
        return repr(value[:200]) + "…"
    return repr(value)
