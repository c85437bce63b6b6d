"""The ``lineage`` command against hostile cards, paths, trees, outputs and registries
(issue 11): one line and an exit code, nothing raw reaching the terminal, nothing recorded
for what is no model."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest

from tests.support.cli import assert_one_line_error, run_lineage

pytestmark = pytest.mark.timeout(240)

HOSTILE = r"[/red] [bold]b[/bold] [link=http://e.vil]y[/link] \e[2J\e]0;title\a [begin, end]"


def _card(folder: Path, *, base: str | None = None, license: str = "mit") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    front = f"base_model: {base}\n" if base else ""
    (folder / "README.md").write_text(f"---\n{front}license: {license}\n---\n# model\n")
    return folder


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"LINEAGE_DB": f"sqlite:///{tmp_path / 'registry.db'}", "COLUMNS": "400"}


def _no_raw_controls(*texts: str) -> None:
    for text in texts:
        assert "\x1b" not in text and "\x07" not in text, text


def test_card_text_is_shown_literally_never_as_markup_or_escapes(tmp_path, env):
    root = tmp_path / "tree"
    _card(root / "org" / "base")
    hostile = _card(
        root / "org" / "hostile",
        base=f'["org/base", "{HOSTILE}"]',
        license=f'"{HOSTILE}"',
    )
    crawled = run_lineage("crawl", str(hostile), "--no-fingerprint", env=env)
    assert "Traceback" not in crawled.stderr and "MarkupError" not in crawled.stderr
    _no_raw_controls(crawled.stdout, crawled.stderr)
    assert "[/red] [bold]b[/bold] [link=http://e.vil]y[/link]" in crawled.stderr
    assert "\\x1b[2J\\x1b]0;title\\x07 [begin, end]" in crawled.stderr

    shown = run_lineage("registry", "show", "org/hostile", env=env)
    listed = run_lineage("registry", "list", env=env)
    for result in (shown, listed):
        assert result.returncode == 0, result.stderr
        _no_raw_controls(result.stdout, result.stderr)
    assert "[/red] [bold]b[/bold] [link=http://e.vil]y[/link]" in shown.stdout
    assert "\\x1b[2J\\x1b]0;title\\x07 [begin, end]" in shown.stdout
    shown_json = json.loads(
        run_lineage("registry", "show", "org/hostile", "--json", env=env).stdout
    )
    assert shown_json["license"] == HOSTILE.replace(r"\e", "\x1b").replace(r"\a", "\x07")


@pytest.mark.parametrize("argument", ["/", "/etc", "..", "../../etc"])
def test_paths_near_the_root_are_refused_before_anything_is_written(argument, tmp_path, env):
    cwd = tmp_path / "a" / "b"
    cwd.mkdir(parents=True)
    for command in (["crawl", argument], ["graph", argument], ["verify", argument]):
        result = run_lineage(*command, env=env, cwd=cwd)
        assert result.returncode == 2, (command, result.stderr)
        assert_one_line_error(result)
    brief = run_lineage("brief", argument, "-o", str(tmp_path / "b.html"), env=env, cwd=cwd)
    assert brief.returncode == 2 and "Traceback" not in brief.stderr
    assert not (tmp_path / "registry.db").exists()


def test_an_empty_folder_by_path_records_nothing(tmp_path, env):
    (tmp_path / "org" / "empty").mkdir(parents=True)
    result = run_lineage("crawl", str(tmp_path / "org" / "empty"), env=env)
    assert result.returncode == 2
    assert_one_line_error(result, "not a model folder")
    assert not (tmp_path / "registry.db").exists()


def test_symlink_loop_argument_is_one_line(tmp_path, env):
    loop = tmp_path / "org" / "loop"
    loop.parent.mkdir()
    loop.symlink_to(loop)
    result = run_lineage("crawl", str(loop), env=env)
    assert result.returncode == 2
    assert_one_line_error(result, "symlink loop")


@pytest.mark.timeout(120)
def test_fifo_in_model_and_sibling_folders_does_not_hang(tmp_path, env):
    root = tmp_path / "tree"
    base = _card(root / "org" / "base")
    os.mkfifo(base / "config.json")
    child = _card(root / "org" / "child", base="org/base")
    os.mkfifo(child / "model.safetensors")
    result = run_lineage("crawl", str(base), "--descendants", "--json", env=env, timeout=90)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["nodes"] == {"org/base": "ok", "org/child": "ok"}


def test_unreadable_sibling_is_reported_for_the_node(tmp_path, env):
    root = tmp_path / "tree"
    base = _card(root / "org" / "base")
    _card(root / "org" / "child", base="org/base")
    (root / "org" / "loop").symlink_to(root / "org" / "loop")
    outside = _card(tmp_path / "elsewhere" / "model", base="org/base")
    (root / "org" / "escape").symlink_to(outside)
    result = run_lineage("crawl", str(base), "--descendants", "--json", env=env, timeout=90)
    assert result.returncode == 1, result.stderr
    assert_one_line_error(result, "org/base", "org/loop: a symlink loop")
    assert_one_line_error(result, "org/escape: a symlink out of the local root")
    assert "elsewhere/model" not in json.loads(result.stdout)["nodes"]


def test_output_paths_that_cannot_be_written_are_one_line(tmp_path, env):
    model = _card(tmp_path / "tree" / "org" / "model")
    folder = tmp_path / "out-dir"
    folder.mkdir()
    as_dir = run_lineage("graph", str(model), "-o", str(folder), env=env)
    assert as_dir.returncode == 2
    assert_one_line_error(as_dir, "is a folder")
    missing = run_lineage("graph", str(model), "-o", str(tmp_path / "missing" / "x.dot"), env=env)
    assert missing.returncode == 2
    assert_one_line_error(missing, "does not exist")
    existing = tmp_path / "existing_file"
    existing.write_text("keep")
    export = run_lineage("export", "org/model", "--out", str(existing), "--no-pdf", env=env)
    assert export.returncode == 2
    assert_one_line_error(export, "not a folder")
    assert existing.read_text() == "keep"


def test_registry_check_and_damaged_registries(tmp_path, env):
    model = _card(tmp_path / "tree" / "org" / "model")
    assert run_lineage("crawl", str(model), "--no-fingerprint", env=env).returncode == 0
    clean = run_lineage("registry", "check", env=env)
    assert clean.returncode == 0 and "ok" in clean.stdout, clean.stderr

    path = tmp_path / "registry.db"
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    damaged = tmp_path / "lost-column.db"
    damaged.write_bytes(path.read_bytes())
    with sqlite3.connect(damaged) as conn:
        conn.execute("ALTER TABLE revision DROP COLUMN license")
    lost = {**env, "LINEAGE_DB": f"sqlite:///{damaged}"}
    for command in (["registry", "list"], ["registry", "info"], ["crawl", str(model)]):
        result = run_lineage(*command, env=lost)
        assert result.returncode == 2, (command, result.stderr)
        assert_one_line_error(result, "lost-column.db", "lineage registry check")
    check = run_lineage("registry", "check", env=lost)
    assert check.returncode == 2
    assert_one_line_error(check, "table revision lacks column(s) license")

    truncated = tmp_path / "truncated.db"
    truncated.write_bytes(path.read_bytes()[:8192])
    cut = {**env, "LINEAGE_DB": f"sqlite:///{truncated}"}
    for command in (["registry", "list"], ["registry", "check"]):
        result = run_lineage(*command, env=cut)
        assert result.returncode == 2, (command, result.stderr)
        assert_one_line_error(result, "truncated.db")


def test_error_lines_escape_markup_and_control_codes(capsys):
    from lineage.cli import render

    render.problem("CUDA error: \x1b[1mdevice-side assert\x1b[0m at [/red] [begin, end]\nnext")
    render.warning("[link=http://e.vil]click[/link] \x9b31m")
    err = capsys.readouterr().err
    _no_raw_controls(err)
    assert "\x9b" not in err
    lines = err.splitlines()
    assert lines == [
        "error: CUDA error: \\x1b[1mdevice-side assert\\x1b[0m at [/red] [begin, end]\\nnext",
        "warning: [link=http://e.vil]click[/link] \\x9b31m",
    ]
