"""Render a chat template from a repository within a time and size budget.

A chat template is Jinja code written by a stranger. transformers renders it in Jinja's
sandbox, which stops it from touching Python objects but not from running for ever:
``{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}`` is ten
billion steps. The template's compiled code is traced while it renders, and the render is
stopped when it runs past its time budget; a rendered prompt past the size cap is refused.

>>> render_within_budget(lambda: "<|user|> hi", seconds=1.0, max_chars=100)
'<|user|> hi'
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

TEMPLATE_FILENAME = "<template>"  # what Jinja names the code it compiles from a string
DEFAULT_SECONDS = 5.0
DEFAULT_MAX_CHARS = 1_000_000  # a chat-formatted prompt is a few KB


class TemplateBudgetError(RuntimeError):
    """The template ran past its time budget, or rendered more than the size cap."""


def render_within_budget(
    render: Callable[[], str],
    *,
    seconds: float | None = None,
    max_chars: int | None = None,
) -> str:
    """``render()``, stopped once the template's own code has run ``seconds``."""
    seconds = DEFAULT_SECONDS if seconds is None else seconds
    max_chars = DEFAULT_MAX_CHARS if max_chars is None else max_chars
    give_up_at = time.monotonic() + seconds

    def in_template(frame: FrameType, event: str, arg: Any) -> Any:
        if time.monotonic() > give_up_at:
            raise TemplateBudgetError(f"the chat template ran longer than {seconds:g}s")
        return in_template

    def on_call(frame: FrameType, event: str, arg: Any) -> Any:
        # Only the template's own code is traced line by line: the rest runs at full speed.
        if frame.f_code.co_filename == TEMPLATE_FILENAME:
            return in_template(frame, event, arg)
        return None

    previous = sys.gettrace()
    sys.settrace(on_call)
    try:
        text = render()
    finally:
        sys.settrace(previous)
    if len(text) > max_chars:
        raise TemplateBudgetError(
            f"the chat template rendered {len(text)} characters, over the {max_chars} cap"
        )
    return text
