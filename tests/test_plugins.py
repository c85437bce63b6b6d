"""The one plug-in shape (issue 12): register by name and alias, typed lookup errors."""

from __future__ import annotations

import pytest

from lineage.errors import LineageError
from lineage.plugins import DuplicatePluginError, PluginRegistry, UnknownPluginError


def _formats() -> PluginRegistry[str]:
    formats: PluginRegistry[str] = PluginRegistry("export format")
    formats.add("graphml", "G", "xml")
    formats.add("json", "J")

    @formats.register("mermaid", "mmd")
    def mermaid() -> str:
        return "M"

    return formats


def test_names_in_order_aliases_resolve_unlisted():
    formats = _formats()
    assert formats.names() == ("graphml", "json", "mermaid")
    assert formats.get("xml") == "G" and formats.canonical("mmd") == "mermaid"
    assert "xml" in formats and "yaml" not in formats and len(formats) == 3


def test_unknown_names_list_the_known_and_suggest_the_closest():
    with pytest.raises(UnknownPluginError) as caught:
        _formats().get("grapml")
    assert str(caught.value) == (
        "unknown export format 'grapml'; did you mean 'graphml'? known: graphml, json, mermaid"
    )
    assert isinstance(caught.value, LineageError) and isinstance(caught.value, KeyError)
    with pytest.raises(UnknownPluginError) as caught:
        _formats().get("pdfx")
    far = str(caught.value)
    assert "did you mean" not in far and far.endswith("known: graphml, json, mermaid")


def test_a_name_registered_twice_is_refused():
    formats = _formats()
    with pytest.raises(DuplicatePluginError, match="'xml' is registered twice"):
        formats.add("xml", "X")
