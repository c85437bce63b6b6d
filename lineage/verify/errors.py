"""What ``lineage verify`` raises: typed, one line each, with the step that fixes it."""

from __future__ import annotations

from lineage.errors import LineageError


class NotVerifiableError(LineageError):
    """The model is not in the registry, or was never read successfully."""
