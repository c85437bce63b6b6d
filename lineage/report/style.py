"""The colours, fonts and dash patterns every figure of the brief shares.

A muted palette that survives greyscale: every meaning also has a dash, hatch or word, so
nothing is told apart by colour alone.
"""

from __future__ import annotations

FONT = "Helvetica, Arial, 'Liberation Sans', 'DejaVu Sans', sans-serif"

INK = "#1f2933"
MUTED = "#52606d"
FAINT = "#7b8794"
RULE = "#cbd2d9"
GRID = "#e4e7eb"
PAPER = "#ffffff"
ACCENT = "#2f4b6e"
ACCENT_TINT = "#e8eef5"
RED = "#b42318"
GREEN = "#2f6f3e"

INFERRED_DASH = "5 3"
CONTRADICTED_DASH = "7 3 1.5 3"
MISSING_DASH = "4 3"

MARGIN = 16.0  # around every figure
