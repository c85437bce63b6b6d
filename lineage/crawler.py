"""Breadth-first lineage crawl: ancestors to the roots, descendants on request.

Worker threads only fetch (network, parsing); the calling thread alone writes to the
registry, committing each batch of finished nodes, so an interrupted crawl keeps every node
it recorded and the next run skips them: a node whose sha is already recorded is not read
again.

    >>> report = crawl(Registry.open(), HubSource(), ["org/model"])  # doctest: +SKIP
    >>> report.ok, report.problems  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field

import networkx as nx

from lineage.errors import (
    GatedRepoError,
    HubUnavailableError,
    LineageError,
    PrivateRepoError,
    RepoNotFoundError,
)
from lineage.fingerprint import (
    METHOD_VERSION,
    Fingerprint,
    FingerprintUnavailableError,
    fingerprint_checkpoint,
)
from lineage.records import ModelSnapshot
from lineage.sources.base import KnownRevisions, Source
from registry import crawls, queries, snapshots, store
from registry.database import Registry
from registry.weights import has_fingerprint, save_fingerprint

ProgressCallback = Callable[[int, int, str], None]  # (finished, queued so far, repo id)


@dataclass(frozen=True)
class CrawlOptions:
    depth: int | None = None  # how far up (and down) from the roots; None: to the end
    descendants: bool = False
    max_nodes: int = 500
    revision: str | None = None  # for the roots only; parents are followed at their pins
    workers: int = 8
    fingerprint: bool = True  # read a weight fingerprint of every node (a few range reads)


@dataclass(frozen=True)
class CrawlProblem:
    repo_id: str
    status: str  # missing | gated | private | error | limit
    message: str  # one line, names the repo and says why

    def __str__(self) -> str:
        return self.message


@dataclass
class CrawlReport:
    crawl_id: int
    roots: list[str]
    nodes: dict[str, str] = field(default_factory=dict)  # repo id -> status
    fetched: int = 0
    unchanged: int = 0
    problems: list[CrawlProblem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    limit_reached: bool = False
    not_crawled: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True only when every requested node was fully processed."""
        return not self.problems

    def to_dict(self) -> dict:
        data = asdict(self)
        data["ok"] = self.ok
        data["problems"] = [asdict(problem) for problem in self.problems]
        return data


@dataclass(frozen=True)
class _Visit:
    repo_id: str
    revision: str | None
    up: int | None  # remaining ancestor steps (None: unbounded)
    down: int | None  # remaining descendant steps; 0: do not list children
    list_children: bool
    descendant: bool = False  # reached by going down from a root


def _status_for(error: LineageError) -> str:
    if isinstance(error, GatedRepoError):
        return "gated"
    if isinstance(error, PrivateRepoError):
        return "private"
    if isinstance(error, RepoNotFoundError):
        return "missing"
    return "error"


def _step(remaining: int | None) -> int | None:
    return None if remaining is None else remaining - 1


def _continues(remaining: int | None) -> bool:
    return remaining is None or remaining > 0


@dataclass
class _FetchResult:
    visit: _Visit
    snapshot: ModelSnapshot | None = None
    error: LineageError | None = None
    children: list[str] = field(default_factory=list)
    children_error: LineageError | None = None
    fingerprint: Fingerprint | None = None
    fingerprint_note: str | None = None  # why there is none (no float safetensors weights)
    fingerprint_error: LineageError | None = None  # the weights are broken


def _fingerprint(source: Source, snapshot: ModelSnapshot, result: _FetchResult) -> None:
    """Fingerprint the snapshot's safetensors weights into ``result`` (never raises)."""
    if snapshot.safetensors is None or snapshot.revision is None:
        result.fingerprint_note = "no safetensors weights"
        return
    repo_id, sha = snapshot.repo_id, snapshot.revision
    try:
        result.fingerprint = fingerprint_checkpoint(
            lambda name: source.range_reader(repo_id, name, sha),
            snapshot.safetensors.files,
            repo_id=repo_id,
        )
    except FingerprintUnavailableError as error:
        result.fingerprint_note = error.reason
    except LineageError as error:
        result.fingerprint_error = error


def _fetch(
    source: Source, visit: _Visit, known: KnownRevisions, fingerprint: bool = False
) -> _FetchResult:
    result = _FetchResult(visit)
    try:
        result.snapshot = source.fetch(visit.repo_id, visit.revision, known=known)
    except LineageError as error:
        result.error = error
        return result
    except Exception as error:  # a bug must not lose the rest of the crawl
        if os.environ.get("LINEAGE_DEBUG"):
            raise
        result.error = LineageError(
            f"unexpected {type(error).__name__} while reading: {error}", repo_id=visit.repo_id
        )
        return result
    snapshot = result.snapshot
    if fingerprint and not snapshot.unchanged and snapshot.status == "ok":
        _fingerprint(source, snapshot, result)
    if visit.list_children and result.snapshot.children_count != 0:
        try:
            result.children = source.children(visit.repo_id)
        except LineageError as error:
            # A local tree whose sibling folders could not all be read still names the
            # children it could read: they are crawled, and the failure is reported.
            result.children = list(getattr(error, "children", None) or [])
            result.children_error = error
    return result


class _Crawl:
    """The state of one crawl; `run` drives it."""

    def __init__(
        self,
        registry: Registry,
        source: Source,
        roots: list[str],
        options: CrawlOptions,
        progress: ProgressCallback | None,
    ):
        self.registry = registry
        self.source = source
        self.options = options
        self.progress = progress
        self.queue: deque[_Visit] = deque()
        self.seen: set[str] = set()
        self.edges: list[tuple[str, str]] = []
        with registry.session() as session:
            self.known: KnownRevisions = queries.known_revisions(session)
            crawl_id = crawls.start_crawl(
                session, roots, asdict(options) | {"source": source.describe()}
            )
        self.report = CrawlReport(crawl_id=crawl_id, roots=list(roots))
        for root in roots:
            self._enqueue(
                _Visit(
                    root,
                    options.revision,
                    up=options.depth,
                    down=options.depth if options.descendants else 0,
                    list_children=options.descendants,
                )
            )

    def _enqueue(self, visit: _Visit) -> None:
        if visit.repo_id in self.seen:
            return
        self.seen.add(visit.repo_id)
        if len(self.seen) > self.options.max_nodes:
            self.report.limit_reached = True
            self.report.not_crawled.append(visit.repo_id)
            return
        self.queue.append(visit)

    def run(self) -> CrawlReport:
        status = "interrupted"
        try:
            with ThreadPoolExecutor(
                max_workers=max(1, self.options.workers), thread_name_prefix="lineage-crawl"
            ) as pool:
                self._drive(pool)
            self._finish_report()
            status = "ok" if self.report.ok else "failed"
        finally:
            with self.registry.session() as session:
                crawls.finish_crawl(
                    session,
                    self.report.crawl_id,
                    status,
                    nodes_ok=sum(s == "ok" for s in self.report.nodes.values()),
                    problems=len(self.report.problems),
                )
        return self.report

    def _drive(self, pool: ThreadPoolExecutor) -> None:
        in_flight: dict[Future[_FetchResult], _Visit] = {}
        try:
            while self.queue or in_flight:
                while self.queue and len(in_flight) < self.options.workers * 2:
                    visit = self.queue.popleft()
                    in_flight[
                        pool.submit(
                            _fetch, self.source, visit, self.known, self.options.fingerprint
                        )
                    ] = visit
                done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                for future in done:
                    del in_flight[future]
                self._record_batch([future.result() for future in done])
        except BaseException:
            for future in in_flight:
                future.cancel()
            raise

    def _record_batch(self, results: list[_FetchResult]) -> None:
        """Record the nodes that finished together in one transaction.

        One commit per batch instead of per node keeps the single writing thread from
        becoming the bottleneck. A write that fails rolls its batch back and ends the crawl;
        the batches committed before stay, so the next run resumes after them. (No savepoint
        per node: nothing would keep one node's failure apart from the crawl's, and SQLite's
        savepoint journal was a third of the remaining write time.)
        """
        with self.registry.session() as session:
            for result in results:
                self._record(session, result)
        if self.progress:
            for result in results:
                self.progress(len(self.report.nodes), len(self.seen), result.visit.repo_id)

    def _record(self, session, result: _FetchResult) -> None:
        visit = result.visit
        if result.error is not None:
            self._record_failure(session, visit, result.error)
            return
        snapshot = result.snapshot
        assert snapshot is not None
        if snapshot.unchanged:
            self.report.unchanged += 1
            revision = snapshots.recorded_revision(session, visit.repo_id, snapshot.revision)
            snapshot = snapshots.snapshot_from_revision(session, revision)
            snapshot.requested_revision = visit.revision
        else:
            self.report.fetched += 1
        for stage in snapshot.stages:
            # A multi-stage recipe's intermediate models go first: the model's edges point
            # at them, and theirs at the stage's own inputs.
            store.record_snapshot_id(session, stage, crawl_id=self.report.crawl_id)
        revision_id = store.record_snapshot_id(session, snapshot, crawl_id=self.report.crawl_id)
        self._log_snapshot(session, snapshot, unchanged=result.snapshot.unchanged)
        if revision_id is not None and self.options.fingerprint and snapshot.status == "ok":
            self._record_fingerprint(session, revision_id, snapshot, result)
        self._follow(visit, snapshot, result)

    def _record_fingerprint(
        self, session, revision_id: int, snapshot: ModelSnapshot, result: _FetchResult
    ) -> None:
        if result.snapshot.unchanged:
            if has_fingerprint(session, revision_id, METHOD_VERSION):
                return
            # Recorded by a crawl run with --no-fingerprint: read it now, on this thread.
            _fingerprint(self.source, snapshot, result)
        crawl_id, repo_id = self.report.crawl_id, snapshot.repo_id
        if result.fingerprint is not None:
            save_fingerprint(session, revision_id, result.fingerprint)
            fingerprint = result.fingerprint
            crawls.log_event(
                session,
                crawl_id,
                repo_id=repo_id,
                revision=snapshot.revision,
                level="info",
                event="fingerprinted",
                message=f"{repo_id}: fingerprint {fingerprint.method}, "
                f"{len(fingerprint.tensors)} tensors, {fingerprint.bytes_read} bytes read of "
                f"{fingerprint.weight_bytes} in {fingerprint.requests} requests",
            )
        elif result.fingerprint_error is not None:
            message = str(result.fingerprint_error)
            crawls.log_event(
                session,
                crawl_id,
                repo_id=repo_id,
                level="error",
                event="fingerprint",
                message=message,
            )
            self.report.problems.append(CrawlProblem(repo_id, "error", message))
        elif result.fingerprint_note:
            crawls.log_event(
                session,
                crawl_id,
                repo_id=repo_id,
                level="info",
                event="no_fingerprint",
                message=f"{repo_id}: no fingerprint: {result.fingerprint_note}",
            )

    def _record_failure(self, session, visit: _Visit, error: LineageError) -> None:
        status = _status_for(error)
        store.record_failure(
            session,
            visit.repo_id,
            source=self.source.name,
            status=status,
            reason=error.reason,
            crawl_id=self.report.crawl_id,
            transient=isinstance(error, HubUnavailableError),
        )
        crawls.log_event(
            session,
            self.report.crawl_id,
            repo_id=visit.repo_id,
            level="error",
            event=status,
            message=str(error),
        )
        self.report.nodes[visit.repo_id] = status
        message = (
            str(error) if str(error).startswith(visit.repo_id) else f"{visit.repo_id}: {error}"
        )
        self.report.problems.append(CrawlProblem(visit.repo_id, status, message))

    def _log_snapshot(self, session, snapshot: ModelSnapshot, *, unchanged: bool) -> None:
        crawl_id = self.report.crawl_id
        self.report.nodes[snapshot.repo_id] = snapshot.status
        event = "unchanged" if unchanged else "fetched"
        crawls.log_event(
            session,
            crawl_id,
            repo_id=snapshot.repo_id,
            revision=snapshot.revision,
            level="info",
            event=event,
            message=f"{snapshot.repo_id}@{(snapshot.revision or '')[:12]}: {event}, "
            f"{len(snapshot.parents)} declared parent(s)",
        )
        for warning in snapshot.warnings:
            crawls.log_event(
                session,
                crawl_id,
                repo_id=snapshot.repo_id,
                level="warning",
                event="warning",
                message=warning,
            )
            self.report.warnings.append(warning)
        if snapshot.status != "ok":
            message = f"{snapshot.repo_id}: {snapshot.status_reason or snapshot.status}"
            crawls.log_event(
                session,
                crawl_id,
                repo_id=snapshot.repo_id,
                level="error",
                event=snapshot.status,
                message=message,
            )
            self.report.problems.append(CrawlProblem(snapshot.repo_id, snapshot.status, message))

    def _follow(self, visit: _Visit, snapshot: ModelSnapshot, result: _FetchResult) -> None:
        stage_parents = [
            (link, stage.repo_id) for stage in snapshot.stages for link in stage.parents
        ]
        own_parents = [(link, snapshot.repo_id) for link in snapshot.parents]
        for parent, child in [*own_parents, *stage_parents]:
            self.edges.append((parent.parent, child))
            if parent.parent_kind != "repo" or parent.parent == snapshot.repo_id:
                continue
            if _continues(visit.up):
                self._enqueue(
                    _Visit(
                        parent.parent,
                        parent.revision,
                        up=_step(visit.up),
                        down=0,
                        list_children=False,
                    )
                )
            elif visit.descendant:
                # A descendant's other parents (a merge's co-parents): read them, go no higher.
                self._enqueue(
                    _Visit(parent.parent, parent.revision, up=0, down=0, list_children=False)
                )
        if result.children_error is not None:
            # Descendants that could not be listed are a node not fully processed: never a
            # clean crawl that silently found no descendants.
            error = result.children_error
            self.report.problems.append(
                CrawlProblem(snapshot.repo_id, "error", f"descendants not listed: {error}")
            )
        for child in result.children:
            self.edges.append((snapshot.repo_id, child))
            next_down = _step(visit.down)
            self._enqueue(
                _Visit(
                    child,
                    None,
                    up=0,
                    down=next_down,
                    list_children=_continues(next_down),
                    descendant=True,
                )
            )

    def _finish_report(self) -> None:
        if self.report.limit_reached:
            count = len(self.report.not_crawled)
            self.report.problems.append(
                CrawlProblem(
                    self.report.roots[0],
                    "limit",
                    f"stopped at --max-nodes {self.options.max_nodes}: {count} more repo(s) not "
                    "crawled; raise --max-nodes or bound the crawl with --depth",
                )
            )
        graph = nx.DiGraph(self.edges)
        for cycle in sorted(nx.simple_cycles(graph), key=lambda c: sorted(c)):
            if len(cycle) == 1:
                continue  # a model naming itself is already a warning of its own
            path = " -> ".join([*cycle, cycle[0]])
            self.report.warnings.append(
                f"{cycle[0]}: lineage cycle {path}; each edge kept as declared"
            )


def crawl(
    registry: Registry,
    source: Source,
    roots: list[str],
    options: CrawlOptions | None = None,
    *,
    progress: ProgressCallback | None = None,
) -> CrawlReport:
    """Crawl ``roots`` and record every node reached; see ``CrawlOptions``."""
    return _Crawl(registry, source, list(roots), options or CrawlOptions(), progress).run()


__all__ = ["CrawlOptions", "CrawlProblem", "CrawlReport", "crawl"]
