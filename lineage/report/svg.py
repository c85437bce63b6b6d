"""A tiny SVG builder that escapes everything it is given, for the brief's inline figures.

Markup is built only by ``element``: tag and attribute names are code constants (checked
against a strict pattern), every attribute value goes through ``quoteattr`` and every text
child through ``escape``. A child that is already markup is a ``Markup`` (what ``element``
returns); any other string is text, however much it looks like markup::

    >>> element("text", {"x": 1, "y": 2}, "<script>")
    Markup('<text x="1" y="2">&lt;script&gt;</text>')

Text is also cleaned of what XML 1.0 cannot carry (control characters, lone surrogates)
and of the bidirectional controls that could make a repo id read as another one.
Numbers are written with at most two decimals, so the same figure gives the same bytes.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from xml.sax.saxutils import escape, quoteattr

# The one type of trusted markup, shared with Jinja: an element built here is inserted as it
# is, by ``element`` and by the templates alike; anything else is escaped.
from markupsafe import Markup

SVG_NAMESPACE = "http://www.w3.org/2000/svg"

_NAME = re.compile(r"^[a-zA-Z][a-zA-Z0-9-]*$")
# Not XML 1.0 characters, plus C1 controls and bidi embeddings, overrides and isolates.
_UNSAFE_TEXT = re.compile(
    "[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]"
    "|[\x7f-\x9f\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]"
)

# quoteattr switches to single quotes when a value holds `"`; &quot; keeps every attribute
# double-quoted, the one form a reader (and a test) has to check.
_QUOTE = {'"': "&quot;"}

AttributeValue = str | int | float | None


def clean_text(text: object) -> str:
    """``text`` as one line XML can carry: unsafe characters become U+FFFD."""
    line = " ".join(str(text).splitlines())
    return _UNSAFE_TEXT.sub("\ufffd", line)


def number(value: float) -> str:
    """A coordinate as short, stable text: ``12``, ``12.5``, ``12.35``."""
    if not math.isfinite(value):
        raise ValueError(f"not a finite coordinate: {value!r}")
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def element(
    tag: str,
    attributes: Mapping[str, AttributeValue] | None = None,
    *children: str | Iterable[str] | None,
) -> Markup:
    """``<tag attributes>children</tag>``; ``None`` attributes and children are left out."""
    if not _NAME.match(tag):
        raise ValueError(f"not an SVG tag name: {tag!r}")
    parts = [f"<{tag}"]
    for name, value in (attributes or {}).items():
        if value is None:
            continue
        if not _NAME.match(name):
            raise ValueError(f"not an SVG attribute name: {name!r}")
        # Always double quotes: a value holding `"` gets &quot;, never a switch to `'`.
        parts.append(f" {name}={quoteattr(_attribute_text(value), _QUOTE)}")
    inner = "".join(_child_text(child) for child in _flatten(children))
    if not inner:
        return Markup("".join(parts) + "/>")
    return Markup("".join(parts) + ">" + inner + f"</{tag}>")


def group(*children: str | Iterable[str] | None, **attributes: AttributeValue) -> Markup:
    """A ``<g>`` of ``children``; ``class_`` stands for ``class``, ``_`` for ``-``."""
    return element("g", _attribute_names(attributes), *children)


def text(x: float, y: float, content: object, **attributes: AttributeValue) -> Markup:
    """One line of text at baseline ``y`` (``text_anchor="end"`` and so on as keywords)."""
    return element("text", {"x": x, "y": y, **_attribute_names(attributes)}, clean_text(content))


def title(content: object) -> Markup:
    """A ``<title>``: the tooltip in a browser, the accessible name for a screen reader."""
    return element("title", None, clean_text(content))


def path_data(commands: Iterable[Sequence[str | float]]) -> str:
    """``M 1 2 L 3 4 ...`` from ``[("M", 1, 2), ("L", 3, 4), ...]``."""
    return " ".join(
        " ".join([str(command[0]), *(number(float(value)) for value in command[1:])])
        for command in commands
    )


def svg_document(
    width: float,
    height: float,
    label: str,
    *children: str | Iterable[str] | None,
    font_family: str,
) -> Markup:
    """The root ``<svg>``: viewBox-sized so it scales down to a phone, never up past ``width``."""
    return element(
        "svg",
        {
            "xmlns": SVG_NAMESPACE,
            "viewBox": f"0 0 {number(width)} {number(height)}",
            "width": "100%",
            "style": f"max-width:{number(width)}px;height:auto",
            "role": "img",
            "aria-label": clean_text(label),
            "font-family": font_family,
        },
        title(label),
        *children,
    )


def _attribute_text(value: AttributeValue) -> str:
    if isinstance(value, bool):
        raise TypeError("an SVG attribute is text or a number, not a bool")
    if isinstance(value, (int, float)):
        return number(float(value))
    return clean_text(value)


def _attribute_names(attributes: Mapping[str, AttributeValue]) -> dict[str, AttributeValue]:
    return {name.rstrip("_").replace("_", "-"): value for name, value in attributes.items()}


def _child_text(child: str) -> str:
    return child if isinstance(child, Markup) else escape(clean_text(child))


def _flatten(children: Iterable[str | Iterable[str] | None]) -> Iterable[str]:
    for child in children:
        if child is None:
            continue
        if isinstance(child, str):
            yield child
        else:
            yield from _flatten(child)


# --------------------------------------------------------------------- text measurement

# Advance widths in em of DejaVu Sans, the widest sans-serif a reader is likely to have
# (WeasyPrint on Debian falls back to it): measuring wide keeps text inside its box with
# Helvetica or Arial too. No font file is read, so a figure never depends on the machine.
_NARROW = frozenset("ijl.,:;'|!`")
_SEMI = frozenset("frtI()[]{}/\\- ")
_WIDE = frozenset("mwMW@%")


def text_width(content: str, size: float, *, bold: bool = False) -> float:
    """An upper estimate of the drawn width of ``content`` at font size ``size``."""
    em = 0.0
    for char in content:
        if char in _NARROW:
            em += 0.30
        elif char in _SEMI:
            em += 0.40
        elif char in _WIDE:
            em += 0.92
        elif char.isupper():
            em += 0.72
        elif ord(char) > 0x2E80:  # CJK, emoji and the like are a full em
            em += 1.0
        else:
            em += 0.62
    return em * size * (1.08 if bold else 1.0)


def ellipsize(content: str, size: float, limit: float, *, bold: bool = False) -> str:
    """``content`` cut at the end with "…" so that it fits in ``limit``."""
    if text_width(content, size, bold=bold) <= limit:
        return content
    while content and text_width(content + "…", size, bold=bold) > limit:
        content = content[:-1]
    return content + "…"


def ellipsize_middle(content: str, size: float, limit: float, *, bold: bool = False) -> str:
    """``content`` with its middle replaced by "…": model ids differ at both ends."""
    if text_width(content, size, bold=bold) <= limit:
        return content
    head, tail = content[: len(content) // 2], content[len(content) // 2 :]
    while (head or tail) and text_width(head + "…" + tail, size, bold=bold) > limit:
        if len(head) >= len(tail):
            head = head[:-1]
        else:
            tail = tail[1:]
    return head + "…" + tail


def wrap(
    content: str, size: float, limit: float, *, lines: int = 2, bold: bool = False
) -> list[str]:
    """``content`` over at most ``lines`` lines, broken after ``-_./`` where possible."""
    result: list[str] = []
    rest = content
    while rest and len(result) < lines - 1:
        if text_width(rest, size, bold=bold) <= limit:
            break
        fit = 1
        while fit < len(rest) and text_width(rest[: fit + 1], size, bold=bold) <= limit:
            fit += 1
        breaks = [index + 1 for index in range(fit) if rest[index] in "-_./ "]
        cut = breaks[-1] if breaks and breaks[-1] > fit // 2 else fit
        result.append(rest[:cut])
        rest = rest[cut:]
    if rest:
        result.append(ellipsize_middle(rest, size, limit, bold=bold))
    return result


def wrap_words(content: str, size: float, limit: float) -> list[str]:
    """Prose over as many lines as it needs, broken between words."""
    lines: list[str] = []
    for word in content.split():
        if lines and text_width(f"{lines[-1]} {word}", size) <= limit:
            lines[-1] += f" {word}"
        else:
            lines.append(ellipsize(word, size, limit))
    return lines


# ------------------------------------------------------------------------------ hatching


def hatch_path(x: float, y: float, width: float, height: float, kind: str, spacing: float) -> str:
    """Path data of hatch lines clipped to a rectangle, without clipPath or pattern ids.

    ``kind`` is ``/``, ``\\``, ``x`` (both) or ``-``. Drawing the lines themselves keeps the
    figure free of ids (several figures share one HTML page) and renders the same in every
    SVG engine, WeasyPrint's included.
    """
    if width <= 0 or height <= 0:
        return ""
    segments: list[tuple[float, float, float, float]] = []
    if kind == "-":
        level = y + spacing / 2
        while level < y + height:
            segments.append((x, level, x + width, level))
            level += spacing
    for rising in (True, False):
        if kind not in ("x", "/" if rising else "\\"):
            continue
        # Lines x + y = c (rising, "/") or x - y = c (falling), every `spacing` along x.
        offset = spacing / 2
        while offset < width + height:
            if rising:
                start = (x + max(0.0, offset - height), y + min(height, offset))
                end = (x + min(width, offset), y + max(0.0, offset - width))
            else:
                start = (x + max(0.0, offset - height), y + max(0.0, height - offset))
                end = (x + min(width, offset), y + height - max(0.0, offset - width))
            segments.append((*start, *end))
            offset += spacing
    return path_data(
        command for x1, y1, x2, y2 in segments for command in (("M", x1, y1), ("L", x2, y2))
    )
