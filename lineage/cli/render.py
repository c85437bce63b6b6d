"""Rich tables for people and plain JSON for scripts; no logic beyond presentation."""

from __future__ import annotations

import json
import sys
import unicodedata
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from lineage.crawler import CrawlReport
from lineage.vocabulary import FindingKind

stdout = Console(soft_wrap=True)
stderr = Console(stderr=True, soft_wrap=True, highlight=False)

STATUS_STYLE = {
    "ok": "green",
    "missing": "red",
    "gated": "yellow",
    "private": "yellow",
    "error": "red",
    "pending": "dim",
}


def clean(text: object, *, one_line: bool = False) -> str:
    """``text`` safe for a terminal: control characters (ESC, BEL, C1, DEL, ...) shown as
    ``\\x1b``-style escapes instead of being sent raw, so a card cannot clear the screen,
    retitle the window or restyle what follows. Newlines and tabs stay unless ``one_line``."""
    keep = "" if one_line else "\n\t"
    return "".join(
        char
        if char in keep or unicodedata.category(char) not in ("Cc", "Cf", "Zl", "Zp")
        else char.encode("unicode_escape").decode("ascii")
        for char in str(text)
    )


def safe(text: object, *, one_line: bool = False) -> str:
    """``text`` from a repository, an error or a path, ready to embed in Rich markup."""
    return escape(clean(text, one_line=one_line))


def short(sha: str | None) -> str:
    return clean((sha or "")[:12], one_line=True)


def print_json(data: Any) -> None:
    # Plain print, not Rich: scripts must get exactly the JSON, unwrapped and uncoloured.
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def problem(message: object) -> None:
    """One ``error:`` line; ``message`` is plain text (never markup), shown as written."""
    _labelled("[red]error:[/red]", message)


def warning(message: object) -> None:
    """One ``warning:`` line; ``message`` is plain text (never markup), shown as written."""
    _labelled("[yellow]warning:[/yellow]", message)


def _labelled(label: str, message: object) -> None:
    stderr.print(
        f"{label} {safe(message, one_line=True)}", markup=True, highlight=False, emoji=False
    )


def say(message: object, *, console: Console | None = None) -> None:
    """Plain text to stdout (or ``console``): no markup, no highlighting, no control codes."""
    (console or stdout).print(clean(message), markup=False, highlight=False, emoji=False)


def _escape(text: object) -> str:
    return safe(text) if text is not None else ""


def crawl_table(report: CrawlReport, rows: list[dict[str, Any]]) -> Table:
    table = Table(
        title=f"Crawl #{report.crawl_id}: {safe(', '.join(report.roots), one_line=True)}",
        title_justify="left",
    )
    for column in ("repo", "revision", "status", "relation", "parents", "architecture", "params"):
        table.add_column(column)
    for row in rows:
        style = STATUS_STYLE.get(row["status"], "")
        table.add_row(
            _escape(row["repo_id"]),
            short(row.get("revision")),
            f"[{style}]{_escape(row['status'])}[/{style}]" if style else _escape(row["status"]),
            _escape(row.get("relation") or ""),
            _escape(", ".join(row.get("parents", []))),
            _escape(row.get("architecture") or ""),
            _human_count(row.get("parameter_count")),
        )
    return table


def _human_count(value: int | None) -> str:
    if not value:
        return ""
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if value >= size:
            return f"{value / size:.1f}{unit}"
    return str(value)


def key_value_table(title: str, pairs: list[tuple[str, Any]]) -> Table:
    table = Table(title=safe(title, one_line=True), show_header=False, title_justify="left")
    table.add_column("field", style="bold")
    table.add_column("value")
    for key, value in pairs:
        table.add_row(key, _escape(value if value is not None else "—"))
    return table


def rows_table(title: str, columns: list[str], rows: list[list[Any]]) -> Table:
    table = Table(title=safe(title, one_line=True), title_justify="left")
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*[_escape(cell) for cell in row])
    return table


VERDICT_STYLE = {"confirmed": "green", "contradicted": "red", "unverifiable": "yellow"}
SEVERITY_STYLE = {"high": "red", "warning": "yellow", "info": "dim"}


def print_verification(data: dict[str, Any]) -> None:
    """The verdicts, inferred parents, recovered merge and findings of ``lineage verify``."""
    stdout.print(f"[bold]{safe(data['repo'])}[/bold] @ {short(data['revision'])}")
    declared = Table("declared parent", "verdict", "score", "reason", title="Declared lineage")
    for row in data["declared"]:
        style = VERDICT_STYLE.get(row["status"], "")
        score = "" if row["score"] is None else f"{row['score']:.3f}"
        declared.add_row(
            safe(row["parent"]),
            f"[{style}]{safe(row['status'])}[/{style}]",
            score,
            safe(row["reason"]),
        )
    if data["declared"]:
        stdout.print(declared)
    else:
        stdout.print("no declared parents")
    if data["inferred"]:
        inferred = Table("inferred parent", "relation", "confidence", "why", title="From weights")
        for row in data["inferred"]:
            inferred.add_row(
                safe(row["parent"]),
                safe(row["relation"]),
                f"{row['confidence']:.2f}",
                safe(row["reason"]),
            )
        stdout.print(inferred)
    merge = data.get("merge")
    if merge:
        coefficients = ", ".join(f"{safe(k)} {v:g}" for k, v in merge["coefficients"].items())
        line = f"merge: {safe(merge['method'])} ({coefficients}), residual {merge['residual']:.2g}"
        if merge.get("t") is not None:
            line += f", t {merge['t']:g}"
        if merge.get("density"):
            line += ", density " + ", ".join(f"{v:g}" for v in merge["density"].values())
        stdout.print(line, highlight=False)
    if data.get("merged_lora"):
        lora = data["merged_lora"]
        stdout.print(
            f"merged LoRA of rank {lora['rank']} on {safe(', '.join(lora['modules']))} "
            f"(Δ from {safe(lora['parent'])})",
            highlight=False,
        )
    for finding in data["findings"]:
        style = SEVERITY_STYLE.get(finding["severity"], "")
        stdout.print(
            f"[{style}]{safe(finding['severity'])}[/{style}] {safe(finding['kind'])}: "
            f"{safe(finding['message'])}",
            highlight=False,
        )


def _rate(value: float | None, ci: list[float] | None = None) -> str:
    if value is None:
        return "–"
    text = f"{value * 100:.1f}%"
    if ci:
        text += f" [{ci[0] * 100:.0f}–{ci[1] * 100:.0f}]"
    return text


def print_audit(data: dict[str, Any]) -> None:
    """The models table (ASR with CI, over-refusal, capability, verdict) and the findings."""
    by_model: dict[str, list[dict[str, Any]]] = {}
    for finding in data["findings"]:
        if finding.get("family") == "safety":
            by_model.setdefault(finding["model"], []).append(finding)
    table = Table(title=f"Audit of {safe(data['repo'])} (judge {safe(data['judge']['id'])})")
    table.add_column("model (role)", no_wrap=True)
    table.add_column("ASR [95% CI]", no_wrap=True)
    table.add_column("over-refusal", justify="right")
    table.add_column("capability", justify="right")
    table.add_column("safety verdict vs parents")
    for repo, model in data["models"].items():
        findings = sorted(by_model.get(repo, []), key=lambda f: -f["delta"])
        lines = []
        for finding in findings:
            word = (
                "[bold red]regressed[/bold red]"
                if finding["kind"] == FindingKind.SAFETY_REGRESSION
                else ("[yellow]warn[/yellow]")
            )
            lines.append(f"{word} {finding['delta'] * 100:+.1f} pts vs {safe(finding['against'])}")
        if not lines and model["role"] == "subject":
            lines.append("[green]no regression[/green]")
        table.add_row(
            f"{safe(repo)} [dim]({safe(model['role'])})[/dim]",
            _rate(model.get("asr"), model.get("ci")),
            _rate(model.get("over_refusal")),
            _rate(model.get("capability")),
            "\n".join(lines),
        )
    # A pipe or CI log reports 80 columns; the verdict column needs more to stay legible.
    wide = Console(file=stdout.file, width=max(stdout.width, 116), soft_wrap=True)
    wide.print(table)
    for finding in data["findings"]:
        style = SEVERITY_STYLE.get(finding["severity"], "")
        against = f" vs {safe(finding['against'])}" if finding.get("against") else ""
        stdout.print(
            f"[{style}]{safe(finding['kind'])}[/{style}] {safe(finding['model'])}{against}"
            f" ({safe(finding['suite'])}): {safe(finding['detail'])}",
            highlight=False,
        )
    if not data["findings"]:
        stdout.print("no findings", highlight=False)
