"""Where evaluations run: in this process (``local``) or as Ray tasks (``ray``).

An audit plans first, then executes: ``missing_evaluations`` lists the (model, revision,
suites) whose runs the registry does not hold yet under the audit's generation settings and
judge, without loading a model; an executor runs them; then the audit reads every run from
the registry cache and makes its decisions in the driver, as it always has.

    executor = EXECUTORS.get("ray").build(RayOptions(workers=2))
    failed = executor.run(missing, context)   # repo id -> one-line reason, for each failure

Executors are plug-ins keyed by name (``EXECUTORS``). The ``ray`` executor sends each
evaluation as a Ray task that asks for the CPUs or GPUs it needs. Each task opens the
registry itself and writes its runs there, one transaction per suite, so a task killed
mid-run leaves no half-written run and the next invocation redoes only what is missing.
Workers on several nodes share the registry only through a server: with ``--ray-address``
the registry must be a PostgreSQL URL. A local Ray instance may use the driver's SQLite file.
A task that fails is retried once, then reported for its model; the audit goes on.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from audit.errors import ExecutorError, ModelLoadError
from audit.generation import GenerationSettings
from audit.plan import AuditNode
from audit.records import Suite
from lineage.plugins import PluginRegistry
from lineage.sources.base import Source
from registry.database import Registry

Progress = Callable[[str], None]


@dataclass(frozen=True)
class EvaluationTask:
    """One model to evaluate on the suites it has no run of yet."""

    node: AuditNode
    suites: tuple[Suite, ...]
    # Where this model is read from when not the context's source (a remediation sweep's
    # candidate merges live in its cache folder, its two ends where the user named them).
    source: Source | None = None


@dataclass(frozen=True)
class EvaluationContext:
    """Everything a worker needs to evaluate a task exactly as the driver would: the same
    registry, source, generation settings and judge (rebuilt by name in the worker)."""

    registry_url: str
    source: Source  # pickles as its construction arguments (``__reduce__``)
    settings: GenerationSettings
    judge: str


class Executor(Protocol):
    name: str

    def check_registry_reachable(self, registry_url: str) -> None:
        """Refuse, before any work, a registry this executor's workers cannot write."""
        ...

    def session(self) -> contextlib.AbstractContextManager[None]:
        """A block in which several ``run`` calls share one set of workers (a sweep that
        evaluates its λ in rounds starts Ray once)."""
        ...

    def run(
        self,
        tasks: Sequence[EvaluationTask],
        context: EvaluationContext,
        *,
        progress: Progress = ...,
    ) -> dict[str, str]:
        """Run ``tasks``; the repo ids that could not be evaluated, each with its reason."""
        ...


@dataclass(frozen=True)
class ExecutorOptions:
    workers: int | None = None  # ray: CPUs of a local instance (default: all)
    address: str | None = None  # ray: an existing cluster to join
    # ray: GPUs each evaluation asks for; None: one when the cluster has GPUs and the
    # settings allow a GPU (--device auto or cuda), else none.
    gpus_per_task: float | None = None
    retries: int = 1  # ray: a failed task is retried this many times, then reported


@dataclass(frozen=True)
class ExecutorPlugin:
    name: str
    build: Callable[[ExecutorOptions], Executor]
    description: str = ""


EXECUTORS: PluginRegistry[ExecutorPlugin] = PluginRegistry("executor")


def evaluate_task(task: EvaluationTask, context: EvaluationContext) -> dict[str, int]:
    """Evaluate ``task`` in this process and record its runs: suite name -> run id.

    The one body of work of every executor, in the driver (``local``) or a Ray worker."""
    from audit.judge_models import hub_completer_factory
    from audit.judges import get_judge
    from audit.runner import NodeEvaluator

    registry = Registry.open(context.registry_url)
    try:
        judge = get_judge(context.judge, completer_factory=hub_completer_factory(context.settings))
        source = task.source if task.source is not None else context.source
        evaluator = NodeEvaluator(registry, source, context.settings, judge)
        runs = evaluator.evaluate(task.node, task.suites)
        return {name: run.run_id for name, run in runs.items()}
    finally:
        registry.close()


@dataclass
class LocalExecutor:
    """Each task in turn, in this process."""

    name: str = "local"

    def check_registry_reachable(self, registry_url: str) -> None:
        """This process writes any registry it could open."""

    def session(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()

    def run(
        self,
        tasks: Sequence[EvaluationTask],
        context: EvaluationContext,
        *,
        progress: Progress = lambda message: None,
    ) -> dict[str, str]:
        failed: dict[str, str] = {}
        for task in tasks:
            progress(f"evaluating {task.node.repo_id} on {len(task.suites)} suites")
            try:
                evaluate_task(task, context)
            except ModelLoadError as error:
                failed[task.node.repo_id] = error.reason
        return failed


@dataclass
class RayExecutor:
    """Each task as a Ray task, on a local instance or a cluster (``options.address``)."""

    options: ExecutorOptions = field(default_factory=ExecutorOptions)
    name: str = "ray"

    def check_registry_reachable(self, registry_url: str) -> None:
        """Workers on other nodes cannot reach a SQLite file: a cluster needs a server."""
        if self.options.address and registry_url.split(":", 1)[0].startswith("sqlite"):
            raise ExecutorError(
                "--executor ray with --ray-address runs evaluations on other machines, which"
                " cannot write a SQLite registry; pass --db postgresql://... (a local Ray"
                " instance, without --ray-address, may use SQLite)"
            )

    @contextlib.contextmanager
    def session(self) -> Iterator[None]:
        """Ray started (or joined) once for every ``run`` in the block; shut down after it
        when it was started here."""
        ray = _import_ray()
        started_here = not ray.is_initialized()
        if started_here:
            ray.init(
                address=self.options.address,
                num_cpus=None if self.options.address else self.options.workers,
                include_dashboard=False,
                log_to_driver=False,
                configure_logging=False,
            )
        try:
            yield
        finally:
            if started_here:
                ray.shutdown()

    def run(
        self,
        tasks: Sequence[EvaluationTask],
        context: EvaluationContext,
        *,
        progress: Progress = lambda message: None,
    ) -> dict[str, str]:
        if not tasks:
            return {}
        ray = _import_ray()
        self.check_registry_reachable(context.registry_url)
        with self.session():
            return self._run(ray, tasks, context, progress)

    def _run(
        self,
        ray: Any,
        tasks: Sequence[EvaluationTask],
        context: EvaluationContext,
        progress: Progress,
    ) -> dict[str, str]:
        gpus = self.options.gpus_per_task
        if gpus is None:
            has_gpus = ray.cluster_resources().get("GPU", 0) > 0
            gpus = 1.0 if has_gpus and context.settings.device in ("auto", "cuda") else 0.0
        remote = ray.remote(_ray_evaluate).options(
            num_cpus=1,
            num_gpus=gpus,
            max_retries=self.options.retries,
            retry_exceptions=True,
        )
        shared = ray.put(context)
        pending = {remote.remote(task, shared): task for task in tasks}
        failed: dict[str, str] = {}
        with TaskProgress(len(tasks)) as bar:
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                for ref in done:
                    task = pending.pop(ref)
                    try:
                        ray.get(ref)
                        bar.done(task.node.repo_id)
                    except Exception as error:  # a task's own error, after its retry
                        reason = _task_failure(error)
                        failed[task.node.repo_id] = reason
                        bar.failed(task.node.repo_id)
                        progress(f"{task.node.repo_id}: not evaluated: {reason}")
        return failed


def _ray_evaluate(task: EvaluationTask, context: EvaluationContext) -> dict[str, int]:
    """The Ray task: its own torch threads (Ray sets OMP_NUM_THREADS to its CPUs)."""
    return evaluate_task(task, context)


class TaskProgress:
    """A Rich progress bar of tasks done, running and failed (stderr, terminals only)."""

    def __init__(self, total: int):
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self.total = total
        self.finished = 0
        self.failures = 0
        console = Console(stderr=True)
        self._progress = Progress(
            TextColumn("evaluations"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"),
            console=console,
            disable=not console.is_terminal,
        )
        self._task = self._progress.add_task("", total=total, status=self._status())

    def _status(self) -> str:
        running = self.total - self.finished
        return f"running {running}, failed {self.failures}"

    def done(self, repo_id: str) -> None:
        self.finished += 1
        self._progress.update(self._task, advance=1, status=self._status())

    def failed(self, repo_id: str) -> None:
        self.failures += 1
        self.done(repo_id)

    def __enter__(self) -> TaskProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()


def _task_failure(error: BaseException) -> str:
    """The one-line reason of a failed Ray task: the evaluation's own error when there is
    one (``RayTaskError`` wraps it as ``cause``), else Ray's first line."""
    cause = getattr(error, "cause", None) or error
    if isinstance(cause, ModelLoadError):
        return cause.reason
    text = str(cause).strip().splitlines()
    return text[-1] if text else type(cause).__name__


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as error:
        raise ExecutorError("--executor ray needs Ray: pip install 'lineage-audit[ray]'") from error
    return ray


EXECUTORS.add("local", ExecutorPlugin("local", lambda options: LocalExecutor(), "this process"))
EXECUTORS.add(
    "ray",
    ExecutorPlugin("ray", lambda options: RayExecutor(options), "Ray tasks, local or a cluster"),
)
