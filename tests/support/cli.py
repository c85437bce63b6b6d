"""The ``lineage`` command run as a user runs it, and the check of its one-line errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def run_lineage(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    full_env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("HF_TOKEN", "LINEAGE_DB", "HF_HUB_OFFLINE")
    }
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "lineage", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd,
        timeout=timeout,
        check=False,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert lines, result.stderr
    assert any(all(needle in line for needle in needles) for line in lines), lines
