"""One shape for every plug-in point: a small registry of named things.

Sources, merge estimators, suite formats, built-in suites, judges, exporters and brief
renderers are each kept in a ``PluginRegistry`` keyed by name, as mergekit keeps its merge
methods and inspect_ai its tasks. Adding one is a ``register`` call next to its code; the CLI
lists ``names()`` in its help, so nothing is spelled out twice.

    EXPORTERS: PluginRegistry[Exporter] = PluginRegistry("export format")

    @EXPORTERS.register("graphml", "xml")
    def graphml(graph): ...

    EXPORTERS.get("gml")  # UnknownPluginError: unknown export format 'gml';
                          # did you mean 'graphml'? known: graphml, json, ...
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Generic, TypeVar

from lineage.errors import UnknownPluginError

T = TypeVar("T")

# What ``get`` raises for an unknown name: called as ``unknown(kind, name, known_names)``.
UnknownError = Callable[[str, str, Sequence[str]], Exception]


class DuplicatePluginError(ValueError):
    """Two plug-ins registered under one name: a programming error, raised at import."""


class PluginRegistry(Generic[T]):
    """Things of type ``T`` by name and alias, in the order they were registered.

    Read like a mapping of the listed names (``in``, ``[]``, iteration, ``items()``,
    ``values()``). ``unknown`` is the error ``get`` raises for a name nothing is registered
    under (``UnknownPluginError`` or a subclass, or a stage's own typed error), built from the
    kind, the name and the known names so that it can list them and suggest the closest.
    """

    def __init__(self, kind: str, *, unknown: UnknownError = UnknownPluginError):
        self.kind = kind  # what one is called in messages: "judge", "export format", ...
        self.unknown = unknown
        self._by_name: dict[str, T] = {}
        self._aliases: dict[str, str] = {}

    def register(self, name: str, *aliases: str) -> Callable[[T], T]:
        """A decorator that registers what it decorates under ``name`` and ``aliases``."""

        def decorate(plugin: T) -> T:
            self.add(name, plugin, *aliases)
            return plugin

        return decorate

    def add(self, name: str, plugin: T, *aliases: str) -> T:
        """Register ``plugin`` under ``name`` (listed) and ``aliases`` (accepted, unlisted)."""
        for key in (name, *aliases):
            if key in self._by_name or key in self._aliases:
                raise DuplicatePluginError(f"{self.kind} {key!r} is registered twice")
        self._by_name[name] = plugin
        for alias in aliases:
            self._aliases[alias] = name
        return plugin

    def get(self, name: str) -> T:
        """The plug-in registered under ``name`` or one of its aliases."""
        canonical = self.canonical(name)
        return self._by_name[canonical]

    def canonical(self, name: str) -> str:
        """The listed name for ``name`` (itself, or what it is an alias of)."""
        if name in self._by_name:
            return name
        if name in self._aliases:
            return self._aliases[name]
        raise self.unknown(self.kind, name, self.names())

    def names(self) -> tuple[str, ...]:
        """The listed names, in registration order (aliases left out)."""
        return tuple(self._by_name)

    def items(self) -> Iterator[tuple[str, T]]:
        return iter(list(self._by_name.items()))

    def values(self) -> Iterator[T]:
        return iter(list(self._by_name.values()))

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __getitem__(self, name: str) -> T:
        return self.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name or name in self._aliases

    def __len__(self) -> int:
        return len(self._by_name)

    def __repr__(self) -> str:
        return f"PluginRegistry({self.kind!r}, {list(self._by_name)})"


__all__ = ["DuplicatePluginError", "PluginRegistry", "UnknownError", "UnknownPluginError"]
