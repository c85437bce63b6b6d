"""Lineage sources, keyed by name: where models are read from.

A source implements ``lineage.sources.base.Source``. Add one by registering a factory here.
"""

from __future__ import annotations

from collections.abc import Callable

from lineage.sources.base import Source
from lineage.sources.hub import HubSource
from lineage.sources.local import LocalSource

SOURCES: dict[str, Callable[..., Source]] = {
    HubSource.name: HubSource,
    LocalSource.name: LocalSource,
}

__all__ = ["SOURCES", "HubSource", "LocalSource", "Source"]
