"""``lineage demo``: the whole job, offline, on a CPU, in a few minutes.

1. Builds two local model families (``lineage.example``: every lineage relation;
   ``audit.demo_family``: an aligned chat model, a fine-tune whose refusals erode, and
   merges of the two at λ = 0.2, 0.4, 0.6, 0.8, trained here in seconds).
2. Crawls both into a registry inside the output folder, with weight fingerprints, and
   verifies the safety subject's declared merge recipe from its weights.
3. Audits the aligned model and every descendant on the built-in suites (harmful, benign,
   capability) with the refusal judge, and writes ``audit.json``, per-sample logs, the
   lineage exports and the compliance brief of the subject merge (HTML, and PDF with the
   ``pdf`` extra).
4. Remediates the fine-tune (``lineage.remediate``): merges chat-aligned back into
   chat-helpful over an automatic sweep of λ, measures ASR, over-refusal and the task the
   fine-tune was made for (``demo-task.jsonl``, written here) at each, and writes the
   recommended model to ``chat-helpful-remediated``.
``run_demo`` returns what it did (a ``DemoOutcome``); ``lineage demo`` prints it. The audit
itself is the main job, ``lineage.pipeline.run_audit_job``, as ``lineage audit`` runs it.
The safety family reproduces the shape of Farn et al. 2024: the fine-tune regresses against
its aligned parent, ASR rises with λ, and merging back lowers ASR below the fine-tune's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from lineage.crawler import CrawlOptions
from lineage.documents.remediation import RemediationDocument
from lineage.errors import EXIT_OK, EXIT_PROBLEMS
from lineage.example import build_example
from lineage.exporters import EXPORTERS, export_graph
from lineage.graph import attach_audit, lineage_graph
from lineage.pipeline import AuditJob, AuditOutcome, Progress, run_audit_job
from lineage.sources.local import LocalSource
from lineage.vocabulary import SuiteKind
from registry.database import Registry

if TYPE_CHECKING:
    from audit.demo_family import DemoFamily
    from audit.records import Suite

DEMO_MAX_NEW_TOKENS = 24  # the demo models answer in one short sentence
DEMO_SUITES = tuple(SuiteKind)  # the built-in suite of each kind
TASK_FILE = "demo-task.jsonl"  # the fine-tune's task, in the capability format
REMEDIATED_FOLDER = "chat-helpful-remediated"


@dataclass
class DemoOutcome:
    """Where the demo wrote everything, and the main job's outcome."""

    out: Path
    registry: Path
    subject: str  # the merge whose brief is written
    job: AuditOutcome
    exports: list[Path] = field(default_factory=list)
    ladder: list[tuple[float, str]] = field(default_factory=list)  # (λ, repo), aligned first
    remediation: RemediationDocument | None = None
    task_file: Path | None = None

    @property
    def html_brief_written(self) -> bool:
        return any(path.suffix == ".html" for path in self.job.briefs)

    @property
    def exit_code(self) -> int:
        """The job's, except that a PDF brief may be missing (WeasyPrint is the pdf extra)."""
        job = self.job
        crawled_ok = job.crawl is None or job.crawl.ok
        done = crawled_ok and not job.audit.incomplete and self.html_brief_written
        return EXIT_OK if done else EXIT_PROBLEMS


def run_demo(out: Path, *, progress: Progress, detail: Progress | None = None) -> DemoOutcome:
    """Build, crawl, verify, audit, export and write the brief; say each stage through
    ``progress`` (and the audit's finer steps through ``detail``)."""
    from audit.auditor import AuditOptions
    from audit.demo_family import build_demo_family
    from audit.generation import GenerationSettings
    from audit.judges import get_judge
    from audit.suites import load_suite

    out = out.expanduser().resolve()
    models = out / "models"
    suites = [load_suite(name) for name in DEMO_SUITES]
    harmful, benign, capability = (list(suite.prompts) for suite in suites)
    out.mkdir(parents=True, exist_ok=True)
    task_file = _write_task_file(out / TASK_FILE)
    task = load_suite(f"capability:{task_file}")
    example = build_example(models)
    progress("built the lineage example family and trained the safety family ...")
    family = build_demo_family(
        models, harmful=harmful, benign=benign, capability=capability, task=list(task.prompts)
    )

    registry_path = out / "registry.db"
    registry = Registry.open(f"sqlite:///{registry_path}")
    job = AuditJob(
        repo_id=family.aligned,
        source=LocalSource(models),
        suites=suites,
        judge=get_judge("refusal"),
        settings=GenerationSettings(max_new_tokens=DEMO_MAX_NEW_TOKENS, device="cpu"),
        options=AuditOptions(descendants=True),
        crawl_roots=[example.repo_ids[0], family.base],
        crawl_options=CrawlOptions(descendants=True),
        recrawl=True,  # the models were just rebuilt
        verify_repos=[family.subject],
        out=out,
        briefs=[out / "brief.html", out / "brief.pdf"],
        brief_subject=family.subject,
    )
    outcome = DemoOutcome(
        out=out,
        registry=registry_path,
        subject=family.subject,
        job=run_audit_job(registry, job, progress=progress, detail=detail or _quiet),
        ladder=[(0.0, family.aligned), *sorted(family.merges.items()), (1.0, family.finetune)],
    )
    outcome.exports = _write_exports(registry, out, family.subject, family.aligned)
    outcome.task_file = task_file
    outcome.remediation = _remediate(registry, job, family, task, out, progress, detail)
    return outcome


def _write_task_file(path: Path) -> Path:
    """The fine-tune's task as a suite file a user can pass to ``--task-suite``."""
    import json

    from audit.demo_family import demo_task_prompts

    lines = [
        json.dumps({"id": p.id, "category": p.category, "prompt": p.prompt, "answer": p.answer})
        for p in demo_task_prompts()
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _remediate(
    registry: Registry,
    job: AuditJob,
    family: DemoFamily,
    task: Suite,
    out: Path,
    progress: Progress,
    detail: Progress | None,
) -> RemediationDocument:
    """chat-aligned merged back into chat-helpful over the automatic λ sweep, on the
    audit's own harmful and benign suites (their runs of the two models are cached) and
    the fine-tune's task; the recommended model goes to ``REMEDIATED_FOLDER``."""
    import shutil

    from lineage.remediate.run import RemediationJob, run_remediation

    by_kind = {suite.kind: suite for suite in job.suites}
    model_out = out / REMEDIATED_FOLDER
    shutil.rmtree(model_out, ignore_errors=True)  # the demo rebuilds everything each run
    progress(f"remediating {family.finetune}: merging {family.aligned} back over λ ...")
    return run_remediation(
        registry,
        RemediationJob(
            finetune=family.finetune,
            aligned=family.aligned,
            source=job.source,
            harmful=[by_kind[SuiteKind.HARMFUL]],
            task=[task],
            benign=[by_kind[SuiteKind.BENIGN]],
            judge=job.judge,
            settings=job.settings,
            cache=out / "remediate-cache",
            out=model_out,
        ),
        progress=detail or _quiet,
    )


def _write_exports(registry: Registry, out: Path, subject: str, aligned: str) -> list[Path]:
    """The subject's lineage in every export format, and the whole safety family from its
    aligned root (JSON and Mermaid), for a picture of every λ."""
    with registry.session() as session:
        graph = attach_audit(lineage_graph(session, subject), session, subject)
        family_graph = lineage_graph(session, aligned, ancestors=True)
    written = []
    for name, exporter in EXPORTERS.items():
        path = out / f"lineage{exporter.suffix}"
        path.write_text(export_graph(graph, name, subject=subject), encoding="utf-8")
        written.append(path)
    for name in ("json", "mermaid"):
        path = out / f"family{EXPORTERS[name].suffix}"
        path.write_text(export_graph(family_graph, name, subject=aligned), encoding="utf-8")
        written.append(path)
    return written


def _quiet(message: str) -> None:
    """The audit's finer steps, unsaid."""
