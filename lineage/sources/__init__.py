"""Lineage sources, keyed by name: where models are read from.

A source implements ``lineage.sources.base.Source``. Each is registered in ``SOURCES`` (a
``PluginRegistry``) with ``claims(spec)``, whether a command-line spec is for it, and
``open(specs)``, the source that reads those specs and the repo ids it knows them by.
``source_for`` picks the one source that claims every spec given; the first registered
claim wins (a local folder before the Hub, which claims anything but an explicit path).

    source, repo_ids = source_for(["./models/org/merge"])   # LocalSource, ["org/merge"]
    source, repo_ids = source_for(["org/model"])            # HubSource, ["org/model"]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from lineage.errors import InvalidReferenceError
from lineage.plugins import PluginRegistry
from lineage.references import validate_repo_id
from lineage.sources.base import Source
from lineage.sources.hub import HubSource
from lineage.sources.local import LocalSource, local_source_for_path

DEFAULT_SOURCE = "hub"  # what an empty list of specs is read from


@dataclass(frozen=True)
class SourceSpec:
    """One source: which specs it claims, and how it opens the specs it claimed."""

    name: str
    what: str  # the specs it reads, in messages: "Hub repo ids"
    claims: Callable[[str], bool]
    open: Callable[[Sequence[str]], tuple[Source, list[str]]]


def _open_hub(specs: Sequence[str]) -> tuple[Source, list[str]]:
    return HubSource(), [validate_repo_id(spec) for spec in specs]


def _open_local(specs: Sequence[str]) -> tuple[Source, list[str]]:
    sources = [local_source_for_path(spec) for spec in specs]
    roots = {source.root for source, _ in sources}
    if len(roots) > 1:
        raise InvalidReferenceError("local model folders must share one tree root")
    return sources[0][0], [repo_id for _, repo_id in sources]


SOURCES: PluginRegistry[SourceSpec] = PluginRegistry("source")
SOURCES.add("local", SourceSpec("local", "local model folders", LocalSource.claims, _open_local))
SOURCES.add("hub", SourceSpec("hub", "Hub repo ids", HubSource.claims, _open_hub))


def claiming_source(spec: str) -> SourceSpec:
    """The first registered source that claims ``spec``."""
    for _, source in SOURCES.items():
        if source.claims(spec):
            return source
    raise InvalidReferenceError(f"{spec!r} is for none of the sources ({', '.join(SOURCES)})")


def source_for(specs: Sequence[str]) -> tuple[Source, list[str]]:
    """The one source that claims every spec, opened on them, and the repo ids they name."""
    claimed = {claiming_source(spec).name for spec in specs} or {DEFAULT_SOURCE}
    if len(claimed) > 1:
        kinds = " or ".join(source.what for name, source in SOURCES.items() if name in claimed)
        raise InvalidReferenceError(f"give either {kinds}, not both")
    (name,) = claimed
    return SOURCES.get(name).open(specs)


__all__ = [
    "SOURCES",
    "HubSource",
    "LocalSource",
    "Source",
    "SourceSpec",
    "claiming_source",
    "source_for",
]
