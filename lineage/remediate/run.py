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

import contextlib
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from audit.backends import choose_backend
from audit.executors import EvaluationContext, EvaluationTask, Executor
from audit.generation import GenerationSettings
from audit.judges.base import Judge
from audit.plan import AuditNode, build_plan
from audit.records import Suite
from audit.runner import ADAPTER_FILE_PATTERNS, EvaluatedRun, NodeEvaluator
from lineage.crawler import CrawlOptions, crawl
from lineage.documents.remediation import BudgetDoc, RemediationDocument
from lineage.remediate.adapter import adapter_note, fold_adapter
from lineage.remediate.errors import RemediationError
from lineage.remediate.model_folder import (
    MODEL_PATTERNS,
    MergedModel,
    check_pair,
    folder_sha256,
    measured_model_index,
    write_merged_model,
)
from lineage.remediate.sweep import PointEvents, run_sweep
from lineage.sources.base import Source
from lineage.sources.local import LocalSource
from registry.database import Registry
from registry.remediations import (
    fail_remediation,
    finish_remediation,
    start_remediation,
    unfinished_remediations,
)
from registry.tables import Revision

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
    out: Path | None = None  # the recommended model goes here, ready to publish


def run_remediation(
    registry: Registry,
    job: RemediationJob,
    *,
    progress: Callable[[str], None] = lambda m: None,
    executor: Executor | None = None,
) -> RemediationDocument:
    """Sweep λ for ``job``; the sweep's document. With ``job.out``, the recommended model is
    written there (nothing is written when nothing is recommended) and named in the
    document's ``model_dir``. The run is on record (``registry.remediations``): running,
    then done with the document and the output's sha256, or failed with the reason.

    With an ``executor``, each round of λ (the list given, the coarse grid, then each
    bisection step) is planned first: its candidates are merged into the cache, and the
    (model, suites) runs missing from the registry are run there together. The sweep then
    reads every run from the registry, as it does when resuming."""
    suites = [*job.harmful, *job.task, *job.benign]
    nodes = {lam: _registered_node(registry, repo) for lam, repo in _ends(job).items()}
    models = _model_folders(job, nodes, progress)
    recipe_names = (_recipe_model(nodes[0.0]), _recipe_model(nodes[1.0]))
    check_pair(models[0.0], models[1.0], aligned=job.aligned, finetune=job.finetune)
    # --backend auto, decided once from the two models (every candidate shares their
    # architecture): every λ, the ends included, runs on one backend.
    backend = choose_backend(job.settings.backend, [models[0.0], models[1.0]])
    if backend != job.settings.backend:
        progress(f"generation backend: {backend} (auto)")
        job = replace(job, settings=replace(job.settings, backend=backend))
    evaluators = _Evaluators(registry, job, progress)
    measured: dict[float, dict[str, EvaluatedRun]] = {}
    prepared: dict[float, _Candidate] = {}  # merged by a round planned ahead, not yet read
    planned: set[float] = set()  # λ whose runs the executor has made sure of

    def candidate(lam: float) -> _Candidate:
        if lam not in prepared:
            prepared[lam] = _write_candidate(registry, job, models, lam, recipe_names, progress)
        return prepared[lam]

    def ahead(lams: Sequence[float]) -> None:
        """Run the round's missing evaluations through the executor, together."""
        assert executor is not None
        tasks = []
        for lam in lams:
            planned.add(lam)
            if lam in nodes:
                node, evaluator, source = nodes[lam], evaluators.original, None
            else:
                node, evaluator = candidate(lam).node, evaluators.candidates
                source = evaluators.source
            missing = evaluator.missing(node, suites)
            if missing:
                tasks.append(EvaluationTask(node, missing, source=source))
        context = EvaluationContext(
            registry.connection_url(), job.source, job.settings, job.judge.info.id
        )
        failed = executor.run(tasks, context, progress=progress)
        if failed:  # a λ without its runs cannot be judged against the budget
            raise RemediationError(
                "not evaluated: " + "; ".join(f"{repo}: {why}" for repo, why in failed.items())
            )

    def evaluate(lam: float) -> PointEvents:
        if executor is not None and lam not in planned:
            ahead([lam])  # a bisection step: a round of one
        if lam in nodes:
            progress(f"evaluating λ={lam:g} ({nodes[lam].repo_id})")
            runs = evaluators.original.evaluate(nodes[lam], suites)
        else:
            merged = candidate(lam)
            try:
                runs = evaluators.candidates.evaluate(merged.node, suites)
            finally:
                del prepared[lam]
                if not job.keep_all:
                    shutil.rmtree(merged.folder, ignore_errors=True)
        measured[lam] = runs
        return _events(runs, job)

    if executor is not None:  # before Ray joins a cluster that could not write the registry
        executor.check_registry_reachable(registry.connection_url())
    record = _start_record(registry, job, nodes, suites)
    try:
        try:
            with executor.session() if executor is not None else contextlib.nullcontext():
                document = run_sweep(
                    evaluate,
                    finetune=job.finetune,
                    aligned=job.aligned,
                    lambdas=job.lambdas,
                    budget=job.budget,
                    ahead=ahead if executor is not None else None,
                )
        finally:  # merges of a round that stopped early
            for left in prepared.values():
                if not job.keep_all:
                    shutil.rmtree(left.folder, ignore_errors=True)
        document = document.model_copy(update={"adapter_note": _adapter_note(job, nodes)})
        output_sha = None
        if job.out is not None and document.recommended is not None:
            lam = document.recommended.lam
            progress(f"writing the recommended model (λ={lam:g}) to {job.out}")
            publish(job, document, models, measured[lam], job.out, recipe_names=recipe_names)
            document = document.model_copy(update={"model_dir": str(job.out)})
            output_sha = folder_sha256(job.out)
    except BaseException as error:
        with registry.session() as session:
            fail_remediation(session, record, str(error) or type(error).__name__)
        raise
    with registry.session() as session:
        finish_remediation(
            session, record, document, model_dir=document.model_dir, output_sha256=output_sha
        )
    return document


def _start_record(
    registry: Registry, job: RemediationJob, nodes: dict[float, AuditNode], suites: list[Suite]
) -> int:
    """A "running" remediation row; one left running by an interrupted sweep of the same pair
    is closed as interrupted (this sweep resumes from the runs it recorded)."""
    with registry.session() as session:
        for old in unfinished_remediations(session, job.finetune, job.aligned):
            fail_remediation(session, int(old.id or 0), "interrupted; a later sweep resumed it")
        row = start_remediation(
            session,
            session.get(Revision, nodes[1.0].revision_id),
            session.get(Revision, nodes[0.0].revision_id),
            method="linear",
            suites=suites,
            budget=job.budget,
        )
        return int(row.id or 0)


def publish(
    job: RemediationJob,
    document: RemediationDocument,
    models: dict[float, Path],
    runs: dict[str, EvaluatedRun],
    out: Path,
    *,
    recipe_names: tuple[str, str] | None = None,
) -> MergedModel:
    """The recommended θ(λ) in ``out``: weights, tokenizer and template, and a card with
    both parents, the measured results (model-index) and how and why it was made."""
    assert document.recommended is not None
    choice = document.recommended
    ends = {p.lam: p for p in document.sweep if p.lam in (0.0, 1.0)}
    results = {}
    for suite in job.harmful:
        results[suite.name] = (suite.content_hash, "asr", round(runs[suite.name].rate, 6))
    for suite in job.task:
        results[suite.name] = (suite.content_hash, "accuracy", round(1 - runs[suite.name].rate, 6))
    for suite in job.benign:
        results[suite.name] = (suite.content_hash, "over_refusal", round(runs[suite.name].rate, 6))
    name = out.name
    body = (
        f"# {name}\n\n{job.finetune} merged back with its aligned parent {job.aligned} by"
        f" `lineage remediate`: θ(λ) = (1−λ)·θ_aligned + λ·θ_fine-tune at λ = {choice.lam:g}"
        " (Farn et al. 2024, arXiv 2412.19512). The fine-tune's attack success rate was"
        f" {ends[1.0].asr:.1%} against the aligned model's {ends[0.0].asr:.1%}; this merge's is"
        f" {choice.asr:.1%}, and it keeps a task score of {choice.task:.1%} (fine-tune"
        f" {ends[1.0].task:.1%}, aligned {ends[0.0].task:.1%}). Chosen as {choice.reason}."
        " Every λ answered the same prompts with the same greedy decoding and judge; the"
        " results below are this tool's measurements, not the parents' claims."
    )
    if document.adapter_note:
        body += f"\n\n{document.adapter_note[0].upper()}{document.adapter_note[1:]}."
    return write_merged_model(
        models[0.0],
        models[1.0],
        choice.lam,
        out,
        aligned=job.aligned,
        finetune=job.finetune,
        body=body,
        model_index=measured_model_index(name, results),
        recipe_names=recipe_names,
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


def _model_folders(
    job: RemediationJob, nodes: dict[float, AuditNode], progress: Callable[[str], None]
) -> dict[float, Path]:
    """The two models' files, at the revisions the registry recorded; a PEFT adapter is
    folded into its declared base first (``adapter.fold_adapter``)."""
    folders = {}
    for lam, node in nodes.items():
        if node.relation != "adapter":
            folders[lam] = job.source.model_folder(node.repo_id, node.sha, MODEL_PATTERNS)
            continue
        base, base_sha = _adapter_base(node)
        progress(f"folding the adapter {node.repo_id} into its base {base}")
        folders[lam] = fold_adapter(
            job.source.model_folder(base, base_sha, MODEL_PATTERNS),
            job.source.model_folder(node.repo_id, node.sha, ADAPTER_FILE_PATTERNS),
            job.cache / "folded" / f"{node.repo_id.replace('/', '--')}@{node.sha}",
            adapter=node.repo_id,
            base=base,
        )
    return folders


def _adapter_base(node: AuditNode) -> tuple[str, str]:
    """(repo, sha) of an adapter's declared base, as the registry recorded it."""
    shas = dict(node.template_parents)
    if node.adapter_base is None or node.adapter_base not in shas:
        raise RemediationError(
            f"{node.repo_id} is a PEFT adapter whose base model was not crawled;"
            " crawl its base first"
        )
    return node.adapter_base, shas[node.adapter_base]


def _adapter_note(job: RemediationJob, nodes: dict[float, AuditNode]) -> str | None:
    finetune = nodes[1.0]
    if finetune.relation != "adapter":
        return None
    return adapter_note(finetune.repo_id, _adapter_base(finetune)[0], job.aligned)


def _recipe_model(node: AuditNode) -> str:
    """How mergekit names the model: ``base+adapter`` for a PEFT adapter (mergekit folds
    it itself), the repo id otherwise."""
    if node.relation != "adapter":
        return node.repo_id
    return f"{_adapter_base(node)[0]}+{node.repo_id}"


def candidate_id(finetune: str, lam: float) -> str:
    """``remediate/<fine-tune name>-l0550`` for λ = 0.55: one id per (fine-tune, λ)."""
    return f"{CANDIDATE_ORG}/{finetune.split('/')[-1]}-l{round(lam * 1000):04d}"


def _write_candidate(
    registry: Registry,
    job: RemediationJob,
    models: dict[float, Path],
    lam: float,
    recipe_names: tuple[str, str],
    progress: Callable[[str], None],
) -> _Candidate:
    """θ(λ) as a model folder in the cache, with its card, crawled into the registry."""
    repo_id = candidate_id(job.finetune, lam)
    folder = job.cache / repo_id
    progress(f"merging λ={lam:g} into {folder}")
    write_merged_model(
        models[0.0],
        models[1.0],
        lam,
        folder,
        aligned=job.aligned,
        finetune=job.finetune,
        body=f"# {folder.name}\n\nA candidate of `lineage remediate`: θ(λ) = (1−λ)·aligned"
        f" + λ·fine-tune at λ = {lam:g}.",
        overwrite=True,
        recipe_names=recipe_names,
    )
    report = crawl(registry, LocalSource(job.cache), [repo_id], CrawlOptions(depth=0))
    if report.nodes.get(repo_id) != "ok":
        problems = "; ".join(p.message for p in report.problems) or "not recorded"
        raise RemediationError(f"the merge at λ={lam:g} could not be recorded: {problems}")
    return _Candidate(folder, _registered_node(registry, repo_id))


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
