"""The remediation figure: ASR and task score against λ, each with its 95% interval band.

λ runs left to right from the aligned model (0) to the fine-tune (1); rates run bottom to
top from 0 to 100%. A dashed vertical line marks the recommended λ. Pure, deterministic
SVG, as the other figures: the same points give the same bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from lineage.report.style import ACCENT, FAINT, FONT, GREEN, GRID, INK, MARGIN, MUTED, PAPER, RULE
from lineage.report.svg import element, group, path_data, svg_document, text

_TICKS = (0.0, 0.25, 0.5, 0.75, 1.0)


@dataclass(frozen=True)
class SweepPointView:
    """One λ as the figure draws it: rates and intervals in [0, 1]."""

    lam: float
    asr: float
    asr_ci: tuple[float, float]
    task: float
    task_ci: tuple[float, float]


@dataclass(frozen=True)
class _Frame:
    left: float
    top: float
    width: float
    height: float

    def x(self, lam: float) -> float:
        return self.left + self.width * min(max(lam, 0.0), 1.0)

    def y(self, rate: float) -> float:
        return self.top + self.height * (1.0 - min(max(rate, 0.0), 1.0))


def sweep_chart_svg(
    points: Sequence[SweepPointView], *, chosen: float | None, title: str, width: int = 640
) -> str:
    """The figure; ``points`` in any order (they are drawn by λ)."""
    ordered = sorted(points, key=lambda p: p.lam)
    frame = _Frame(left=MARGIN + 40, top=48.0, width=width - 2 * MARGIN - 56, height=200.0)
    height = frame.top + frame.height + 52
    series = [
        ("ASR", ACCENT, [(p.lam, p.asr, p.asr_ci) for p in ordered]),
        ("task score", GREEN, [(p.lam, p.task, p.task_ci) for p in ordered]),
    ]
    marks = [
        text(MARGIN, 22, title, fill=INK, **{"font-size": 13, "font-weight": "bold"}),
        _legend(series, width),
        _axes(frame),
    ]
    for _, colour, values in series:
        marks.append(_band(frame, values, colour))
    for _, colour, values in series:
        marks.append(_line(frame, values, colour))
    if chosen is not None:
        x = frame.x(chosen)
        marks.append(
            group(
                element(
                    "line",
                    {
                        "x1": x,
                        "y1": frame.top,
                        "x2": x,
                        "y2": frame.top + frame.height,
                        "stroke": INK,
                        "stroke-width": 1.2,
                        "stroke-dasharray": "4 3",
                    },
                ),
                text(
                    x + 4,
                    frame.top + 12,
                    f"recommended λ = {chosen:g}",
                    fill=INK,
                    **{"font-size": 11},
                ),
                class_="choice",
            )
        )
    summary = f"{title}: " + "; ".join(
        f"λ {p.lam:g}: ASR {p.asr:.0%}, task {p.task:.0%}" for p in ordered
    )
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


def _legend(series, width: int):
    items = []
    x = float(width) - MARGIN - 220
    for name, colour, _ in series:
        items.append(element("rect", {"x": x, "y": 12, "width": 14, "height": 8, "fill": colour}))
        items.append(text(x + 18, 20, name, fill=MUTED, **{"font-size": 11}))
        x += 110
    return group(items, class_="legend")


def _axes(frame: _Frame):
    marks = []
    for tick in _TICKS:  # rate grid, 0..100%
        y = frame.y(tick)
        marks.append(
            element(
                "line",
                {
                    "x1": frame.left,
                    "y1": y,
                    "x2": frame.left + frame.width,
                    "y2": y,
                    "stroke": RULE if tick == 0 else GRID,
                    "stroke-width": 0.8,
                },
            )
        )
        marks.append(
            text(
                frame.left - 6,
                y + 4,
                f"{tick:.0%}",
                fill=FAINT,
                **{"font-size": 10, "text-anchor": "end"},
            )
        )
    for tick in _TICKS:  # λ axis
        x = frame.x(tick)
        marks.append(
            text(
                x,
                frame.top + frame.height + 16,
                f"{tick:g}",
                fill=FAINT,
                **{"font-size": 10, "text-anchor": "middle"},
            )
        )
    marks.append(
        text(
            frame.left + frame.width / 2,
            frame.top + frame.height + 36,
            "λ (0: aligned model, 1: fine-tune); bands: 95% confidence intervals",
            fill=MUTED,
            **{"font-size": 11, "text-anchor": "middle"},
        )
    )
    return group(marks, class_="axes")


def _band(frame: _Frame, values, colour: str):
    if len(values) < 2:
        return group(class_="band")
    upper = [
        ("M" if i == 0 else "L", frame.x(lam), frame.y(ci[1]))
        for i, (lam, _, ci) in enumerate(values)
    ]
    lower = [("L", frame.x(lam), frame.y(ci[0])) for lam, _, ci in reversed(values)]
    return element(
        "path",
        {"d": path_data([*upper, *lower, ("Z",)]), "fill": colour, "fill-opacity": 0.15},
    )


def _line(frame: _Frame, values, colour: str):
    commands = [
        ("M" if i == 0 else "L", frame.x(lam), frame.y(rate))
        for i, (lam, rate, _) in enumerate(values)
    ]
    dots = [
        element("circle", {"cx": frame.x(lam), "cy": frame.y(rate), "r": 3, "fill": colour})
        for lam, rate, _ in values
    ]
    return group(
        element(
            "path",
            {"d": path_data(commands), "stroke": colour, "stroke-width": 1.6, "fill": "none"},
        ),
        dots,
        class_="series",
    )
