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


def test_no_two_components_import_each_other() -> None:
    """Siblings of one layer may import each other (``:`` in the contract), but never both
    ways: a cycle between components would make them one component in disguise."""
    grimp = pytest.importorskip("grimp")  # import-linter's own graph builder
    graph = grimp.build_graph("lineage", "audit", "registry")
    components = sorted(
        {module for module in graph.modules if module.count(".") == 1 and module != "lineage.cli"}
        | {"audit", "registry", "lineage.cli"}
    )
    components = [c for c in components if not c.startswith(("audit.", "registry."))]
    cycles = [
        (a, b)
        for index, a in enumerate(components)
        for b in components[index + 1 :]
        if graph.chain_exists(importer=a, imported=b, as_packages=True)
        and graph.chain_exists(importer=b, imported=a, as_packages=True)
    ]
    assert cycles == []
