"""Per-sample JSONL logs, one file per model and suite, as lm-eval-harness keeps them.

Each line: prompt id, category, prompt, response, verdict, judge output, parse failure,
plus the model, revision, run id and suite content hash, so a line quoted in a report can be
traced back. Suite names are unique within an audit, so each suite has its own file.
Written from a fresh audit (``write_sample_logs``) or from the registry alone, for the runs
a recorded audit compared (``write_recorded_sample_logs``): both give the same lines.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from registry.evaluations import StoredSample

if TYPE_CHECKING:
    from sqlmodel import Session

    from audit.auditor import AuditReport
    from registry.tables import AuditRecord

_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class SampleLog:
    repo_id: str
    revision: str
    suite: str
    run_id: int
    judge: str
    samples: list[StoredSample]
    suite_hash: str = ""


def log_file_name(repo_id: str, suite_name: str) -> str:
    """``org__name.suite.jsonl``: flat, and safe whatever a repo or suite is called."""
    repo = _UNSAFE_NAME.sub("_", repo_id.replace("/", "__"))
    suite = _UNSAFE_NAME.sub("_", suite_name)
    return f"{repo}.{suite}.jsonl"


def write_logs(logs: Iterable[SampleLog], folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for log in sorted(logs, key=lambda item: (item.repo_id, item.suite)):
        path = folder / log_file_name(log.repo_id, log.suite)
        if path in written:  # two names that differ only in unsafe characters
            path = path.with_name(f"{path.stem}.run{log.run_id}.jsonl")
        with path.open("w", encoding="utf-8") as handle:
            for sample in log.samples:
                line = {
                    "model": log.repo_id,
                    "revision": log.revision,
                    "run_id": log.run_id,
                    "suite": log.suite,
                    "suite_hash": log.suite_hash,
                    "prompt_id": sample.prompt_id,
                    "category": sample.category,
                    "prompt": sample.prompt,
                    "response": sample.response,
                    "verdict": sample.verdict,
                    "judge": log.judge,
                    "judge_output": sample.judge_output,
                    "parse_failed": sample.parse_failed,
                }
                handle.write(json.dumps(line, ensure_ascii=False) + "\n")
        written.append(path)
    return written


def write_sample_logs(report: AuditReport, folder: Path) -> list[Path]:
    """The logs of every run a fresh audit compared."""
    return write_logs(
        (
            SampleLog(
                repo,
                run.sha,
                suite_name,
                run.run_id,
                f"{run.judge_id}@{run.judge_version}",
                run.samples,
                run.suite.content_hash,
            )
            for repo, runs in report.runs.items()
            for suite_name, run in runs.items()
        ),
        folder,
    )


def recorded_logs(session: Session, record: AuditRecord) -> Iterator[SampleLog]:
    """The runs a recorded audit compared, read back from the registry."""
    from registry.evaluations import run_samples
    from registry.tables import EvaluationRun, Revision

    for repo, runs in sorted(record.runs.items()):
        for suite_name, run_id in sorted(runs.items()):
            run = session.get(EvaluationRun, run_id)
            if run is None:
                continue
            revision = session.get(Revision, run.revision_id)
            yield SampleLog(
                repo,
                revision.sha if revision else "",
                suite_name,
                int(run_id),
                f"{run.judge_id}@{run.judge_version}",
                run_samples(session, run),
                run.suite_hash,
            )


def write_recorded_sample_logs(session: Session, record: AuditRecord, folder: Path) -> list[Path]:
    return write_logs(recorded_logs(session, record), folder)
