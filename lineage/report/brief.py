"""``write_brief``: the compliance brief of one model, in the format its file's suffix names.

>>> write_brief(Registry.open(), "org/merge", Path("brief.pdf"))   # doctest: +SKIP
PosixPath('brief.pdf')

Rendered from the registry alone: no network, and the same registry content gives the
same bytes when ``SOURCE_DATE_EPOCH`` is set (and, without it, whenever the registry has
not changed, since the brief's date is then its newest record).

The formats are plug-ins of ``BRIEF_RENDERERS``, keyed by the suffix without its dot; a
renderer writes a ``BriefContext`` to a path, and imports what it needs (WeasyPrint for
the PDF) only when called.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from lineage.errors import InvalidReferenceError
from lineage.plugins import PluginRegistry
from lineage.report.context import build_context
from lineage.report.views import BriefContext
from registry.database import Registry

BriefRenderer = Callable[[BriefContext, Path], None]

BRIEF_RENDERERS: PluginRegistry[BriefRenderer] = PluginRegistry("brief format")


@BRIEF_RENDERERS.register("html")
def _write_html(context: BriefContext, path: Path) -> None:
    from lineage.report.html import render_brief_html

    path.write_text(render_brief_html(context), encoding="utf-8", newline="\n")


@BRIEF_RENDERERS.register("pdf")
def _write_pdf(context: BriefContext, path: Path) -> None:
    from lineage.report.pdf import render_brief_pdf

    path.write_bytes(render_brief_pdf(context))


FORMATS = tuple(f".{name}" for name in BRIEF_RENDERERS.names())  # (".html", ".pdf")


def write_brief(registry: Registry, repo_id: str, path: Path, *, redact: bool = False) -> Path:
    """Write the brief of ``repo_id`` to ``path`` (``.html`` or ``.pdf``); returns ``path``.

    ``redact`` replaces every prompt and model answer with the sha256 of its text.
    """
    path = Path(path)
    check_brief_path(path)
    _renderer(path)(build_context(registry, repo_id, redact=redact), path)
    return path


def check_brief_path(path: Path) -> None:
    """Refuse, before any work, a brief path of an unknown format or in no folder."""
    _renderer(path)
    if not path.parent.is_dir():
        raise InvalidReferenceError(
            "the folder to write the brief in does not exist", file=str(path)
        )


def _renderer(path: Path) -> BriefRenderer:
    """The renderer of ``path``'s suffix (any case); a one-line error for any other file."""
    suffix = path.suffix.lower()
    name = suffix.removeprefix(".")
    if not suffix or name not in BRIEF_RENDERERS:
        names = " or ".join(f"*.{known}" for known in BRIEF_RENDERERS.names())
        raise InvalidReferenceError(
            f"unsupported brief format {path.suffix or '(no suffix)'!r}; name the file {names}",
            file=str(path),
        )
    return BRIEF_RENDERERS.get(name)
