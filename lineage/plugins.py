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

import difflib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from lineage.errors import LineageError

T = TypeVar("T")


class UnknownPluginError(LineageError, KeyError):
    """A name that nothing is registered under; it lists the known names and the closest."""

    def __init__(self, kind: str, name: str, known: tuple[str, ...]):
        self.kind = kind
        self.name = name
        self.known = known
        closest = difflib.get_close_matches(name, known, n=1)
        hint = f"; did you mean {closest[0]!r}?" if closest else ""
        super().__init__(f"unknown {kind} {name!r}{hint} known: {', '.join(known)}")

    def __str__(self) -> str:  # KeyError would quote the message
        return self.args[0]


class DuplicatePluginError(ValueError):
    """Two plug-ins registered under one name: a programming error, raised at import."""


class PluginRegistry(Generic[T]):
    """Things of type ``T`` by name and alias, in the order they were registered."""

    def __init__(self, kind: str):
        self.kind = kind  # what one is called in messages: "judge", "export format", ...
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
        raise UnknownPluginError(self.kind, name, self.names())

    def names(self) -> tuple[str, ...]:
        """The listed names, in registration order (aliases left out)."""
        return tuple(self._by_name)

    def items(self) -> Iterator[tuple[str, T]]:
        return iter(list(self._by_name.items()))

    def __contains__(self, name: object) -> bool:
        return name in self._by_name or name in self._aliases

    def __len__(self) -> int:
        return len(self._by_name)

    def __repr__(self) -> str:
        return f"PluginRegistry({self.kind!r}, {list(self._by_name)})"
