"""The crawl log: a record per crawl (who runs it, how it ended) and its lines.

>>> with registry.session() as session:
...     crawl_id = start_crawl(session, ["org/child"], {"depth": 3})
...     log_event(session, crawl_id, repo_id="org/child", level="info", event="ok", message="read")
...     finish_crawl(session, crawl_id, "ok", nodes_ok=1, problems=0)

A crawl killed mid-run never closes its record; ``mark_stale_crawls`` (run by every
``start_crawl``) finds such records and marks them ``interrupted``. Every function takes an
open ``Session`` and leaves committing to the caller.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import Table, insert
from sqlmodel import Session, func, select

from registry.tables import Crawl, CrawlEvent, clean_text, utc_now
from registry.values import check_status, id_of, one_line, redact

CRAWL_STATUSES: tuple[str, ...] = ("running", "ok", "failed", "interrupted")
EVENT_LEVELS: tuple[str, ...] = ("info", "warning", "error")

_CRAWL_EVENT: Table = CrawlEvent.__table__  # type: ignore[attr-defined]
# Built once, parameters bound per call (see registry.store): one line per node and problem.
_INSERT_EVENT = insert(_CRAWL_EVENT)


# Where a crawl runs, kept in its options: what tells a crawl that died from one still running.
CRAWL_PROCESS_KEY = "process"


def start_crawl(session: Session, roots: Iterable[str], options: Mapping[str, Any]) -> int:
    """Open a crawl record (status ``running``) and return its id. Secrets are redacted.

    The record names the process running it (host, pid, process start); crawls left
    ``running`` by a process that is gone (killed mid-run) are marked ``interrupted`` first.
    """
    mark_stale_crawls(session)
    recorded = redact(options) | {CRAWL_PROCESS_KEY: this_process()}
    crawl = Crawl(roots=[clean_text(str(root)) for root in roots], options=recorded)
    session.add(crawl)
    session.flush()
    return id_of(crawl)


def this_process() -> dict[str, Any]:
    """What identifies the running process: host, pid, and when it started."""
    return {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "started": _process_start(os.getpid()),
    }


def _process_start(pid: int) -> str | None:
    """``boot id:start time`` of process ``pid`` (Linux /proc), None where not readable.

    A pid is reused after its process exits, and restarts at 1 after a reboot: the pair
    tells the process that opened a crawl from a later one given the same pid.
    """
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2 :].split()  # the name may hold spaces and parentheses
    return f"{boot}:{fields[19]}" if len(fields) > 19 else None


def process_is_gone(process: Any) -> bool:
    """Whether the process recorded by ``this_process`` has certainly ended.

    Only a process of this host can be checked; one of another host, or a record without
    a pid, is never taken for gone (a crawl still running elsewhere must not be marked).
    """
    if not can_check_process(process):
        return False
    pid, started = process["pid"], process.get("started")
    if isinstance(started, str):
        current = _process_start(pid)
        if current is not None:
            return current != started  # the pid now belongs to another process
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # PermissionError: it exists, under another user
        return False
    return False


# A crawl logs a line per node it finishes, and no node takes near this long (its requests
# have a 10-minute retry budget): a crawl of another host silent for this long is dead.
SILENT_CRAWL_IS_STALE_AFTER = timedelta(hours=6)


def mark_stale_crawls(session: Session, *, now: datetime | None = None) -> list[int]:
    """Mark ``interrupted`` every crawl still ``running`` that has certainly stopped; their ids.

    A crawl killed mid-run (SIGKILL, power loss) never closes its record. What it finished
    is in the registry; its record says it was interrupted, and a line of its log says how
    that was found: its process is gone (this host), or, where the process cannot be asked
    (another host, a record without one), nothing was logged for
    ``SILENT_CRAWL_IS_STALE_AFTER``.
    """
    now = now or utc_now()
    marked: list[int] = []
    for crawl in session.exec(select(Crawl).where(Crawl.status == "running")).all():
        process = (crawl.options or {}).get(CRAWL_PROCESS_KEY)
        where = (
            f"process {process.get('pid')} on {process.get('host')}"
            if isinstance(process, Mapping)
            else "its process (not recorded)"
        )
        if process_is_gone(process):
            why = f"{where} ended without closing this crawl (killed?)"
        elif can_check_process(process):
            continue  # it runs here, now
        else:
            last = _last_sign_of_life(session, crawl)
            if now - last < SILENT_CRAWL_IS_STALE_AFTER:
                continue
            hours = SILENT_CRAWL_IS_STALE_AFTER.total_seconds() / 3600
            why = (
                f"{where} logged nothing since {last:%Y-%m-%d %H:%M} UTC (over {hours:g} h);"
                " it cannot be asked from here, so it is taken to have stopped"
            )
        crawl.status = "interrupted"
        marked.append(id_of(crawl))
        log_event(
            session,
            id_of(crawl),
            repo_id=None,
            level="warning",
            event="interrupted",
            message=f"{why}; marked interrupted when the next crawl started",
        )
    if marked:
        session.flush()
    return marked


def can_check_process(process: Any) -> bool:
    """Whether ``process_is_gone`` can tell about ``process``: one of this host, with a pid."""
    return (
        isinstance(process, Mapping)
        and process.get("host") == socket.gethostname()
        and isinstance(process.get("pid"), int)
        and not isinstance(process.get("pid"), bool)
        and process.get("pid", 0) > 0
    )


def _last_sign_of_life(session: Session, crawl: Crawl) -> datetime:
    """When ``crawl`` last logged a line, else when it started (UTC)."""
    latest = session.exec(
        select(func.max(CrawlEvent.at)).where(CrawlEvent.crawl_id == crawl.id)
    ).one()
    moments = [_as_utc(moment) for moment in (crawl.started_at, latest) if moment is not None]
    return max(moments)


def _as_utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def log_event(
    session: Session,
    crawl_id: int,
    *,
    repo_id: str | None,
    level: str,
    event: str,
    message: str,
    revision: str | None = None,
) -> None:
    """Append one line to a crawl's log."""
    if level not in EVENT_LEVELS:
        raise ValueError(f"event level {level!r} is not one of {', '.join(EVENT_LEVELS)}")
    # A Core insert, not an ORM object: the crawl log gets a line per node and per problem,
    # and building a model instance per line was most of a crawl's write time.
    session.execute(
        _INSERT_EVENT,
        {
            "crawl_id": crawl_id,
            "repo_id": repo_id,
            "revision": revision,
            "level": level,
            "event": event,
            "message": one_line(message) or "",
            "at": utc_now(),
        },
    )


def finish_crawl(
    session: Session, crawl_id: int, status: str, nodes_ok: int, problems: int
) -> None:
    """Close a crawl record with how it ended."""
    check_status(status, CRAWL_STATUSES[1:])
    crawl = session.get(Crawl, crawl_id)
    if crawl is None:
        raise ValueError(f"crawl {crawl_id} is not recorded")
    crawl.status = status
    crawl.nodes_ok = nodes_ok
    crawl.problems = problems
    crawl.finished_at = utc_now()
    session.flush()
