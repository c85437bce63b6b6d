"""The stages keep the layering that pyproject.toml declares (import-linter's contract).

A module imports only from the layers below its own: the CLI renders, the pipeline chains the
stages, the report reads the registry, the readers of repo files never write to it. The
contract lists the layers; this runs it on the code as it is, so a new import that crosses a
layer upward fails here with the chain that crosses it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from importlinter.cli import lint_imports

ROOT = Path(__file__).resolve().parent.parent


def test_the_import_contract_holds(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(ROOT)
    code = lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True, no_logo=True)
    assert code == 0, capsys.readouterr().out


def test_every_package_directory_is_a_package() -> None:
    """A folder of modules without ``__init__.py`` is invisible to the contract (and to
    setuptools' ``find``, so it would be missing from the wheel)."""
    for package in ("lineage", "audit", "registry"):
        for folder in (ROOT / package).rglob("*"):
            if folder.is_dir() and folder.name != "__pycache__" and any(folder.glob("*.py")):
                assert (folder / "__init__.py").is_file(), f"{folder} has no __init__.py"
