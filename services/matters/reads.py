"""The read paths that answer most of matters' calls — GetApplication and ListTasks — as
SQLAlchemy Core statements built once (so their compiled forms are cached) run through
``Database.read``, and the version-checked caches of GetApplication and of inbox pages.

The cache: every write to an application, its timeline or its children bumps
``applications.version`` (database triggers; see the migration a3c1e07d5b21). A read
always queries the row's owner fields and version and checks the caller against them;
only when the version equals the one a cached response was built from is that response
served. The database decides, not this process, so the cache is correct across replicas
and whatever path the write took.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from govflow import auth
from govflow.db import Database, Prepared
from govflow.errors import InvalidArgument, NotFound, PermissionDenied
from govflow.lru import Lru
from services.matters.service import may_see, utcnow
from services.matters.store import ApplicationEventRow, ApplicationRow, InboxVersionRow, TaskRow

V = TypeVar("V")
R = TypeVar("R")

_APPS: sa.Table = ApplicationRow.__table__  # type: ignore[attr-defined]
_EVENTS: sa.Table = ApplicationEventRow.__table__  # type: ignore[attr-defined]
_TASKS: sa.Table = TaskRow.__table__  # type: ignore[attr-defined]

_HEAD = Prepared(sa.select(_APPS.c.applicant, _APPS.c.submitted_by, _APPS.c.agency,
                           _APPS.c.version).where(_APPS.c.id == sa.bindparam("id")))
_ROW = Prepared(sa.select(_APPS).where(_APPS.c.id == sa.bindparam("id")))
_TIMELINE = Prepared(sa.select(_EVENTS).where(
    _EVENTS.c.application_id == sa.bindparam("id")).order_by(_EVENTS.c.event_id))
_CHILDREN = Prepared(sa.select(_APPS.c.id).where(_APPS.c.parent_id == sa.bindparam("id")))
_TASK_OF_AGENCY = Prepared(sa.select(_TASKS.c.name).where(
    _TASKS.c.application_id == sa.bindparam("id"),
    _TASKS.c.agency == sa.bindparam("agency")).limit(1))


class VersionedCache(Generic[V]):
    """At most ``size`` values by key, each with the version it was built from; least
    recently used first out. Safe to use from the loop and worker threads at once."""

    def __init__(self, size: int) -> None:
        self._items: Lru[str, tuple[int, V]] = Lru(size)

    def get(self, key: str, version: int) -> V | None:
        item = self._items.get(key)
        return item[1] if item is not None and item[0] == version else None

    def put(self, key: str, version: int, value: V) -> None:
        # A newer one already held stays (versions only grow).
        self._items.put(key, (version, value), replace=lambda held: held[0] <= version)

    def __len__(self) -> int:
        return len(self._items)


@dataclasses.dataclass(frozen=True)
class ApplicationData:
    """One application as read: its row, its timeline in order, its children's ids."""

    row: Any  # a Core row with ApplicationRow's columns
    events: Sequence[Any]  # ... with ApplicationEventRow's
    children: list[str]


class ApplicationReader(Generic[V]):
    """GetApplication: authorisation on every call, the response from the cache when the
    application has not changed since it was built (``build`` makes it otherwise)."""

    def __init__(self, db: Database, build: Callable[[ApplicationData], V], *,
                 cache_size: int = 4096) -> None:
        self.db = db
        self.build = build
        self.cache: VersionedCache[V] = VersionedCache(cache_size)

    async def get(self, p: auth.Principal, name: str) -> V:
        version, got = await self.db.read(self.query(p, name))
        if not isinstance(got, ApplicationData):
            return got
        value = self.build(got)
        self.cache.put(got.row.id, version, value)
        return value

    def query(self, p: auth.Principal, name: str
              ) -> Callable[[Connection], tuple[int, V | ApplicationData]]:
        """The read for ``Database.read``: the version and the cached response, or the
        version and the application's data to build one from."""
        app_id = name.removeprefix("applications/") if name.startswith("applications/") else ""

        def read(conn: Connection) -> tuple[int, V | ApplicationData]:
            head = _HEAD.first(conn, {"id": app_id}) if app_id else None
            if head is None or not may_see(p, head, lambda: _TASK_OF_AGENCY.first(
                    conn, {"id": app_id, "agency": p.agency}) is not None):
                raise NotFound(f"{name} not found", reason="APPLICATION_NOT_FOUND")
            cached = self.cache.get(app_id, head.version)
            if cached is not None:
                return head.version, cached
            row = _ROW.first(conn, {"id": app_id})
            if row is None:  # deleted since the first query
                raise NotFound(f"{name} not found", reason="APPLICATION_NOT_FOUND")
            # Read after the row: at least as new as the version the row carries, and any
            # later write bumps the version past it, so this is never served stale.
            events = _TIMELINE.all(conn, {"id": app_id})
            children = [r.id for r in _CHILDREN.all(conn, {"id": app_id})]
            return row.version, ApplicationData(row, events, children)

        return read


# ListTasks statements by filter shape, built and compiled once each: a statement object
# used again skips SQLAlchemy's construction and compilation on every call. The shape
# counts the caller's roles and the statuses asked for (one bound parameter each).
_INBOX: dict[tuple[int, ...], Prepared] = {}


def _inbox_statement(shape: tuple[int, int, bool, bool, bool, bool, bool]) -> Prepared:
    roles, statuses, supervisor, overdue, due_before, due_soon, assignee = shape
    t = _TASKS.c
    mine: sa.ColumnElement[bool] = t.role.in_(
        [sa.bindparam(f"role_{i}") for i in range(roles)])
    if supervisor:
        # Supervisors also see every overdue (escalated) task of their agency.
        mine = sa.or_(mine, t.overdue.is_(True))
    # Not the caller's own applications' tasks, which the workflow would not let them
    # claim (workflows/officer_checks.py): not as the applicant (or for the organisation
    # their token acts for), nor as the submitter (a follow-up checks the applicant only).
    a = _APPS.c
    not_own = sa.or_(a.id.is_(None), sa.and_(
        a.applicant != sa.bindparam("me"), a.applicant != sa.bindparam("acting_for"),
        sa.or_(t.kind == "follow_up", sa.and_(
            a.submitted_by != sa.bindparam("me"),
            # Nor an organisation's application they represent (the workflow's interested).
            ~a.interested.contains(sa.bindparam("me_listed"))))))
    q = sa.select(_TASKS).select_from(_TASKS.outerjoin(_APPS, a.id == t.application_id)).where(
        t.agency == sa.bindparam("agency"), mine, t.status.in_(
            [sa.bindparam(f"status_{i}") for i in range(statuses)]), not_own)
    if overdue:
        q = q.where(t.overdue == sa.bindparam("overdue", type_=t.overdue.type))
    if due_before:
        q = q.where(t.due_time <= sa.bindparam("due_before", type_=t.due_time.type))
    if due_soon:
        # Due within the next 24 hours and not yet overdue: what to do today.
        q = q.where(t.due_time <= sa.bindparam("soon", type_=t.due_time.type), ~t.overdue)
    if assignee:
        q = q.where(t.assignee == sa.bindparam("assignee"))
    return Prepared(q.order_by(t.due_time.asc(), t.name).offset(sa.bindparam("offset"))
                    .limit(sa.bindparam("limit")))


_INBOX_VERSION = Prepared(sa.select(InboxVersionRow.__table__.c.version).where(  # type: ignore[attr-defined]
    InboxVersionRow.__table__.c.agency == sa.bindparam("agency")))  # type: ignore[attr-defined]


def list_tasks(p: auth.Principal, f: dict[str, str], *, offset: int, limit: int,
               build: Callable[[Any], V], respond: Callable[[list[V]], R],
               cache: VersionedCache[R] | None = None) -> Callable[[Connection], R]:
    """An official's inbox (their agency and roles; supervisors also every overdue task
    of their agency; never their own applications' tasks, which they may not decide),
    open and claimed tasks by default, soonest due first: a function
    for ``Database.read`` returning ``respond`` of the page, a list of ``build`` of each
    Core row with TaskRow's columns (reused for rows read before with the same values; see
    Prepared.all_built).

    With ``cache`` (one per database), a page's response is served as made before while
    the agency's inbox version (bumped by triggers on every write to its tasks, migration
    d41b7e2c9a60) is unchanged; pages that depend on the clock (``due_soon``) are always
    read. The version is read before the rows, so a cached response is never older than
    the version it is filed under."""
    if p.kind != auth.OFFICIAL:
        raise PermissionDenied("only officials have an inbox", reason="OFFICIALS_ONLY")
    status = f.get("status", "").upper()
    statuses = [status] if status else ["OPEN", "CLAIMED"]
    params: dict[str, Any] = {"agency": p.agency, "offset": offset, "limit": limit,
                              "me": p.subject, "acting_for": p.acting_for,
                              "me_listed": f",{p.subject},",
                              **{f"role_{i}": r for i, r in enumerate(p.roles)},
                              **{f"status_{i}": s for i, s in enumerate(statuses)}}
    if "overdue" in f:
        params["overdue"] = f["overdue"].lower() == "true"
    if "due_before" in f:
        try:
            params["due_before"] = dt.datetime.fromisoformat(
                f["due_before"].replace("Z", "+00:00"))
        except ValueError as exc:
            raise InvalidArgument(fields={"filter": "due_before must be ISO 8601"}) from exc
    due_soon = f.get("due_soon", "").lower() == "true"
    if due_soon:
        params["soon"] = utcnow() + dt.timedelta(hours=24)
    mine = f.get("assignee") == "me"
    if mine:
        params["assignee"] = p.subject
    shape = (len(p.roles), len(statuses), "supervisor" in p.roles, "overdue" in params,
             "due_before" in params, due_soon, mine)
    q = _INBOX.get(shape)
    if q is None:
        q = _INBOX[shape] = _inbox_statement(shape)
    if cache is None or due_soon:
        return lambda conn: respond(q.all_built(conn, params, build))
    key = repr((shape, sorted(params.items())))

    def read(conn: Connection) -> R:
        head = _INBOX_VERSION.first(conn, {"agency": p.agency})
        version = head.version if head is not None else 0
        response = cache.get(key, version)
        if response is None:
            response = respond(q.all_built(conn, params, build))
            cache.put(key, version, response)
        return response

    return read


# ListApplications statements by filter shape, as for the inbox: who the caller is (an
# official's agency, a person's own and represented applications, the ones a caller
# submitted, or everything for services and admins) and which filters are set.
_APP_LISTS: dict[tuple[Any, ...], Prepared] = {}


def list_applications(p: auth.Principal, f: dict[str, str], *, offset: int, limit: int,
                      build: Callable[[Any], V]) -> Callable[[Connection], list[V]]:
    """The applications the caller may list, newest first: a function for
    ``Database.read`` returning ``build`` of each Core row with ApplicationRow's columns
    (reused for rows read before with the same values; see Prepared.all_built). Filter
    values are checked here, before anything is read."""
    params: dict[str, Any] = {"offset": offset, "limit": limit}
    if p.kind == auth.OFFICIAL:
        who: tuple[str, int] = ("agency", 0)
        params["agency"] = p.agency
    elif p.kind == auth.PERSON:
        mine = [p.subject] + ([p.acting_for] if p.acting_for else [])
        who = ("applicant", len(mine))
        params.update({f"applicant_{i}": m for i, m in enumerate(mine)})
    elif p.kind == auth.SERVICE or p.is_admin:
        who = ("all", 0)
    else:
        who = ("submitter", 0)
        params["submitted_by"] = p.subject
    if "matter" in f:
        params["matter"] = f["matter"].removeprefix("matters/")
    if "status" in f:
        params["status"] = f["status"].upper()
    if "overdue" in f:
        params["overdue"] = f["overdue"].lower() == "true"
    for key in ("created_after", "created_before"):
        if key in f:
            try:
                when = dt.datetime.fromisoformat(f[key].replace("Z", "+00:00"))
            except ValueError as exc:
                raise InvalidArgument(fields={"filter": f"{key} must be ISO 8601"}) from exc
            params[key] = when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)
    shape = (who, *(k in params for k in ("matter", "status", "overdue", "created_after",
                                          "created_before")))
    q = _APP_LISTS.get(shape)
    if q is None:
        q = _APP_LISTS[shape] = _app_list_statement(shape)
    return lambda conn: q.all_built(conn, params, build)


def _app_list_statement(shape: tuple[Any, ...]) -> Prepared:
    (who, n), matter, status, overdue, after, before = shape
    a = _APPS.c
    q = sa.select(_APPS)
    if who == "agency":
        q = q.where(a.agency == sa.bindparam("agency"))
    elif who == "applicant":
        q = q.where(a.applicant.in_([sa.bindparam(f"applicant_{i}") for i in range(n)]))
    elif who == "submitter":
        q = q.where(a.submitted_by == sa.bindparam("submitted_by"))
    if matter:
        q = q.where(a.matter_code == sa.bindparam("matter"))
    if status:
        q = q.where(a.status == sa.bindparam("status"))
    if overdue:
        q = q.where(a.overdue == sa.bindparam("overdue", type_=a.overdue.type))
    if after:
        q = q.where(a.create_time >= sa.bindparam("created_after", type_=a.create_time.type))
    if before:
        q = q.where(a.create_time < sa.bindparam("created_before", type_=a.create_time.type))
    return Prepared(q.order_by(a.create_time.desc(), a.id).offset(sa.bindparam("offset"))
                    .limit(sa.bindparam("limit")))
