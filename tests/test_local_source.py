"""The local source on trees the zoo does not cover."""

from __future__ import annotations

import json
import os
from pathlib import Path
from unittest.mock import patch

import pytest

from lineage.errors import InvalidReferenceError, RepoNotFoundError
from lineage.sources.local import (
    MAX_FILES_PER_REPO,
    LocalSource,
    UnreadableSiblingsError,
    local_source_for_path,
)


def test_index_naming_a_missing_shard_is_an_error_naming_the_index(tmp_path):
    folder = tmp_path / "org" / "sharded"
    folder.mkdir(parents=True)
    (folder / "README.md").write_text("---\nlicense: mit\n---\n")
    (folder / "model.safetensors.index.json").write_text(
        json.dumps({"weight_map": {"lm_head.weight": "model-00001-of-00002.safetensors"}})
    )
    snapshot = LocalSource(tmp_path).fetch("org/sharded", None, known={})
    assert snapshot.status == "error"
    assert snapshot.status_reason == (
        "model.safetensors.index.json: index names shard(s) not in the repo: "
        "model-00001-of-00002.safetensors"
    )
    assert snapshot.card is not None and snapshot.card.license == "mit"  # the rest is kept


# -- hostile trees (issue 11): nothing hangs, loops or is opened before it is checked ----------


def _card(folder, base=None):
    folder.mkdir(parents=True, exist_ok=True)
    front = f"base_model: {base}\n" if base else "license: mit\n"
    (folder / "README.md").write_text(f"---\n{front}---\n")
    return folder


@pytest.mark.timeout(30)
def test_fifo_in_a_model_folder_is_never_opened(tmp_path):
    folder = _card(tmp_path / "org" / "model")
    os.mkfifo(folder / "config.json")  # opening it would block forever
    os.mkfifo(folder / "weights.safetensors")
    snapshot = LocalSource(tmp_path).fetch("org/model", None, known={})
    assert snapshot.status == "ok"
    assert snapshot.files == ["README.md"]


@pytest.mark.timeout(30)
def test_symlink_loops_in_a_folder_are_skipped_not_raised(tmp_path):
    folder = _card(tmp_path / "org" / "model")
    (folder / "loop").symlink_to(folder / "loop")
    (folder / "a").symlink_to(folder / "b")
    (folder / "b").symlink_to(folder / "a")
    snapshot = LocalSource(tmp_path).fetch("org/model", None, known={})
    assert snapshot.status == "ok" and snapshot.files == ["README.md"]


def test_a_link_out_of_the_folder_is_not_part_of_the_repo(tmp_path):
    outside = tmp_path / "secret.json"
    outside.write_text("{}")
    folder = _card(tmp_path / "root" / "org" / "model")
    (folder / "config.json").symlink_to(outside)
    snapshot = LocalSource(tmp_path / "root").fetch("org/model", None, known={})
    assert "config.json" not in snapshot.files


def test_a_repo_id_that_is_a_symlink_loop_is_one_error(tmp_path):
    (tmp_path / "org").mkdir()
    (tmp_path / "org" / "loop").symlink_to(tmp_path / "org" / "loop")
    with pytest.raises(InvalidReferenceError, match="symlink loop"):
        LocalSource(tmp_path).fetch("org/loop", None, known={})


def test_a_folder_without_model_files_is_not_a_model(tmp_path):
    (tmp_path / "org" / "empty").mkdir(parents=True)
    (tmp_path / "org" / "empty" / "notes.txt").write_text("hello")
    with pytest.raises(RepoNotFoundError, match="no model files"):
        LocalSource(tmp_path).fetch("org/empty", None, known={})


@pytest.mark.timeout(30)
def test_unreadable_siblings_are_reported_with_the_readable_children(tmp_path):
    root = tmp_path / "root"
    _card(root / "org" / "base")
    _card(root / "org" / "child", base="org/base")
    fifo_sibling = _card(root / "org" / "fifo-child", base="org/base")
    os.mkfifo(fifo_sibling / "config.json")
    (root / "org" / "loop").symlink_to(root / "org" / "loop")
    outside = _card(tmp_path / "elsewhere" / "model", base="org/base")
    (root / "org" / "escape").symlink_to(outside)
    crowded = _card(root / "org" / "crowded", base="org/base")
    for n in range(MAX_FILES_PER_REPO + 1):
        (crowded / f"f{n}").touch()
    opened: list[str] = []
    real_open = Path.open

    def spying_open(self, *args, **kwargs):
        opened.append(str(self))
        return real_open(self, *args, **kwargs)

    source = LocalSource(root)
    with patch.object(Path, "open", spying_open), pytest.raises(UnreadableSiblingsError) as err:
        source.children("org/base")
    assert sorted(err.value.children) == ["org/child", "org/fifo-child"]
    message = str(err.value)
    assert "org/loop: a symlink loop" in message
    assert "org/escape: a symlink out of the local root" in message
    assert "org/crowded" in message and "more than" in message
    assert not any("elsewhere" in path for path in opened)  # refused before it was opened


@pytest.mark.parametrize("argument", ["/", "/etc", "..", "../..", "../../etc"])
def test_paths_near_the_root_are_no_model_folders(argument, tmp_path, monkeypatch):
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    with pytest.raises(InvalidReferenceError, match=r"is not a (model )?folder"):
        local_source_for_path(argument)


def test_an_empty_folder_by_path_is_refused(tmp_path):
    (tmp_path / "org" / "empty").mkdir(parents=True)
    with pytest.raises(InvalidReferenceError, match="holds none of"):
        local_source_for_path(tmp_path / "org" / "empty")
    _card(tmp_path / "org" / "model")
    source, repo_id = local_source_for_path(tmp_path / "org" / "model")
    assert repo_id == "org/model" and source.root == tmp_path.resolve()


@pytest.mark.timeout(60)
def test_a_descendants_crawl_reads_the_readable_siblings_and_reports_the_rest(tmp_path):
    from lineage.crawler import CrawlOptions, crawl
    from registry.database import Registry

    root = tmp_path / "root"
    _card(root / "org" / "base")
    _card(root / "org" / "child", base="org/base")
    (root / "org" / "loop").symlink_to(root / "org" / "loop")
    registry = Registry.open(f"sqlite:///{tmp_path / 'registry.db'}")
    options = CrawlOptions(descendants=True, fingerprint=False)
    report = crawl(registry, LocalSource(root), ["org/base"], options)
    assert report.nodes.get("org/child") == "ok"  # the readable sibling was crawled
    (problem,) = [p for p in report.problems if p.repo_id == "org/base"]
    assert "descendants not listed" in problem.message and "symlink loop" in problem.message
    assert not report.ok
