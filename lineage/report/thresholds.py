"""The numbers the brief reports against, imported from the stages that decide them.

Never restated in the report: a merge "reproduces the weights" exactly when ``lineage
verify`` calls it exact (below ``EXACT_RESIDUAL``; above, it raises ``recipe_mismatch``),
and an audit record that does not say its δ or α was decided with the audit's defaults.
"""

from __future__ import annotations

from audit.statistics import DEFAULT_ALPHA, DEFAULT_DELTA
from lineage.verify.thresholds import EXACT_RESIDUAL

__all__ = ["DEFAULT_ALPHA", "DEFAULT_DELTA", "EXACT_RESIDUAL"]
