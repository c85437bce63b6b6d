"""The corpus of real, published model-repo files in ``tests/data/real/models/``.

Each folder holds one Hub repo's small text files, byte for byte as published (README.md,
config.json, adapter_config.json, mergekit_config.yml, quantize_config.json, ...), and may
hold ``_files.txt``: the names of the repo's other files (weights are never committed), so
that a GGUF-only repo still shows its ``.gguf`` files. ``EXPECTED.yaml`` is the hand-made
truth: each model's direct parents, relation, merge method and parameters.

Used by the tests (local and Hub mode must read each folder alike) and by
``benchmarks/real_cards.py`` (recall, precision, relation and recipe accuracy).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lineage.errors import MalformedFileError
from lineage.local_refs import normalise_local_path
from lineage.records import ModelSnapshot, ParentLink
from lineage.sources.assemble import read_snapshot

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "data" / "real" / "models"
LISTING = "_files.txt"
# Listed files the tests may stand in for with an empty file: their names are the evidence.
PLACEHOLDER_SUFFIXES = (".gguf", ".bin", ".pt", ".pth", ".ckpt")


def folders() -> list[str]:
    return sorted(p.name for p in CORPUS.iterdir() if p.is_dir())


def expected() -> dict[str, dict[str, Any]]:
    with (CORPUS / "EXPECTED.yaml").open(encoding="utf-8") as handle:
        return yaml.safe_load(handle) or {}


def listed_names(folder: Path) -> list[str]:
    listing = folder / LISTING
    if not listing.is_file():
        return []
    return [line.strip() for line in listing.read_text().splitlines() if line.strip()]


def real_files(folder: Path) -> list[str]:
    return sorted(
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*")
        if p.is_file() and p.name != LISTING
    )


class CorpusRepoFiles:
    """One corpus folder as a repo: its real files, plus the listed names of the rest."""

    def __init__(self, repo_id: str, folder: Path):
        self.repo_id = repo_id
        self.folder = folder
        present = real_files(folder)
        listed = [name for name in listed_names(folder) if name.endswith(PLACEHOLDER_SUFFIXES)]
        self._names = sorted(set(present) | set(listed))
        self._present = set(present)

    def names(self) -> list[str]:
        return list(self._names)

    def read_text(self, name: str) -> str:
        if name not in self._present:
            raise MalformedFileError("not in the fixture", repo_id=self.repo_id, file=name)
        return (self.folder / name).read_bytes().decode("utf-8", "replace")

    def range_reader(self, name: str) -> Any:
        raise MalformedFileError("weights are not in the fixture", repo_id=self.repo_id, file=name)


def repo_id_of(folder_name: str, truth: dict[str, Any] | None = None) -> str:
    if truth and isinstance(truth.get("repo_id"), str):
        return truth["repo_id"]
    return folder_name.replace("__", "/", 1)


def local_snapshot(folder_name: str, truth: dict[str, Any] | None = None) -> ModelSnapshot:
    repo_id = repo_id_of(folder_name, truth)
    files = CorpusRepoFiles(repo_id, CORPUS / folder_name)
    return read_snapshot(repo_id, files, source="local", revision="fixture")


def copy_as_tree(folder_names: list[str], root: Path, truths: dict[str, Any]) -> dict[str, str]:
    """Write the folders as a ``<org>/<name>/`` tree (placeholders for listed weights);
    returns folder name -> repo id."""
    ids: dict[str, str] = {}
    for name in folder_names:
        repo_id = repo_id_of(name, truths.get(name))
        target = root / repo_id
        shutil.copytree(CORPUS / name, target, ignore=shutil.ignore_patterns(LISTING))
        for listed in listed_names(CORPUS / name):
            if listed.endswith(PLACEHOLDER_SUFFIXES) and "/" not in listed:
                (target / listed).touch()
        ids[name] = repo_id
    return ids


# -- scoring against the truth ----------------------------------------------------------


@dataclass
class Score:
    """How one snapshot compares with its truth."""

    folder: str
    truth_parents: int = 0
    found: int = 0  # truth parents found
    predicted: int = 0
    correct: int = 0  # predicted parents that are in the truth
    relation_ok: bool | None = None
    method_ok: bool | None = None
    parameters_checked: int = 0
    parameters_ok: int = 0
    candidates_checked: int = 0  # local parents the truth maps to a Hub id
    candidates_ok: int = 0
    missed: list[str] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def perfect(self) -> bool:
        return (
            not self.missed
            and not self.wrong
            and self.relation_ok is not False
            and self.method_ok is not False
            and self.parameters_ok == self.parameters_checked
        )


def truth_keys(entry: dict[str, Any]) -> set[str]:
    """The keys a truth parent may be found under."""
    keys: set[str] = set()
    if entry.get("id"):
        keys.add("repo:" + str(entry["id"]).lower())
    if entry.get("local"):
        keys.add("local:" + normalise_local_path(str(entry["local"])))
        keys.add("stage:" + normalise_local_path(str(entry["local"])))
    if entry.get("stage"):
        keys.add("stage:" + normalise_local_path(str(entry["stage"])))
    if entry.get("id"):
        keys.add("stage:" + normalise_local_path(str(entry["id"])))
    if entry.get("local") and entry.get("candidate"):
        # A local folder that the card also declares by its Hub id is read as that repo.
        keys.add("repo:" + str(entry["candidate"]).lower())
    return keys


def link_key(link: ParentLink) -> str:
    if link.parent_kind == "repo":
        return "repo:" + link.parent.lower()
    if link.parent_kind == "intermediate":
        return "stage:" + normalise_local_path(link.parent.partition("#")[2])
    return "local:" + link.parent


def score(folder: str, snapshot: ModelSnapshot, truth: dict[str, Any]) -> Score:
    result = Score(folder)
    truth_parents = [p for p in truth.get("parents") or [] if isinstance(p, dict)]
    links = {link_key(link): link for link in snapshot.parents}
    matched: set[str] = set()
    for entry in truth_parents:
        result.truth_parents += 1
        hit = next((key for key in truth_keys(entry) if key in links), None)
        if hit is None:
            result.missed.append(str(entry.get("id") or entry.get("local") or entry))
            continue
        result.found += 1
        matched.add(hit)
        link = links[hit]
        if entry.get("local") and entry.get("candidate"):
            result.candidates_checked += 1
            wanted_id = str(entry["candidate"]).lower()
            if wanted_id in (link.parent.lower(), (link.candidate or "").lower()):
                result.candidates_ok += 1
        wanted = entry.get("parameters") or {}
        if wanted:
            result.parameters_checked += 1
            if _parameters_match(wanted, link.parameters):
                result.parameters_ok += 1
            else:
                result.problems.append(f"parameters of {link.parent}: {link.parameters}")
    result.predicted = len(links)
    result.correct = len(matched)
    result.wrong = [links[key].parent for key in links if key not in matched]
    if truth.get("relation") and truth_parents:  # no parents, no relation to judge
        result.relation_ok = snapshot.relation == truth["relation"]
        if not result.relation_ok:
            result.problems.append(f"relation {snapshot.relation}, not {truth['relation']}")
    if "method" in truth:
        method = snapshot.mergekit.merge_method if snapshot.mergekit else None
        result.method_ok = method == truth["method"]
        if not result.method_ok:
            result.problems.append(f"method {method}, not {truth['method']}")
    return result


def _parameters_match(wanted: dict[str, Any], got: dict[str, Any]) -> bool:
    return all(_same(value, got.get(name)) for name, value in wanted.items())


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return abs(float(a) - float(b)) < 1e-9
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return a == b


TARGETS = {"recall": 0.95, "precision": 0.97, "relation": 0.95, "method": 0.95, "parameters": 0.95}


@dataclass
class CorpusFigures:
    """The corpus-wide figures ``benchmarks/real_cards.py`` prints and the tests check."""

    scores: list[Score]
    figures: dict[str, float]
    silent: list[str]  # read wrongly with no warning at all
    warnings: dict[str, list[str]]

    @property
    def met(self) -> bool:
        return not self.silent and all(self.figures[k] >= v for k, v in TARGETS.items())


def evaluate() -> CorpusFigures:
    truths = expected()
    scores: list[Score] = []
    silent: list[str] = []
    warnings: dict[str, list[str]] = {}
    for folder in folders():
        truth = truths.get(folder)
        if truth is None:
            continue
        snapshot = local_snapshot(folder, truth)
        result = score(folder, snapshot, truth)
        scores.append(result)
        warnings[folder] = list(snapshot.warnings)
        if not result.perfect and not snapshot.warnings:
            silent.append(folder)
    figures = {
        "recall": _ratio(sum(s.found for s in scores), sum(s.truth_parents for s in scores)),
        "precision": _ratio(sum(s.correct for s in scores), sum(s.predicted for s in scores)),
        "relation": _share([s.relation_ok for s in scores]),
        "method": _share([s.method_ok for s in scores]),
        "parameters": _ratio(
            sum(s.parameters_ok for s in scores), sum(s.parameters_checked for s in scores)
        ),
        "candidates": _ratio(
            sum(s.candidates_ok for s in scores), sum(s.candidates_checked for s in scores)
        ),
    }
    return CorpusFigures(scores, figures, silent, warnings)


def _ratio(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator else 1.0


def _share(flags: list[bool | None]) -> float:
    judged = [flag for flag in flags if flag is not None]
    return _ratio(sum(judged), len(judged))
