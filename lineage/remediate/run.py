"""The merge-back sweep, run: write each θ(λ) the sweep asks for, evaluate it, decide.

``run_remediation(registry, job)`` resolves the fine-tune and the aligned model in the
registry (crawl them first), then lets ``sweep.run_sweep`` choose the λ. For each λ:

- 0 and 1 are the aligned model and the fine-tune themselves, evaluated as the audit does
  (their runs are cached in the registry, so an audit already paid for them);
- any other λ is merged (``merge.merge_linear``) into a candidate folder under
  ``job.cache``, with the fine-tune's config, tokenizer and chat template and a card that
  declares both parents, crawled into the registry from there, and evaluated with the same
  settings and judge. The folder is deleted after its evaluation unless ``keep_all``.

Every evaluation goes through ``audit.runner.NodeEvaluator``: runs are keyed by revision,
suite hash, generation settings and judge, so an interrupted sweep resumes from what it
recorded, and every λ answers exactly the same prompts.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from audit.generation import GenerationSettings
from audit.judges.base import Judge
from audit.plan import AuditNode, build_plan
from audit.records import Suite
from audit.runner import NodeEvaluator
from lineage.crawler import CrawlOptions, crawl
from lineage.documents.remediation import BudgetDoc, RemediationDocument
from lineage.example import write_card
from lineage.remediate.errors import RemediationError
from lineage.remediate.sweep import PointEvents, run_sweep
from lineage.sources.base import Source
from lineage.sources.local import LocalSource
from registry.database import Registry

# What a candidate takes from the fine-tune besides its weights (the tokenizer and chat
# template are what make its answers comparable with the fine-tune's).
CARRIED_FILES = (
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "tokenizer.model",
    "special_tokens_map.json",
    "chat_template.jinja",
    "vocab.json",
    "merges.txt",
)
MODEL_PATTERNS = ("*.safetensors", "*.safetensors.index.json", *CARRIED_FILES)
CANDIDATE_ORG = "remediate"  # the candidates' repo ids: remediate/<fine-tune name>-l0550


@dataclass(frozen=True)
class RemediationJob:
    """Which pair, measured how, over which λ, within which budget."""

    finetune: str
    aligned: str
    source: Source  # where both models are read from (the Hub, or a local tree)
    harmful: Sequence[Suite]  # ASR
    task: Sequence[Suite]  # capability suites: exact answers
    benign: Sequence[Suite]  # over-refusal
    judge: Judge
    settings: GenerationSettings
    cache: Path  # candidate merges live here while they are evaluated
    lambdas: str | Sequence[float] = "auto"
    budget: BudgetDoc = field(default_factory=BudgetDoc)
    keep_all: bool = False


def run_remediation(
    registry: Registry, job: RemediationJob, *, progress: Callable[[str], None] = lambda m: None
) -> RemediationDocument:
    """Sweep λ for ``job``; the sweep's document (nothing is written to ``--out`` here)."""
    suites = [*job.harmful, *job.task, *job.benign]
    nodes = {lam: _registered_node(registry, repo) for lam, repo in _ends(job).items()}
    models = _model_folders(job, nodes)
    evaluators = _Evaluators(registry, job, progress)

    def evaluate(lam: float) -> PointEvents:
        if lam in nodes:
            progress(f"evaluating λ={lam:g} ({nodes[lam].repo_id})")
            runs = evaluators.original.evaluate(nodes[lam], suites)
        else:
            candidate = _write_candidate(registry, job, models, lam, progress)
            try:
                runs = evaluators.candidates.evaluate(candidate.node, suites)
            finally:
                if not job.keep_all:
                    shutil.rmtree(candidate.folder, ignore_errors=True)
        return _events(runs, job)

    return run_sweep(
        evaluate,
        finetune=job.finetune,
        aligned=job.aligned,
        lambdas=job.lambdas,
        budget=job.budget,
    )


def _ends(job: RemediationJob) -> dict[float, str]:
    return {0.0: job.aligned, 1.0: job.finetune}


@dataclass
class _Evaluators:
    """One evaluator per source: the pair's own, and the candidates' local cache tree."""

    registry: Registry
    job: RemediationJob
    progress: Callable[[str], None]

    def __post_init__(self) -> None:
        job = self.job
        self.original = NodeEvaluator(
            self.registry, job.source, job.settings, job.judge, progress=self.progress
        )
        job.cache.mkdir(parents=True, exist_ok=True)
        self.source = LocalSource(job.cache)
        self.candidates = NodeEvaluator(
            self.registry, self.source, job.settings, job.judge, progress=self.progress
        )


@dataclass(frozen=True)
class _Candidate:
    folder: Path
    node: AuditNode


def _registered_node(registry: Registry, repo_id: str) -> AuditNode:
    """``repo_id``'s head revision as the audit evaluates it; it must have been crawled."""
    with registry.session(write=False) as session:
        plan = build_plan(session, repo_id)  # NotEvaluableError when it was never crawled
    if repo_id not in plan.nodes:
        raise RemediationError(
            f"{repo_id} cannot be evaluated ({'; '.join(plan.skipped) or 'no readable revision'})"
        )
    return plan.nodes[repo_id]


def _model_folders(job: RemediationJob, nodes: dict[float, AuditNode]) -> dict[float, Path]:
    """The two models' files, at the revisions the registry recorded."""
    return {
        lam: job.source.model_folder(node.repo_id, node.sha, MODEL_PATTERNS)
        for lam, node in nodes.items()
    }


def candidate_id(finetune: str, lam: float) -> str:
    """``remediate/<fine-tune name>-l0550`` for λ = 0.55: one id per (fine-tune, λ)."""
    return f"{CANDIDATE_ORG}/{finetune.split('/')[-1]}-l{round(lam * 1000):04d}"


def _write_candidate(
    registry: Registry,
    job: RemediationJob,
    models: dict[float, Path],
    lam: float,
    progress: Callable[[str], None],
) -> _Candidate:
    """θ(λ) as a model folder in the cache, with its card, crawled into the registry."""
    from lineage.remediate.merge import merge_linear  # loads torch

    repo_id = candidate_id(job.finetune, lam)
    folder = job.cache / repo_id
    progress(f"merging λ={lam:g} into {folder}")
    merge_linear(
        models[0.0],
        models[1.0],
        lam,
        folder,
        overwrite=True,
        aligned_name=job.aligned,
        finetune_name=job.finetune,
    )
    for name in CARRIED_FILES:
        source = models[1.0] / name if (models[1.0] / name).is_file() else models[0.0] / name
        if source.is_file():
            shutil.copyfile(source, folder / name)
    _write_recipe(folder, job, lam)
    report = crawl(registry, LocalSource(job.cache), [repo_id], CrawlOptions(depth=0))
    if report.nodes.get(repo_id) != "ok":
        problems = "; ".join(p.message for p in report.problems) or "not recorded"
        raise RemediationError(f"the merge at λ={lam:g} could not be recorded: {problems}")
    return _Candidate(folder, _registered_node(registry, repo_id))


def _write_recipe(folder: Path, job: RemediationJob, lam: float) -> None:
    """The card and mergekit config that say what this candidate is, as a merge author would."""
    recipe = {
        "models": [
            {"model": job.aligned, "parameters": {"weight": round(1 - lam, 6)}},
            {"model": job.finetune, "parameters": {"weight": round(lam, 6)}},
        ],
        "merge_method": "linear",
    }
    text = yaml.safe_dump(recipe, sort_keys=False)
    (folder / "mergekit_config.yml").write_text(text, encoding="utf-8")
    write_card(
        folder,
        {
            "base_model": [job.aligned, job.finetune],
            "base_model_relation": "merge",
            "tags": ["merge", "lineage-audit"],
        },
        f"# {folder.name}\n\nθ(λ) = (1−λ)·{job.aligned} + λ·{job.finetune}, λ = {lam:g}: a"
        " candidate of `lineage remediate`.\n\n```yaml\n" + text + "```\n",
    )


def _events(runs: dict, job: RemediationJob) -> PointEvents:
    """The item-level events of one λ: unsafe answers, correct task answers, refusals."""

    def joined(suites: Sequence[Suite]) -> list[bool]:
        return [event for suite in suites for event in runs[suite.name].events]

    return PointEvents(
        harmful=joined(job.harmful),
        task=[not wrong for wrong in joined(job.task)],  # a capability event is a wrong answer
        benign=joined(job.benign),
        run_ids={name: run.run_id for name, run in runs.items()},
    )
