"""A family audit (``descendants=True``) with the local executor vs a local Ray instance.

A family of tiny chat models is built in a temporary folder (or ``--workdir``): a base
(``testkit.chat_models.save_chat_model`` defaults: a random Llama, hidden 32, 2 layers, a
word-level tokenizer with a chat template), k fine-tunes of it (the base's tensors plus
seeded noise of half each matrix's standard deviation; cards declare ``base_model`` and
``base_model_relation: finetune``) and ``--merges`` merges (default 12) of pairs of those
fine-tunes (k is the fewest with k(k-1)/2 >= merges). Each merge's weights are a real linear
merge of its parents' tensors, (1-w)·a + w·b with w between 0.3 and 0.7, loaded and saved
with safetensors; its card declares ``base_model: [a, b]`` and the tags merge and mergekit;
its tokenizer and config are its first parent's.

The root is then audited with descendants, each time into a FRESH SQLite registry
crawled from the same folder (``CrawlOptions(descendants=True, fingerprint=False)``; the
crawl is timed apart and not counted), so that nothing is reused and every model is
generated on every suite:
- local: ``LocalExecutor()``, each evaluation in turn in this process, with torch's
  default threads (one per core), as ``lineage audit --executor local`` runs;
- local, 1 thread: the same with ``torch.set_num_threads(1)`` for the call, a control: Ray's
  tasks run one thread each, and on a small machine shared with other processes a torch pool
  of one thread per core can be many times slower than one thread (a thread of the pool
  that is descheduled holds up every operation), so this row tells parallelism apart from
  the driver's threading (``--no-single-thread`` skips it);
- ray: ``RayExecutor(ExecutorOptions(workers=--workers))``, each evaluation a Ray task on a
  local Ray instance of that many CPUs, started and shut down by the executor inside the
  timed call: the Ray time includes Ray's start-up, its worker processes' imports of torch
  and transformers, and its shutdown. Each task asks for one CPU, so Ray runs ``--workers``
  evaluations at a time, each with one torch thread (Ray sets OMP_NUM_THREADS).
Suites: the built-in ``harmful`` (110 prompts), ``benign`` (52) and ``capability`` (42),
``--suites`` to change; greedy decoding on the CPU, ``--max-new-tokens`` (default 16), the
refusal judge. The local runs come first, so they pay for warming the page cache, the Ray
run for starting Ray. The machine line prints the load average as the benchmark starts.

Printed: the family, the crawl times, each audit's wall-clock time (the whole ``audit``
call) and the part spent in the executor's ``run`` (the evaluations; the rest is planning,
reading the runs back and the decisions, in the driver either way), the ratios local / ray
(the speed-up of Ray) for both local runs, a bare ``ray.init`` + ``ray.shutdown`` timed
afterwards for scale, and whether the findings (kind, model, against, suite, p_value) and
each model's per-suite (n, events) of every run equal the local run's: ``findings equal:
yes/no``, exit status 1 if not.

    python benchmarks/family.py [--merges 12] [--workers 2] [--max-new-tokens 16]
        [--suites harmful,benign,capability] [--no-single-thread] [--workdir DIR] [--keep]
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from audit.auditor import AuditOptions, AuditReport, audit
from audit.executors import ExecutorOptions, LocalExecutor, RayExecutor
from audit.generation import GenerationSettings
from audit.judges import get_judge
from audit.records import Suite
from audit.suites import load_suite
from lineage.crawler import CrawlOptions, crawl
from lineage.example import write_card
from lineage.sources.local import LocalSource
from registry.database import Registry
from testkit.chat_models import save_chat_model

ORG = "bench"
ROOT = f"{ORG}/base"
WEIGHTS = "model.safetensors"
NOISE = 0.5  # a fine-tune's noise, in standard deviations of each matrix


# ----------------------------------------------------------------------------- the family


@dataclass(frozen=True)
class FamilyLayout:
    finetunes: list[str]
    merges: list[tuple[str, str, str, float]]  # name, parent a, parent b, w (b's share)

    @property
    def size(self) -> int:
        return 1 + len(self.finetunes) + len(self.merges)


def layout_for(merges: int) -> FamilyLayout:
    """The fewest fine-tunes (at least 3) whose pairs give ``merges`` merges."""
    count = 3
    while math.comb(count, 2) < merges:
        count += 1
    finetunes = [f"ft-{i}" for i in range(count)]
    pairs = list(itertools.combinations(finetunes, 2))[:merges]
    return FamilyLayout(
        finetunes,
        [
            (f"merge-{n:02d}", a, b, round(0.3 + 0.4 * (n % 5) / 4, 2))
            for n, (a, b) in enumerate(pairs)
        ],
    )


def copy_model_files(parent: Path, child: Path) -> None:
    """Everything but the weights and the card: config, generation config, tokenizer."""
    child.mkdir(parents=True)
    for path in parent.iterdir():
        if path.is_file() and path.name not in (WEIGHTS, "README.md"):
            shutil.copy2(path, child / path.name)


def write_finetune(base: Path, folder: Path, seed: int) -> None:
    copy_model_files(base, folder)
    generator = torch.Generator().manual_seed(seed)
    tensors = {}
    for name, tensor in load_file(str(base / WEIGHTS)).items():
        if tensor.ndim >= 2:  # matrices move; norm weights (ones) stay
            noise = torch.randn(tensor.shape, generator=generator, dtype=tensor.dtype)
            tensor = tensor + NOISE * tensor.std() * noise
        tensors[name] = tensor.contiguous()
    save_file(tensors, str(folder / WEIGHTS), metadata={"format": "pt"})
    write_card(
        folder,
        {"license": "apache-2.0", "base_model": ROOT, "base_model_relation": "finetune"},
        f"# {folder.name}\n\nA fine-tune of {ROOT} (benchmark: seeded noise).\n",
    )


def write_merge(a: Path, b: Path, folder: Path, w: float) -> None:
    copy_model_files(a, folder)
    left, right = load_file(str(a / WEIGHTS)), load_file(str(b / WEIGHTS))
    if left.keys() != right.keys():
        raise SystemExit(f"{a.name} and {b.name} hold different tensors")
    merged = {name: ((1 - w) * left[name] + w * right[name]).contiguous() for name in left}
    save_file(merged, str(folder / WEIGHTS), metadata={"format": "pt"})
    write_card(
        folder,
        {
            "license": "apache-2.0",
            "base_model": [f"{ORG}/{a.name}", f"{ORG}/{b.name}"],
            "tags": ["merge", "mergekit"],
        },
        f"# {folder.name}\n\nA linear merge: {1 - w:.2f} × {a.name} + {w:.2f} × {b.name}.\n",
    )


def build_family(root: Path, layout: FamilyLayout) -> None:
    base = save_chat_model(root / ORG / "base", seed=0)
    write_card(base, {"license": "apache-2.0"}, "# base\n")
    for seed, name in enumerate(layout.finetunes, start=1):
        write_finetune(base, root / ORG / name, seed)
    for name, a, b, w in layout.merges:
        write_merge(root / ORG / a, root / ORG / b, root / ORG / name, w)


def fresh_registry(path: Path, source: LocalSource) -> tuple[Registry, float, int]:
    """A new registry crawled from the family's root: (registry, seconds, nodes)."""
    started = time.perf_counter()
    registry = Registry.open(f"sqlite:///{path}")
    report = crawl(registry, source, [ROOT], CrawlOptions(descendants=True, fingerprint=False))
    if not report.ok:
        raise SystemExit(f"crawl failed: {'; '.join(map(str, report.problems))}")
    return registry, time.perf_counter() - started, len(report.nodes)


# ----------------------------------------------------------------------------- the runs


class TimedExecutor:
    """Delegates to an executor and times its ``run`` (the evaluations alone)."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.name = inner.name
        self.seconds = 0.0
        self.tasks = 0

    def run(self, tasks, context, *, progress=lambda message: None):
        self.tasks += len(tasks)
        started = time.perf_counter()
        try:
            return self.inner.run(tasks, context, progress=progress)
        finally:
            self.seconds += time.perf_counter() - started


@dataclass
class Timing:
    label: str
    crawl_s: float
    audit_s: float
    executor_s: float
    tasks: int
    report: AuditReport


def run_audit(
    label: str,
    executor,
    db: Path,
    source: LocalSource,
    suites: list[Suite],
    settings: GenerationSettings,
) -> Timing:
    registry, crawl_s, nodes = fresh_registry(db, source)
    timed = TimedExecutor(executor)
    try:
        started = time.perf_counter()
        report = audit(
            registry,
            source,
            ROOT,
            suites,
            get_judge("refusal"),
            settings,
            AuditOptions(descendants=True),
            executor=timed,
        )
        audit_s = time.perf_counter() - started
    finally:
        registry.close()
    print(
        f"  {label:<6} crawl {crawl_s:5.2f} s ({nodes} nodes, not counted); audit "
        f"{audit_s:7.2f} s, of which {timed.seconds:7.2f} s in the executor "
        f"({timed.tasks} tasks)"
    )
    return Timing(label, crawl_s, audit_s, timed.seconds, timed.tasks, report)


def bare_ray_start(workers: int) -> float:
    """ray.init + ray.shutdown alone, as the executor calls them (no task run)."""
    import ray

    started = time.perf_counter()
    ray.init(
        num_cpus=workers, include_dashboard=False, log_to_driver=False, configure_logging=False
    )
    ray.shutdown()
    return time.perf_counter() - started


# ----------------------------------------------------------------------------- checking


def findings(report: AuditReport) -> list[tuple]:
    return sorted(
        (f["kind"], f["model"], f.get("against"), f.get("suite"), f.get("p_value"))
        for f in report.to_json()["findings"]
    )


def rates(report: AuditReport) -> dict:
    return {
        repo: {name: (s["n"], s["events"]) for name, s in model["suites"].items()}
        for repo, model in report.to_json()["models"].items()
    }


def reused(report: AuditReport) -> set:
    return {s["reused"] for m in report.to_json()["models"].values() for s in m["suites"].values()}


# ----------------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--merges", type=int, default=12, help="merges of fine-tune pairs")
    parser.add_argument("--workers", type=int, default=2, help="CPUs of the local Ray instance")
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--suites", default="harmful,benign,capability", help="built-in names")
    parser.add_argument(
        "--no-single-thread", action="store_true", help="skip the local run on 1 torch thread"
    )
    parser.add_argument("--workdir", type=Path, help="build here (default: a temp folder)")
    parser.add_argument("--keep", action="store_true", help="keep the models and registries")
    args = parser.parse_args()
    if args.merges < 1 or args.workers < 1:
        parser.error("--merges and --workers must be >= 1")

    suites = [load_suite(name.strip()) for name in args.suites.split(",") if name.strip()]
    settings = GenerationSettings(max_new_tokens=args.max_new_tokens, device="cpu")
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="family-bench-", dir=args.workdir))
    started = time.perf_counter()
    try:
        layout = layout_for(args.merges)
        building = time.perf_counter()
        build_family(work / "models", layout)
        parameters = sum(
            t.numel() for t in load_file(str(work / "models" / ROOT / WEIGHTS)).values()
        )
        print(
            f"family: {layout.size} models = 1 base + {len(layout.finetunes)} fine-tunes + "
            f"{len(layout.merges)} linear merges of fine-tune pairs; each a random tiny Llama "
            f"({parameters / 1e3:.0f}k parameters); built in "
            f"{time.perf_counter() - building:.1f} s in {work}"
        )
        prompts = sum(len(s) for s in suites)
        print(
            f"suites: {', '.join(f'{s.name} ({len(s)})' for s in suites)} = {prompts} prompts "
            f"per model; greedy, {args.max_new_tokens} new tokens, CPU; refusal judge; "
            f"{layout.size * prompts} generations per audit"
        )
        print(
            f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; torch "
            f"threads in the driver {torch.get_num_threads()} (OMP_NUM_THREADS="
            f"{os.environ.get('OMP_NUM_THREADS', 'unset')}); Ray: {args.workers} workers, "
            f"1 CPU (1 thread) per task"
        )

        source = LocalSource(work / "models")
        local = run_audit("local", LocalExecutor(), work / "local.db", source, suites, settings)
        runs = [local]
        if not args.no_single_thread:
            threads = torch.get_num_threads()
            torch.set_num_threads(1)
            try:
                runs.append(
                    run_audit(
                        "local1", LocalExecutor(), work / "local1.db", source, suites, settings
                    )
                )
            finally:
                torch.set_num_threads(threads)
        ray = run_audit(
            "ray",
            RayExecutor(ExecutorOptions(workers=args.workers)),
            work / "ray.db",
            source,
            suites,
            settings,
        )
        runs.append(ray)
        bare = bare_ray_start(args.workers)

        print("\n== results (wall-clock; Ray's includes starting and stopping Ray) ==")
        print(f"{'':<8} {'audit':>9} {'executor':>9}")
        for timing in runs:
            print(f"{timing.label:<8} {timing.audit_s:>7.2f} s {timing.executor_s:>7.2f} s")
        for timing in runs[:-1]:
            print(
                f"speed-up {timing.label}/ray: {timing.audit_s / ray.audit_s:.2f}x (audit), "
                f"{timing.executor_s / ray.executor_s:.2f}x (executor)"
            )
        print(f"a bare ray.init + ray.shutdown, for scale: {bare:.2f} s")

        same_findings = all(findings(t.report) == findings(local.report) for t in runs)
        same_rates = all(rates(t.report) == rates(local.report) for t in runs)
        fresh = all(reused(t.report) == {"run"} for t in runs)
        counts = ", ".join(f"{len(findings(t.report))} {t.label}" for t in runs)
        print(
            f"findings: {counts}; per-model per-suite (n, events) equal: "
            f"{'yes' if same_rates else 'no'}; every run generated afresh in each audit: "
            f"{'yes' if fresh else 'no'}"
        )
        equal = same_findings and same_rates
        print(f"findings equal: {'yes' if equal else 'no'}")
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(f"total benchmark time {time.perf_counter() - started:.0f} s")
    return 0 if equal else 1


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.exit(main())
