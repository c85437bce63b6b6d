"""Values made fit to store: node ids, one-line messages, options without secrets.

What a repository or a crawl's options hold is hostile or private: a "parent" named by a
card can be of any length, a message can span lines or carry a token. The writers
(``registry.store``, ``registry.crawls``) pass everything through these first, and the
readers (``registry.snapshots``) look node ids up the same way.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

from registry.tables import Crawl, Edge, Model, Revision, clean_text, json_safe

MAX_NODE_ID_CHARS = 512  # a hostile card can name a "parent" of any length
MAX_MESSAGE_CHARS = 2000

_SECRET_KEY = re.compile(r"token|password|passwd|secret|authorization|api[_-]?key", re.I)
_HF_TOKEN = re.compile(r"\bhf_[A-Za-z0-9]{8,}")


def clean_node_id(raw: str) -> str:
    """The stored node id: ``raw`` cleaned, and shortened (keeping it unique) if huge."""
    text = clean_text(raw)
    if len(text) <= MAX_NODE_ID_CHARS:
        return text
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
    return f"{text[: MAX_NODE_ID_CHARS - 20]}…#{digest}"


def one_line(text: str | None) -> str | None:
    """``text`` on one line, Hugging Face tokens masked, at most ``MAX_MESSAGE_CHARS``."""
    if text is None:
        return None
    line = " ".join(_HF_TOKEN.sub("hf_***", clean_text(text)).split())
    return line[:MAX_MESSAGE_CHARS]


def redact(value: Any) -> Any:
    """``value`` as JSON with secrets gone: tokens are never written to the registry."""
    if isinstance(value, Mapping):
        return {
            str(key): "***" if _SECRET_KEY.search(str(key)) else redact(item)
            for key, item in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [redact(item) for item in value]
    if isinstance(value, str):
        return _HF_TOKEN.sub("hf_***", value)
    return json_safe(value)


def check_status(status: str, allowed: tuple[str, ...]) -> None:
    if status not in allowed:
        raise ValueError(f"status {status!r} is not one of {', '.join(allowed)}")


def id_of(row: Model | Revision | Edge | Crawl) -> int:
    """A flushed row's id (typed as int, not int | None)."""
    if row.id is None:
        raise RuntimeError(f"{type(row).__name__} row has no id; flush first")
    return row.id
