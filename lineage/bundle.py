"""``lineage export REPO --out DIR``: everything a reviewer receives, from the registry alone.

DIR/brief.html        the compliance brief, self-contained
DIR/brief.pdf         the same brief, PDF/A-3b with the BOM attached (needs the pdf extra)
DIR/graph.json        lineage graph, node-link JSON, with measured results and findings
DIR/graph.graphml     the same graph for graph tools
DIR/bom.cdx.json      CycloneDX 1.6 ML-BOM with the evaluation results and findings
DIR/audit.json        the latest audit's JSON contract (absent: never audited)
DIR/samples/*.jsonl   every response behind that audit, one file per model and suite

It sits beside the pipeline, above the report: it gathers what several stages write (the
brief, the exporters, the audit's sample logs), and verifies, and stores, what the brief
shows of verify before the brief reads it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from lineage.errors import RepoNotFoundError
from lineage.exporters import export_graph
from lineage.graph import attach_audit, lineage_graph
from lineage.pipeline import verify_brief_models
from registry import queries
from registry.database import Registry
from registry.evaluations import latest_audit

GRAPH_FILES = {"graph.json": "json", "graph.graphml": "graphml", "bom.cdx.json": "cyclonedx"}


@dataclass
class ExportResult:
    written: list[Path] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # one line each: what and why


def export_bundle(
    registry: Registry, repo_id: str, out: Path, *, redact: bool = False, pdf: bool = True
) -> ExportResult:
    from audit.sample_logs import write_recorded_sample_logs
    from lineage.report.brief import write_brief

    result = ExportResult()
    out.mkdir(parents=True, exist_ok=True)
    with registry.session(write=False) as session:
        if queries.get_model(session, repo_id) is None:
            raise RepoNotFoundError(
                "is not in the registry; crawl or audit it first", repo_id=repo_id
            )
        graph = attach_audit(lineage_graph(session, repo_id), session, repo_id)
        for name, format_name in GRAPH_FILES.items():
            path = out / name
            path.write_text(export_graph(graph, format_name, subject=repo_id), encoding="utf-8")
            result.written.append(path)
        record = latest_audit(session, repo_id)
        if record is None:
            result.skipped.append("audit.json and samples: the model was never audited")
        else:
            path = out / "audit.json"
            path.write_text(json.dumps(record.report, indent=2) + "\n", encoding="utf-8")
            result.written.append(path)
            if not redact:
                result.written += write_recorded_sample_logs(session, record, out / "samples")
            else:
                result.skipped.append("samples: left out with --redact")
    verify_brief_models(registry, repo_id)  # the brief reads the stored verifications
    result.written.append(write_brief(registry, repo_id, out / "brief.html", redact=redact))
    if pdf:
        result.written.append(write_brief(registry, repo_id, out / "brief.pdf", redact=redact))
    return result
