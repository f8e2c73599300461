"""The reads that answer most of matters' calls — GetApplication, ListTasks and
ListApplications: who may read what, the filters, and the version-checked caches
(``store/caches.py``) in front of the store's prebuilt statements (``store/applications.py``,
``store/tasks.py``). Each returns a function for ``Database.read`` (on SQLite it runs
inline on the event loop).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from sqlalchemy.engine import Connection

from govflow import auth
from govflow.db import Database
from govflow.errors import InvalidArgument, NotFound, PermissionDenied
from services.matters.domain.applications import Application, ApplicationData, Task, may_see
from services.matters.store import applications, tasks
from services.matters.store.caches import VersionedCache
from services.matters.store.tables import utcnow

V = TypeVar("V")
R = TypeVar("R")

__all__ = ["ApplicationData", "ApplicationReader", "VersionedCache", "list_applications",
           "list_tasks"]


class ApplicationReader(Generic[V]):
    """GetApplication: authorisation on every call, the response from ``cache`` when the
    application has not changed since it was built (``build`` makes it otherwise)."""

    def __init__(self, db: Database, build: Callable[[ApplicationData], V], *,
                 cache: VersionedCache[V] | None = None) -> None:
        self.db = db
        self.build = build
        self.cache: VersionedCache[V] = cache if cache is not None else VersionedCache(4096)

    async def get(self, p: auth.Principal, name: str) -> V:
        version, got = await self.db.read(self.query(p, name))
        if not isinstance(got, ApplicationData):
            return got
        value = self.build(got)
        self.cache.put(got.application.id, version, value)
        return value

    def query(self, p: auth.Principal, name: str
              ) -> Callable[[Connection], tuple[int, V | ApplicationData]]:
        """The read for ``Database.read``: the version and the cached response, or the
        version and the application's data to build one from."""
        app_id = name.removeprefix("applications/") if name.startswith("applications/") else ""

        def read(conn: Connection) -> tuple[int, V | ApplicationData]:
            head = applications.head(conn, app_id) if app_id else None
            if head is None or not may_see(p, head, lambda: tasks.agency_has_task(
                    conn, app_id, p.agency)):
                raise NotFound(f"{name} not found", reason="APPLICATION_NOT_FOUND")
            cached = self.cache.get(app_id, head.version)
            if cached is not None:
                return head.version, cached
            data = applications.read(conn, app_id)
            if data is None:  # deleted since the first query
                raise NotFound(f"{name} not found", reason="APPLICATION_NOT_FOUND")
            # Any write after the row was read bumps the version past the row's, so this
            # is never served stale.
            return data.application.version, data

        return read


def _when(f: dict[str, str], key: str) -> dt.datetime:
    try:
        return dt.datetime.fromisoformat(f[key])  # "Z" included (Python 3.11)
    except ValueError as exc:
        raise InvalidArgument(fields={"filter": f"{key} must be ISO 8601"}) from exc


def list_tasks(p: auth.Principal, f: dict[str, str], *, offset: int, limit: int,
               build: Callable[[Task], V], respond: Callable[[list[V]], R],
               cache: VersionedCache[R] | None = None) -> Callable[[Connection], R]:
    """An official's inbox (their agency and roles; supervisors also every overdue task
    of their agency; never their own applications' tasks, which they may not decide),
    open and claimed tasks by default, soonest due first: a function for
    ``Database.read`` returning ``respond`` of the page, a list of ``build`` of each task.

    With ``cache``, a page's response is served as made before while the agency's inbox
    version is unchanged; pages that depend on the clock (``due_soon``) are always read.
    The version is read before the rows, so a cached response is never older than the
    version it is filed under."""
    if p.kind != auth.OFFICIAL:
        raise PermissionDenied("only officials have an inbox", reason="OFFICIALS_ONLY")
    status = f.get("status", "").upper()
    due_soon = f.get("due_soon", "").lower() == "true"
    q = tasks.InboxQuery(
        agency=p.agency, roles=tuple(p.roles),
        statuses=(status,) if status else ("OPEN", "CLAIMED"),
        me=p.subject, acting_for=p.acting_for,
        overdue=f["overdue"].lower() == "true" if "overdue" in f else None,
        due_before=_when(f, "due_before") if "due_before" in f else None,
        # Due within the next 24 hours and not yet overdue: what to do today.
        due_by=utcnow() + dt.timedelta(hours=24) if due_soon else None,
        assignee=p.subject if f.get("assignee") == "me" else None)
    if cache is None or due_soon:
        return lambda conn: respond(tasks.inbox(conn, q, offset=offset, limit=limit,
                                                build=build))
    key = q.key(offset, limit)

    def read(conn: Connection) -> R:
        version = tasks.inbox_version(conn, p.agency)
        response = cache.get(key, version)
        if response is None:
            response = respond(tasks.inbox(conn, q, offset=offset, limit=limit, build=build))
            cache.put(key, version, response)
        return response

    return read


def list_applications(p: auth.Principal, f: dict[str, str], *, offset: int, limit: int,
                      build: Callable[[Application], V]) -> Callable[[Connection], list[V]]:
    """The applications the caller may list, newest first — an official's agency's, a
    person's own and those of the organisation their token acts for, everything for
    services and admins, else the ones the caller submitted: a function for
    ``Database.read`` returning ``build`` of each. Filter values are checked here, before
    anything is read."""
    q: dict[str, Any] = {}
    if p.kind == auth.OFFICIAL:
        q.update(who="agency", agency=p.agency)
    elif p.kind == auth.PERSON:
        q.update(who="applicant",
                 applicants=(p.subject, *((p.acting_for,) if p.acting_for else ())))
    elif p.kind == auth.SERVICE or p.is_admin:
        q.update(who="all")
    else:
        q.update(who="submitter", submitted_by=p.subject)
    if "matter" in f:
        q["matter"] = f["matter"].removeprefix("matters/")
    if "status" in f:
        q["status"] = f["status"].upper()
    if "overdue" in f:
        q["overdue"] = f["overdue"].lower() == "true"
    for key in ("created_after", "created_before"):
        if key in f:
            when = _when(f, key)
            q[key] = when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)
    query = applications.ListQuery(**q)
    return lambda conn: applications.listing(conn, query, offset=offset, limit=limit,
                                             build=build)
