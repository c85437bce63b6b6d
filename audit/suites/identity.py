"""One audit, many suites: each suite is its content hash, under a readable name of its own.

Results, sample logs and findings are keyed by suite name, so two suites must never share
one: two HarmBench files (both read as ``harmbench``) or a user's ``harmful.jsonl`` beside
the built-in ``harmful`` would otherwise overwrite each other. ``distinct_suites`` keeps one
suite per content hash (the same prompts loaded twice are one suite) and gives every suite a
name no other has: a built-in suite keeps its name; any other suite whose name is a built-in
one, or is shared with a different suite, gets its short hash appended (``harmbench-3f2a9c1d``).

>>> from audit.records import Prompt, Suite
>>> a = Suite("harmbench", "harmful", (Prompt("1", "one"),), "file:a.csv")
>>> b = Suite("harmbench", "harmful", (Prompt("1", "two"),), "file:b.csv")
>>> [s.name for s in distinct_suites([a, b])] == [f"harmbench-{s.content_hash[:8]}" for s in (a, b)]
True
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import replace

from audit.errors import AuditError
from audit.records import Suite

BUILTIN_SOURCE_PREFIX = "builtin:"
SHORT_HASH = 8


def is_builtin(suite: Suite) -> bool:
    return suite.source.startswith(BUILTIN_SOURCE_PREFIX)


def distinct_suites(suites: Iterable[Suite], reserved: Iterable[str] = ()) -> tuple[Suite, ...]:
    """``suites`` without repeats, each under a name no other has (see the module docstring).

    ``reserved``: names only built-in suites may carry (default: every built-in's name).
    """
    from audit.suites.builtin import BUILTIN_SUITES

    taken_by_builtins = set(reserved) or set(BUILTIN_SUITES)
    unique: dict[str, Suite] = {}
    for suite in suites:
        unique.setdefault(suite.content_hash, suite)
    counts = Counter(suite.name for suite in unique.values())
    renamed = []
    for suite in unique.values():
        clash = counts[suite.name] > 1 or suite.name in taken_by_builtins
        if clash and not is_builtin(suite):
            suite = replace(suite, name=f"{suite.name}-{suite.content_hash[:SHORT_HASH]}")
        renamed.append(suite)
    check_distinct(renamed)
    return tuple(renamed)


def check_distinct(suites: Sequence[Suite]) -> None:
    """Refuse suites that share a name: their results would overwrite each other."""
    names = Counter(suite.name for suite in suites)
    shared = sorted(name for name, count in names.items() if count > 1)
    if shared:
        raise AuditError(
            f"several different suites are named {', '.join(shared)}; give each its own name"
            " (audit.suites.identity.distinct_suites does)"
        )
