"""The workflow's writes to matters' read model — RecordApplicationEvent and UpsertTask,
called by its idempotent activities — and GetStatistics, the figures read from it."""

from __future__ import annotations

from sqlalchemy import Connection
from sqlmodel import Session

from govflow import auth
from govflow.db import Database
from services.matters import working_days as wd
from services.matters.calendars import CalendarStore
from services.matters.domain import statistics
from services.matters.domain.applications import Progress, Task
from services.matters.store import applications, tasks


async def record_event(db: Database, app_id: str, ev: Progress) -> None:
    """Appends a timeline event and applies what it carries to the application (a retried
    event changes nothing; see store.applications.record_event)."""
    # A Core transaction (Database.write): the write is Core statements only.
    await db.write(lambda conn: applications.record_event(conn, app_id, ev))


async def record_events(db: Database, events: list[tuple[str, Progress]]) -> None:
    """Several events (application id, event) in one transaction, in order: each as
    record_event would write it."""

    def write(conn: Connection) -> None:
        for app_id, ev in events:
            applications.record_event(conn, app_id, ev)

    await db.write(write)


async def upsert_task(db: Database, task: Task) -> Task:
    """Writes the workflow's snapshot of a task (tasks only move forward)."""
    return await db.run(lambda s: tasks.upsert(s, task))


def figures(s: Session, p: auth.Principal, f: dict[str, str]) -> list[statistics.MatterStatistics]:
    """GetStatistics: counts by status, on-time rate, average working days and rating per
    matter and agency, as far as ``p`` may see them."""
    f = statistics.scope(p, f)
    agency = f.get("agency")
    matter = f["matter"].removeprefix("matters/") if "matter" in f else None
    counts = applications.status_counts(s, agency=agency, matter_code=matter)
    decided = applications.decided(s, agency=agency, matter_code=matter)
    # Counted on the mainland calendar as published (Monday to Friday where a year is not).
    cal = wd.Calendar("CN", CalendarStore.years(s, "CN", statistics.years_needed(decided)))
    return statistics.compute(counts, decided, cal)
