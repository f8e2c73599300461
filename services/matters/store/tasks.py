"""Officers' tasks (``tasks``, ``inbox_versions``): the workflow's snapshots of them, the
lookups of one task, and the inbox pages (``Prepared`` statements by filter shape)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlmodel import Session

from govflow.db import Prepared
from services.matters.domain.applications import TASK_MAY_BECOME, Task
from services.matters.store import audit
from services.matters.store.tables import ApplicationRow, InboxVersionRow, TaskRow, utcnow

V = TypeVar("V")

_TASKS: sa.Table = TaskRow.__table__  # type: ignore[attr-defined]  # sqlmodel sets __table__ at class creation
_APPS: sa.Table = ApplicationRow.__table__  # type: ignore[attr-defined]  # sqlmodel sets __table__ at class creation
# mypy, next line: sqlmodel sets __table__ at class creation
_INBOX_VERSIONS: sa.Table = InboxVersionRow.__table__  # type: ignore[attr-defined]
_FIELDS = tuple(f.name for f in dataclasses.fields(Task))
# Task's fields are the table's columns in order, so a row of them is its values.
assert _FIELDS == tuple(c.name for c in _TASKS.columns), "Task must mirror tasks"


def _task(row: TaskRow) -> Task:
    return Task(**{f: getattr(row, f) for f in _FIELDS})


def _task_of(values: Sequence[Any]) -> Task:
    """From the values of a Core row of the table's columns, in order."""
    return Task(*values)


# ------------------------------------------------------------------ one task
def get(s: Session, name: str) -> Task | None:
    row = s.get(TaskRow, name)
    return None if row is None else _task(row)


_OF_AGENCY = Prepared(sa.select(_TASKS.c.name).where(
    _TASKS.c.application_id == sa.bindparam("id"),
    _TASKS.c.agency == sa.bindparam("agency")).limit(1))


def agency_has_task(conn: Connection, app_id: str, agency: str) -> bool:
    """Whether ``agency`` holds a task of the application."""
    return _OF_AGENCY.first(conn, {"id": app_id, "agency": agency}) is not None


# ------------------------------------------------------------------ the workflow's writes
def upsert(s: Session, t: Task) -> Task:
    """Writes the workflow's snapshot of a task (its ``update_time`` is now; a
    ``create_time`` of None keeps the stored one, or is now for a new task). Tasks only
    move forward (domain TASK_MAY_BECOME), so a stale snapshot — an older write, say a
    claim's retried after a timeout, landing after the decision's — changes nothing. The
    check is part of the UPDATE itself: two writes racing in separate transactions cannot
    both pass it on a stale read. The write that makes a decision reach the read model
    appends it to the audit chain."""
    skip = {"name", "update_time"} | ({"create_time"} if t.create_time is None else set())
    values = {f: getattr(t, f) for f in _FIELDS if f not in skip}
    row = s.get(TaskRow, t.name)
    if row is None:
        row = TaskRow(name=t.name, **values)
        s.add(row)
        s.flush()  # a concurrent first write fails on the key; the activity retries
        if t.status == "DECIDED":
            _audit_decided(s, t)
        return _task(row)
    allowed = TASK_MAY_BECOME.get(t.status) or tuple(TASK_MAY_BECOME)
    wrote = s.execute(sa.update(_TASKS).where(
        _TASKS.c.name == t.name, _TASKS.c.status.in_(allowed)).values(
        **values, update_time=utcnow()))
    # mypy, next line: rowcount is on the DML CursorResult
    if wrote.rowcount == 1 and t.status == "DECIDED":  # type: ignore[attr-defined]
        # This write made the decision reach the read model (a retry finds it decided
        # and appends nothing).
        _audit_decided(s, t)
    s.expire(row)
    s.refresh(row)
    return _task(row)


def _audit_decided(s: Session, t: Task) -> None:
    audit.append(s, action="task.decided", actor=t.assignee, subject=t.name, details={
        "application": f"applications/{t.application_id}", "matter": t.matter,
        "step": t.step, "kind": t.kind, "role": t.role, "agency": t.agency,
        "decision": t.decision, "reasons": json.loads(t.reasons or "[]"),
        "workflow_id": t.workflow_id})


# ------------------------------------------------------------------ inboxes
@dataclasses.dataclass(frozen=True)
class InboxQuery:
    """An official's inbox: their agency and roles, the statuses asked for, never the
    tasks of applications they are a party to (``me``, ``acting_for``), and the filters."""

    agency: str
    roles: tuple[str, ...]
    statuses: tuple[str, ...]
    me: str
    acting_for: str
    overdue: bool | None = None
    due_before: dt.datetime | None = None
    due_by: dt.datetime | None = None  # due_soon: due by then and not yet overdue
    assignee: str | None = None

    def key(self, offset: int, limit: int) -> str:
        """The page's cache key."""
        return repr((self.agency, self.roles, self.statuses, self.me, self.acting_for,
                     self.overdue, self.due_before, self.due_by, self.assignee, offset, limit))


# Statements by filter shape, built and compiled once each: a statement object used again
# skips SQLAlchemy's construction and compilation on every call. The shape counts the
# caller's roles and the statuses asked for (one bound parameter each).
_INBOX: dict[tuple[int, int, bool, bool, bool, bool, bool], Prepared] = {}


def inbox(conn: Connection, q: InboxQuery, *, offset: int, limit: int,
          build: Callable[[Task], V]) -> list[V]:
    """``build`` of each task of the page, soonest due first (what ``build`` made of the
    same stored values before is reused: see Prepared.all_built)."""
    params: dict[str, Any] = {"agency": q.agency, "offset": offset, "limit": limit,
                              "me": q.me, "acting_for": q.acting_for,
                              "me_listed": f",{q.me},",
                              **{f"role_{i}": r for i, r in enumerate(q.roles)},
                              **{f"status_{i}": s for i, s in enumerate(q.statuses)}}
    for key, value in (("overdue", q.overdue), ("due_before", q.due_before),
                       ("soon", q.due_by), ("assignee", q.assignee)):
        if value is not None:
            params[key] = value
    shape = (len(q.roles), len(q.statuses), "supervisor" in q.roles, q.overdue is not None,
             q.due_before is not None, q.due_by is not None, q.assignee is not None)
    stmt = _INBOX.get(shape)
    if stmt is None:
        stmt = _INBOX[shape] = _inbox_statement(shape)
    return stmt.all_built(conn, params, lambda row: build(_task_of(row)))


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
        q = q.where(t.due_time <= sa.bindparam("soon", type_=t.due_time.type), ~t.overdue)
    if assignee:
        q = q.where(t.assignee == sa.bindparam("assignee"))
    return Prepared(q.order_by(t.due_time.asc(), t.name).offset(sa.bindparam("offset"))
                    .limit(sa.bindparam("limit")))


_INBOX_VERSION = Prepared(sa.select(_INBOX_VERSIONS.c.version).where(
    _INBOX_VERSIONS.c.agency == sa.bindparam("agency")))


def inbox_version(conn: Connection, agency: str) -> int:
    """The agency's inbox version (bumped by triggers on every write to its tasks)."""
    head = _INBOX_VERSION.first(conn, {"agency": agency})
    return head.version if head is not None else 0
