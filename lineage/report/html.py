"""The brief as one self-contained HTML file: Jinja2 templates from the ``templates`` package.

Autoescaping is on for every template and every expression: repository text (cards,
configs, prompts, model answers) reaches the page only as escaped text. The figures are the
only markup passed through; they arrive as ``Markup`` from ``lineage.report.figures``, which
escapes its own input. ``StrictUndefined`` turns a misspelt field into an error instead of
an empty cell.

>>> html = render_brief_html(build_context(registry, "org/merge"))  # doctest: +SKIP
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from jinja2 import Environment, FunctionLoader, StrictUndefined
from markupsafe import Markup

from lineage.report.filters import FILTERS
from lineage.report.views import BriefContext

TEMPLATE = "brief.html.j2"
STYLESHEET = "brief.css"  # screen and print, page rules included
SCREEN_STYLESHEET = "brief-screen.css"  # screens only: WeasyPrint never reads it
# The only files the loader serves: a template name never comes from user input, but a
# fixed list keeps it that way.
_TEMPLATE_FILES = frozenset({TEMPLATE, STYLESHEET, SCREEN_STYLESHEET})


def _load(name: str) -> str | None:
    if name not in _TEMPLATE_FILES:
        return None
    return resources.files("templates").joinpath(name).read_text(encoding="utf-8")


@cache
def environment() -> Environment:
    env = Environment(
        loader=FunctionLoader(_load),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(FILTERS)
    return env


def stylesheet(name: str = STYLESHEET) -> Markup:
    """A CSS file of the brief: package data written by this project, never repository text."""
    text = _load(name)
    assert text is not None
    return Markup(text)


def render_brief_html(context: BriefContext, *, for_print: bool = False) -> str:
    """The brief of ``context`` as one HTML document (inline CSS and SVG, nothing fetched).

    ``for_print`` is the PDF's variant: the same content, with the table of contents
    carrying page numbers (WeasyPrint fills them in; browsers have no page numbers).
    """
    template = environment().get_template(TEMPLATE)
    return template.render(
        brief=context,
        css=stylesheet(),
        screen_css=stylesheet(SCREEN_STYLESHEET),
        for_print=for_print,
    )
