"""Local source: a folder tree laid out ``<root>/<org>/<name>/`` (or ``<root>/<name>/``).

Each repo folder holds what a Hub repo would (README.md, config.json, safetensors, ...).
Local folders have no commits, so the revision is a content hash: a node whose files
are unchanged keeps its revision and is not re-read.
"""

from __future__ import annotations

import hashlib
import os
import stat
import threading
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from lineage.errors import (
    FileTooLargeError,
    InvalidReferenceError,
    LineageError,
    MalformedFileError,
    RepoNotFoundError,
    RevisionNotFoundError,
)
from lineage.records import ModelSnapshot
from lineage.references import validate_filename, validate_repo_id
from lineage.safetensors_header import ByteRangeReader, FileRangeReader
from lineage.sources.assemble import read_snapshot
from lineage.sources.base import KnownRevisions

MAX_FILES_PER_REPO = 10_000
MAX_TEXT_BYTES = 64 * 1024 * 1024  # the parsers hold tighter bounds per file kind
FULL_HASH_LIMIT = 8 * 1024 * 1024  # bigger files: hash size, mtime and both ends
MODEL_MARKERS = ("README.md", "config.json", "adapter_config.json", "mergekit_config.yml")


class UnreadableSiblingsError(MalformedFileError):
    """Some folders of a local tree could not be read while listing a model's children.

    ``children`` holds the children found among the folders that could be read: the crawl
    goes on with them and reports the rest for the node."""

    def __init__(self, message: str, *, repo_id: str | None, children: list[str]):
        super().__init__(message, repo_id=repo_id)
        self.children = children


def _resolve(path: Path, *, repo_id: str | None = None) -> Path:
    """``path`` resolved; a symlink loop (RuntimeError on Python < 3.13) is a one-line error."""
    try:
        return path.resolve()
    except (RuntimeError, OSError) as error:
        raise InvalidReferenceError(
            f"{path} cannot be resolved (a symlink loop?): {error}", repo_id=repo_id
        ) from error


def _regular_file_within(path: Path, folder: Path) -> bool:
    """True when ``path`` is a regular file, or a symlink to one inside ``folder``.

    Decided from ``lstat`` (and the link's target) without opening anything: FIFOs,
    sockets, devices, dangling or looping links and links out of ``folder`` are never
    opened (opening a FIFO blocks forever)."""
    try:
        info = path.lstat()
        if stat.S_ISREG(info.st_mode):
            return True
        if not stat.S_ISLNK(info.st_mode):
            return False
        target = path.resolve(strict=True)
        return target.is_relative_to(folder) and stat.S_ISREG(target.stat().st_mode)
    except (OSError, RuntimeError):
        return False


def _is_folder(path: Path) -> bool:
    """A real folder, judged by ``lstat`` (a symlink to a folder is not one)."""
    try:
        return stat.S_ISDIR(path.lstat().st_mode)
    except OSError:
        return False


def _looks_like_model_folder(path: Path) -> bool:
    """Whether ``path`` holds a card, a config, a recipe or weights (as regular files)."""
    if any(_regular_file_within(path / marker, path) for marker in MODEL_MARKERS):
        return True
    try:
        with os.scandir(path) as entries:
            for count, entry in enumerate(entries):
                if count > MAX_FILES_PER_REPO:
                    return False
                name = Path(entry.name)
                if name.suffix in (".safetensors", ".gguf") and _regular_file_within(
                    path / name, path
                ):
                    return True
    except OSError:
        return False
    return False


class LocalRepoFiles:
    """The files of one local repo folder; every name is validated against traversal."""

    def __init__(self, repo_id: str, folder: Path):
        self.repo_id = repo_id
        self.folder = folder
        self._names = self._list()

    def _list(self) -> list[str]:
        names: list[str] = []

        def unreadable(error: OSError) -> None:
            raise MalformedFileError(
                f"cannot read the folder {error.filename} ({error.strerror or error})",
                repo_id=self.repo_id,
            ) from error

        for current, dirs, files in os.walk(self.folder, onerror=unreadable, followlinks=False):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for file_name in sorted(files):
                full = Path(current) / file_name
                if not _regular_file_within(full, self.folder):
                    continue  # a FIFO, device, broken link or link out of the repo: not a file
                names.append(full.relative_to(self.folder).as_posix())
                if len(names) > MAX_FILES_PER_REPO:
                    raise MalformedFileError(
                        f"more than {MAX_FILES_PER_REPO} files in the folder", repo_id=self.repo_id
                    )
        return names

    def names(self) -> list[str]:
        return list(self._names)

    def _path(self, name: str) -> Path:
        validate_filename(name)
        path = self.folder / name
        # Checked again when opened: the folder may have changed since it was listed.
        if not _regular_file_within(path, self.folder):
            raise MalformedFileError(
                "not a regular file in the repo folder", repo_id=self.repo_id, file=name
            )
        return path

    def read_text(self, name: str) -> str:
        path = self._path(name)
        with path.open("rb") as handle:
            data = handle.read(MAX_TEXT_BYTES + 1)
        if len(data) > MAX_TEXT_BYTES:
            raise FileTooLargeError(
                f"larger than {MAX_TEXT_BYTES // (1024 * 1024)} MiB",
                repo_id=self.repo_id,
                file=name,
            )
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as error:
            raise MalformedFileError(
                f"not UTF-8 text (byte {error.start})", repo_id=self.repo_id, file=name
            ) from error

    def range_reader(self, name: str) -> ByteRangeReader:
        return FileRangeReader(self._path(name))

    def content_hash(self) -> str:
        """A 40-hex revision id of the folder's content, git-sha shaped."""
        digest = hashlib.sha1()
        for name in self._names:
            path = self._path(name)
            info = path.stat()
            digest.update(f"{name}\0{info.st_size}\0".encode())
            with path.open("rb") as handle:
                if info.st_size <= FULL_HASH_LIMIT:
                    digest.update(hashlib.sha256(handle.read()).digest())
                else:
                    digest.update(str(info.st_mtime_ns).encode())
                    digest.update(handle.read(65536))
                    handle.seek(-65536, os.SEEK_END)
                    digest.update(handle.read(65536))
        return digest.hexdigest()

    def last_modified(self) -> datetime | None:
        stamps = [(self.folder / name).stat().st_mtime for name in self._names]
        return datetime.fromtimestamp(max(stamps), tz=timezone.utc) if stamps else None


class LocalSource:
    """Reads repos from a local tree; ``children`` scans the tree's declared parents."""

    name = "local"

    @classmethod
    def claims(cls, spec: str) -> bool:
        """Whether ``spec`` names a local model folder: an explicit path (``./``, ``/``, ``~``,
        a backslash), or ``<root>/<org>/<name>`` that exists. ``org/name`` is a Hub repo."""
        if spec.startswith((".", "/", "~")) or "\\" in spec:
            return True
        return spec.count("/") >= 2 and Path(spec).is_dir()

    def __init__(self, root: Path | str):
        self.root = _resolve(Path(root).expanduser())
        if not self.root.is_dir():
            raise InvalidReferenceError(f"local root {self.root} is not a folder")
        self._children_index: dict[str, list[str]] | None = None
        self._unreadable: list[str] = []
        self._lock = threading.Lock()

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled as its root (a worker process opens its own): the lock and the children
        index stay behind."""
        return (LocalSource, (self.root,))

    def describe(self) -> str:
        return f"local folder tree {self.root}"

    def folder_of(self, repo_id: str) -> Path:
        validate_repo_id(repo_id)
        folder = _resolve(self.root / repo_id, repo_id=repo_id)
        if not folder.is_relative_to(self.root):
            raise InvalidReferenceError(f"'{repo_id}' points outside {self.root}")
        if not folder.is_dir():
            raise RepoNotFoundError(f"no folder {folder} under the local root", repo_id=repo_id)
        return folder

    def fetch(self, repo_id: str, revision: str | None, *, known: KnownRevisions) -> ModelSnapshot:
        if revision is not None:
            raise InvalidReferenceError(
                f"local folders have no revisions (asked for '{revision}')", repo_id=repo_id
            )
        files = LocalRepoFiles(repo_id, self.folder_of(repo_id))
        if not any(
            name in MODEL_MARKERS or name.endswith((".safetensors", ".gguf"))
            for name in files.names()
        ):
            raise RepoNotFoundError(
                "the folder holds no model files (README.md, config.json, adapter_config.json,"
                " mergekit_config.yml, *.safetensors, *.gguf)",
                repo_id=repo_id,
            )
        sha = files.content_hash()
        if sha in known.get(repo_id, frozenset()):
            return ModelSnapshot(repo_id=repo_id, source=self.name, revision=sha, unchanged=True)
        return read_snapshot(
            repo_id, files, source=self.name, revision=sha, last_modified=files.last_modified()
        )

    def range_reader(self, repo_id: str, filename: str, sha: str) -> ByteRangeReader:
        """Byte ranges of a file in the repo's folder (``sha`` is the folder's content hash:
        local files have no history, so the file as it is now is read)."""
        return LocalRepoFiles(repo_id, self.folder_of(repo_id)).range_reader(filename)

    def model_folder(self, repo_id: str, sha: str, patterns: Sequence[str]) -> Path:
        """The repo's own folder, provided its content still hashes to ``sha``: a model
        evaluated must be the revision the registry recorded, not whatever is there now."""
        files = LocalRepoFiles(repo_id, self.folder_of(repo_id))
        current = files.content_hash()
        if current != sha:
            raise RevisionNotFoundError(
                f"the folder changed since revision {sha[:12]} was crawled (now {current[:12]});"
                " crawl it again",
                repo_id=repo_id,
            )
        return files.folder

    def repo_ids(self) -> list[str]:
        """Every repo in the tree: ``<org>/<name>`` folders, or ``<name>`` model folders."""
        return self._scan()[0]

    def _scan(self) -> tuple[list[str], list[str]]:
        """The repo ids of the tree, and one line per folder entry that could not be read.

        Entries are judged from ``lstat`` before anything is opened: a symlink counts only
        when it resolves to a folder inside the root; a looping link, or one that leaves
        the root, is reported and never followed; FIFOs and other files are not folders."""
        found: list[str] = []
        unreadable: list[str] = []

        def folders(parent: Path) -> list[Path]:
            result = []
            for path in sorted(_entries(parent)):
                if path.name.startswith("."):
                    continue
                kind = self._tree_entry(path)
                if kind == "folder":
                    result.append(path)
                elif kind is not None:
                    unreadable.append(f"{path.relative_to(self.root).as_posix()}: {kind}")
            return result

        for first in folders(self.root):
            if _looks_like_model_folder(first):
                found.append(first.name)
                continue
            for second in folders(first):
                if _looks_like_model_folder(second):
                    found.append(f"{first.name}/{second.name}")
        valid = []
        for repo_id in found:
            try:
                valid.append(validate_repo_id(repo_id))
            except InvalidReferenceError:
                continue  # a folder whose name is no repo id is not a repo
        return valid, unreadable

    def _tree_entry(self, path: Path) -> str | None:
        """ "folder", None for an entry that is no folder, else why a link was not followed."""
        try:
            info = path.lstat()
        except OSError:
            return None
        if stat.S_ISDIR(info.st_mode):
            return "folder"
        if not stat.S_ISLNK(info.st_mode):
            return None
        try:
            target = path.resolve(strict=True)
        except (RuntimeError, OSError) as error:
            if isinstance(error, FileNotFoundError):
                return None  # a dangling link is no folder
            return "a symlink loop (not followed)"
        if not target.is_relative_to(self.root):
            return "a symlink out of the local root (not followed)"
        return "folder" if _is_folder(target) else None

    def children(self, repo_id: str) -> list[str]:
        with self._lock:
            if self._children_index is None:
                self._children_index, self._unreadable = self._index_children()
        found = list(self._children_index.get(repo_id, []))
        if self._unreadable:
            raise UnreadableSiblingsError(
                f"{len(self._unreadable)} folder(s) of {self.root} could not be read while"
                " looking for descendants: " + "; ".join(self._unreadable[:5]),
                repo_id=repo_id,
                children=found,
            )
        return found

    def _index_children(self) -> tuple[dict[str, list[str]], list[str]]:
        index: dict[str, list[str]] = {}
        repo_ids, unreadable = self._scan()
        for child in repo_ids:
            try:
                files = LocalRepoFiles(child, self.folder_of(child))
            except LineageError as error:
                unreadable.append(str(error))
                continue
            snapshot = read_snapshot(child, files, source=self.name, revision="")
            for parent in snapshot.parents:
                if parent.parent_kind == "repo":
                    index.setdefault(parent.parent, []).append(child)
        return index, unreadable


def _entries(folder: Path) -> list[Path]:
    try:
        with os.scandir(folder) as entries:
            return [folder / entry.name for entry in entries]
    except OSError:
        return []


def local_source_for_path(path: Path | str) -> tuple[LocalSource, str]:
    """A model folder given by path: its grandparent is the tree root, the id ``org/name``.

    Refused before anything is read or written: a path that is no folder, a symlink loop,
    a folder too close to ``/`` to have an ``org/name`` (``/``, ``/etc``), a name that is no
    repo id, and a folder that holds no model files (a card, a config, a recipe, weights).
    """
    folder = _resolve(Path(path).expanduser())
    if not folder.is_dir():
        raise InvalidReferenceError(f"{path} is not a folder")
    if folder.parent == folder or folder.parent.parent == folder.parent:
        raise InvalidReferenceError(
            f"{path} is not a model folder: a local model is given as <root>/<org>/<name>"
        )
    repo_id = f"{folder.parent.name}/{folder.name}"
    try:
        validate_repo_id(repo_id)
    except InvalidReferenceError as error:
        raise InvalidReferenceError(
            f"{path} is not a model folder: '{repo_id}' is no repo id ({error.reason})"
        ) from error
    if not _looks_like_model_folder(folder):
        raise InvalidReferenceError(
            f"{path} is not a model folder: it holds none of {', '.join(MODEL_MARKERS)},"
            " *.safetensors or *.gguf"
        )
    return LocalSource(folder.parent.parent), repo_id
