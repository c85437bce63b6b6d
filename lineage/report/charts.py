"""The brief's rate charts as inline SVG: rates per model, and rates per category.

    >>> chart = rate_chart_svg(rows, title="Attack success rate")  # doctest: +SKIP

Horizontal bars with 95% whiskers, shaded by role (subject, parent, base) with hatching as
well as tone, so a greyscale print reads the same. A rate must be a fraction in [0, 1]: a
percentage is a caller's bug and is refused. Every string goes through the escaping
builder in ``lineage.report.svg``; the same rows give the same bytes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lineage.report.style import (
    ACCENT,
    FAINT,
    FONT,
    GRID,
    INK,
    MARGIN,
    MISSING_DASH,
    MUTED,
    PAPER,
    RULE,
)
from lineage.report.svg import (
    Markup,
    clean_text,
    element,
    ellipsize,
    ellipsize_middle,
    group,
    hatch_path,
    path_data,
    svg_document,
    text,
    text_width,
    wrap,
)
from lineage.report.svg import title as svg_title

_MARGIN = MARGIN

_ROLE_STYLES: dict[str, tuple[str, str | None]] = {
    "subject": (ACCENT, None),
    "parent": ("#c3ccd6", "/"),
    "base": ("#f0f3f6", "x"),
}
_OTHER_STYLE = (PAPER, "-")
# Models of the per-category chart, in order: the subject first by convention.
_SERIES_STYLES: tuple[tuple[str, str | None], ...] = (
    (ACCENT, None),
    ("#c3ccd6", "/"),
    ("#f0f3f6", "x"),
    ("#7b8794", None),
    ("#e4e7eb", "\\"),
    (PAPER, "-"),
)
_TICKS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


@dataclass(frozen=True)
class _Plot:
    """The chart's frame: model names on the left, bars in [x0, x0 + span], values after."""

    width: float
    name_width: float
    x0: float
    span: float

    def at(self, fraction: float) -> float:
        return self.x0 + self.span * min(max(fraction, 0.0), 1.0)


def _plot(width: float, name_share: float) -> _Plot:
    name_width = round(width * name_share)
    x0 = _MARGIN + name_width + 10
    return _Plot(width, name_width, x0, width - x0 - 112 - _MARGIN)


def rate_chart_svg(
    rows: list[dict],
    *,
    title: str,
    label: str = "ASR",
    width: int = 640,
) -> str:
    """Horizontal bars of a rate per model with its 95% interval, shaded by role.

    ``rows``: ``[{"model": str, "rate": float in [0, 1] or None, "ci": [lo, hi] or None,
    "role": "subject" | "parent" | "base"}]``, drawn in the order given. A missing or NaN
    rate is drawn as "n/a"; an empty list gives a figure that says "no data".
    """
    width = max(int(width), 360)
    if not rows:
        return _no_data(title, width)
    parsed = [_rate_row(row) for row in rows]
    plot = _plot(width, 0.28)
    roles = [
        role for role in ("subject", "parent", "base") if any(r["role"] == role for r in parsed)
    ]
    y = 24.0
    marks: list[Markup] = [_chart_title(title, width)]
    if roles:
        legend, y = _swatch_legend(
            [(f"{role}", _ROLE_STYLES[role]) for role in roles], y + 14, width
        )
        marks.append(legend)
    pitch, bar = 30.0, 14.0
    top = y + 10
    bottom = top + pitch * len(parsed)
    marks.append(_grid(plot, top - 4, bottom))
    for index, row in enumerate(parsed):
        centre = top + pitch * index + pitch / 2
        marks.append(_rate_bar(plot, row, centre, bar))
    axis, height = _axis(
        plot, bottom, f"{label}, % — bars: estimate; whiskers: 95% confidence interval"
    )
    marks.append(axis)
    summary = f"{title}: " + "; ".join(
        f"{row['model']} {_percent(row['rate'])}" for row in parsed[:12]
    )
    if len(parsed) > 12:
        summary += f"; and {len(parsed) - 12} more"
    return str(
        svg_document(
            width,
            height,
            summary,
            element("rect", {"width": width, "height": height, "fill": PAPER}),
            marks,
            font_family=FONT,
        )
    )


def _rate_row(row: Mapping[str, Any]) -> dict[str, Any]:
    model = clean_text(row.get("model") if row.get("model") is not None else "unnamed model")
    rate = _fraction(row.get("rate"), model, "rate")
    ci = row.get("ci")
    interval = None
    if isinstance(ci, Sequence) and not isinstance(ci, str) and len(ci) == 2:
        low, high = (_fraction(value, model, "ci") for value in ci)
        if low is not None and high is not None:
            interval = (min(low, high), max(low, high))
    role = str(row.get("role") or "")
    return {"model": model, "rate": rate, "ci": interval, "role": role}


def _fraction(value: Any, model: str, what: str) -> float | None:
    """A rate in [0, 1]; ``None`` when not known. A percentage is a caller's bug: refused."""
    if value is None or isinstance(value, bool):
        return None
    number_value = float(value)
    if math.isnan(number_value):
        return None
    if not -1e-9 <= number_value <= 1 + 1e-9:
        raise ValueError(f"{model}: {what} {number_value!r} is not a fraction in [0, 1]")
    return min(max(number_value, 0.0), 1.0)


def _percent(rate: float | None) -> str:
    return "n/a" if rate is None else f"{rate * 100:.1f}%"


def _rate_bar(plot: _Plot, row: Mapping[str, Any], centre: float, bar: float) -> Markup:
    fill, hatch = _ROLE_STYLES.get(row["role"], _OTHER_STYLE)
    marks: list[Markup] = [
        svg_title(
            f"{row['model']} ({row['role'] or 'model'}): {_percent(row['rate'])}"
            + (f", 95% CI {_percent(row['ci'][0])}–{_percent(row['ci'][1])}" if row["ci"] else "")
        ),
        text(
            _MARGIN,
            centre - 1,
            ellipsize_middle(row["model"], 10, plot.name_width, bold=row["role"] == "subject"),
            font_size=10,
            fill=INK,
            font_weight="bold" if row["role"] == "subject" else None,
        ),
    ]
    if row["role"]:
        marks.append(text(_MARGIN, centre + 10, row["role"], font_size=8, fill=MUTED))
    rate, interval = row["rate"], row["ci"]
    if rate is not None:
        marks.append(_bar(plot.x0, centre - bar / 2, plot.span * rate, bar, fill, hatch))
    if interval is not None:
        marks.append(_whisker(plot.at(interval[0]), plot.at(interval[1]), centre))
    end = max(
        plot.at(rate) if rate is not None else plot.x0,
        plot.at(interval[1]) if interval is not None else plot.x0,
    )
    value = _percent(rate)
    marks.append(
        text(
            end + 6,
            centre + 3.5,
            value,
            font_size=9.5,
            font_weight="bold",
            fill=INK,
            class_="value",
        )
    )
    if interval is not None:
        marks.append(
            text(
                end + 10 + text_width(value, 9.5, bold=True),
                centre + 3.5,
                f"{interval[0] * 100:.1f}–{interval[1] * 100:.1f}",
                font_size=8,
                fill=MUTED,
            )
        )
    return group(marks, class_="row", data_model=row["model"])


def _bar(x: float, y: float, width: float, height: float, fill: str, hatch: str | None) -> Markup:
    marks = [
        element(
            "rect",
            {
                "x": x,
                "y": y,
                "width": max(width, 0.0),
                "height": height,
                "fill": fill,
                "stroke": INK if width > 0 else None,
                "stroke-width": 0.6 if width > 0 else None,
                "class": "bar",
            },
        )
    ]
    if hatch and width > 1:
        marks.append(
            element(
                "path",
                {
                    "d": hatch_path(x, y, width, height, hatch, 4.0),
                    "stroke": "#3e4c59",
                    "stroke-width": 0.6,
                    "fill": "none",
                },
            )
        )
    return Markup("".join(marks))


def _whisker(low: float, high: float, centre: float) -> Markup:
    """A CI whisker, drawn twice (white under ink) so it shows on a dark bar too."""
    d = path_data(
        [
            ("M", low, centre),
            ("L", high, centre),
            ("M", low, centre - 4.5),
            ("L", low, centre + 4.5),
            ("M", high, centre - 4.5),
            ("L", high, centre + 4.5),
        ]
    )
    return group(
        element("path", {"d": d, "stroke": PAPER, "stroke-width": 3.2, "fill": "none"}),
        element("path", {"d": d, "stroke": INK, "stroke-width": 1.2, "fill": "none"}),
        class_="whisker",
    )


def _grid(plot: _Plot, top: float, bottom: float) -> Markup:
    return group(
        [
            element(
                "line",
                {
                    "x1": plot.at(tick),
                    "y1": top,
                    "x2": plot.at(tick),
                    "y2": bottom,
                    "stroke": RULE if tick == 0 else GRID,
                    "stroke-width": 1 if tick == 0 else 0.8,
                },
            )
            for tick in _TICKS
        ],
        class_="grid",
    )


def _axis(plot: _Plot, y: float, caption: str) -> tuple[Markup, float]:
    marks = [
        element("line", {"x1": plot.x0, "y1": y, "x2": plot.at(1), "y2": y, "stroke": FAINT}),
    ]
    for tick in _TICKS:
        x = plot.at(tick)
        marks.append(element("line", {"x1": x, "y1": y, "x2": x, "y2": y + 4, "stroke": FAINT}))
        marks.append(
            text(
                x, y + 14, f"{round(tick * 100)}%", font_size=8.5, fill=MUTED, text_anchor="middle"
            )
        )
    marks.append(
        text(
            plot.x0,
            y + 30,
            ellipsize(caption, 8.5, plot.width - plot.x0 - _MARGIN),
            font_size=8.5,
            fill=MUTED,
        )
    )
    return group(marks, class_="axis"), y + 40


def _chart_title(content: str, width: float) -> Markup:
    return text(
        _MARGIN,
        20,
        ellipsize(clean_text(content), 12.5, width - 2 * _MARGIN, bold=True),
        font_size=12.5,
        font_weight="bold",
        fill=INK,
        class_="chart-title",
    )


def _swatch_legend(
    entries: Iterable[tuple[str, tuple[str, str | None]]], y: float, width: float
) -> tuple[Markup, float]:
    """Swatches with names, wrapped to the width; returns them and the last baseline."""
    marks: list[Markup] = []
    x = _MARGIN
    for name, (fill, hatch) in entries:
        shown = ellipsize_middle(clean_text(name), 9, 200)
        item = 20 + text_width(shown, 9)
        if x + item > width - _MARGIN and x > _MARGIN:
            x, y = _MARGIN, y + 15
        marks.append(_bar(x, y - 9, 14, 10, fill, hatch))
        marks.append(text(x + 19, y, shown, font_size=9, fill=INK))
        x += item + 16
    return group(marks, class_="legend"), y


def _no_data(content: str, width: int) -> str:
    height = 84
    return str(
        svg_document(
            width,
            height,
            f"{content}: no data",
            element("rect", {"width": width, "height": height, "fill": PAPER}),
            _chart_title(content, width),
            element(
                "rect",
                {
                    "x": _MARGIN,
                    "y": 32,
                    "width": width - 2 * _MARGIN,
                    "height": 38,
                    "rx": 4,
                    "fill": "#f5f7fa",
                    "stroke": RULE,
                    "stroke-dasharray": MISSING_DASH,
                },
            ),
            text(
                width / 2,
                55,
                "no data",
                font_size=10,
                fill=MUTED,
                text_anchor="middle",
                class_="no-data",
            ),
            font_family=FONT,
        )
    )


def category_chart_svg(
    models: list[str],
    categories: dict[str, dict[str, list[int]]],
    *,
    title: str,
    width: int = 640,
) -> str:
    """Grouped horizontal bars: for each category, one bar per model of events / n.

    ``categories`` maps category -> model -> ``[events, n]``, drawn in the order given;
    ``models`` fixes the bar order and shading (the subject first by convention). A cell
    that is missing, has ``n`` of 0 or more events than ``n`` is drawn as "n/a".
    """
    width = max(int(width), 360)
    if not models or not categories:
        return _no_data(title, width)
    names = [clean_text(model) for model in models]
    styles = [_SERIES_STYLES[index % len(_SERIES_STYLES)] for index in range(len(models))]
    plot = _plot(width, 0.26)
    marks: list[Markup] = [_chart_title(title, width)]
    legend, y = _swatch_legend(zip(names, styles, strict=True), 38, width)
    marks.append(legend)

    bar, pitch, group_gap = 9.0, 12.0, 12.0
    top = y + 12
    cursor = top
    rows: list[Markup] = []
    for category, cells in categories.items():
        group_height = pitch * len(models)
        label_lines = wrap(clean_text(category), 9.5, plot.name_width, lines=2, bold=True)
        label_top = cursor + group_height / 2 - 6.5 * (len(label_lines) - 1) + 3.5
        parts: list[Markup] = [svg_title(f"category {category}")]
        for index, line in enumerate(label_lines):
            parts.append(
                text(
                    _MARGIN,
                    label_top + 13 * index,
                    line,
                    font_size=9.5,
                    font_weight="bold",
                    fill=INK,
                )
            )
        for index, (model, name, (fill, hatch)) in enumerate(
            zip(models, names, styles, strict=True)
        ):
            centre = cursor + pitch * index + pitch / 2
            cell = cells.get(model) if isinstance(cells, Mapping) else None
            rate, counts = _cell_rate(cell)
            if rate is not None:
                parts.append(_bar(plot.x0, centre - bar / 2, plot.span * rate, bar, fill, hatch))
            end = plot.at(rate) if rate is not None else plot.x0
            value = _percent(rate)
            parts.append(
                group(
                    svg_title(f"{category} · {name}: {value}" + (f" ({counts})" if counts else "")),
                    text(
                        end + 5,
                        centre + 3,
                        value,
                        font_size=8,
                        font_weight="bold",
                        fill=INK,
                        class_="value",
                    ),
                    text(
                        end + 9 + text_width(value, 8, bold=True),
                        centre + 3,
                        counts,
                        font_size=7.5,
                        fill=MUTED,
                    )
                    if counts
                    else None,
                    class_="cell",
                    data_model=name,
                )
            )
        rows.append(group(parts, class_="category", data_category=clean_text(category)))
        cursor += group_height + group_gap
    bottom = cursor - group_gap + 4
    marks.append(_grid(plot, top - 4, bottom))
    marks.extend(rows)
    axis, height = _axis(plot, bottom, "rate, % of the category's prompts (events / n)")
    marks.append(axis)
    summary = f"{title}: {len(categories)} categories, {len(models)} models"
    return str(
        svg_document(
            width,
            height,
            summary,
            element("rect", {"width": width, "height": height, "fill": PAPER}),
            marks,
            font_family=FONT,
        )
    )


def _cell_rate(cell: Any) -> tuple[float | None, str]:
    """(events / n, "events/n") for a valid ``[events, n]``; (None, "") otherwise."""
    if not isinstance(cell, Sequence) or isinstance(cell, str) or len(cell) != 2:
        return None, ""
    events, total = cell
    valid = all(isinstance(v, int) and not isinstance(v, bool) for v in (events, total))
    if not valid or total <= 0 or not 0 <= events <= total:
        return None, ""
    return events / total, f"{events}/{total}"
