"""Applications and their timelines (``applications``, ``application_events``).

Written at submission (ORM session, one transaction with the one-per-holder check), by
the workflow's ``record_event`` activity (Core statements built once) and by a rating;
read by GetApplication and ListApplications through ``Prepared`` statements (compiled once
per dialect, run straight on the cursor: these answer most calls)."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import uuid
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlmodel import Session, col, select

from govflow.db import Prepared, dialect_insert
from govflow.errors import NotFound
from services.matters.domain.applications import (
    DECIDED_STATUSES,
    RESULT_GONE,
    Application,
    ApplicationData,
    ApplicationHead,
    Progress,
    TimelineEvent,
    submitted_message,
)
from services.matters.domain.definition import MatterSpec
from services.matters.domain.statistics import StatusCount
from services.matters.store import audit
from services.matters.store.tables import ApplicationEventRow, ApplicationRow, utcnow

V = TypeVar("V")

_APPS: sa.Table = ApplicationRow.__table__  # type: ignore[attr-defined]  # sqlmodel sets __table__ at class creation
# mypy, next line: sqlmodel sets __table__ at class creation
_EVENTS: sa.Table = ApplicationEventRow.__table__  # type: ignore[attr-defined]
_FIELDS = tuple(f.name for f in dataclasses.fields(Application))
# Application's fields are the table's columns in order, so a row of them is its values.
assert _FIELDS == tuple(c.name for c in _APPS.columns), "Application must mirror applications"


def _application(row: ApplicationRow) -> Application:
    return Application(**{f: getattr(row, f) for f in _FIELDS})


def _application_of(values: Sequence[Any]) -> Application:
    """From the values of a Core row of the table's columns, in order."""
    return Application(*values)


def _event(row: Any) -> TimelineEvent:  # a Core row of application_events' columns
    return TimelineEvent(event_id=row.event_id, kind=row.kind, message=row.message,
                         time=row.time, status=row.status, actor=row.actor,
                         message_en=row.message_en)


# ------------------------------------------------------------------ submission
def by_request(s: Session, submitted_by: str, request_id: str) -> Application | None:
    """The application ``submitted_by`` made with ``request_id``, if any."""
    row = s.exec(select(ApplicationRow).where(ApplicationRow.submitted_by == submitted_by,
                                              ApplicationRow.request_id == request_id)).first()
    return None if row is None else _application(row)


def holding(s: Session, matter_code: str, applicant: str) -> Application | None:
    """The applicant's oldest application for the matter whose result is not gone."""
    row = s.exec(select(ApplicationRow).where(
        ApplicationRow.matter_code == matter_code, ApplicationRow.applicant == applicant,
        col(ApplicationRow.status).not_in(RESULT_GONE)).order_by(
        col(ApplicationRow.create_time)).limit(1)).first()
    return None if row is None else _application(row)


# SQLite: a write statement takes the database's write lock until the transaction ends,
# even one that changes nothing, like this one.
_TAKE_WRITE_LOCK = sa.update(_APPS).where(sa.false()).values(id=_APPS.c.id)


def lock_holdings(s: Session, keys: list[str]) -> None:
    """Makes the submissions that could take the same one-per-holder results (``keys``)
    take turns until their transactions end: on PostgreSQL through transaction-scoped
    advisory locks, one per key, across replicas; on SQLite through the database's write
    lock (one writer at a time; taken here, before the check, rather than at the insert)."""
    conn = s.connection()
    if conn.dialect.name == "postgresql":
        for key in sorted(keys):
            lock_id = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(),
                                     "big", signed=True)
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(lock_id)))
    else:
        conn.execute(_TAKE_WRITE_LOCK)


def add(s: Session, spec: MatterSpec, *, version: int, applicant: str, submitter: str,
        request_id: str, pledges: list[str], parent_id: str | None = None,
        delegation: str = "") -> Application:
    """A new application with its ``submitted`` event (flushed, not committed);
    ``delegation``: the applicant's delegation a partner submitter acted under."""
    row = ApplicationRow(id=uuid.uuid4().hex[:16], matter_code=spec.code,
                         matter_version=version, agency=spec.agency, applicant=applicant,
                         submitted_by=submitter, request_id=request_id,
                         pledges=",".join(pledges), parent_id=parent_id,
                         # Children are started by their life event's workflow.
                         workflow_started=parent_id is not None, delegation=delegation)
    s.add(row)
    message, message_en = submitted_message(spec, parent_id)
    s.add(ApplicationEventRow(application_id=row.id, event_id="0000-submitted",
                              kind="submitted", message=message, message_en=message_en,
                              time=row.create_time, status="SUBMITTED", actor=submitter))
    s.flush()
    return _application(row)


def children(s: Session, parent_id: str) -> list[Application]:
    return [_application(r) for r in s.exec(select(ApplicationRow).where(
        ApplicationRow.parent_id == parent_id))]


def unstarted(s: Session, *, limit: int = 1000) -> list[Application]:
    """Applications whose workflow was never started (a crash between insert and start)."""
    return [_application(r) for r in s.exec(select(ApplicationRow).where(
        ~col(ApplicationRow.workflow_started)).limit(limit))]


_MARK_STARTED = sa.update(_APPS).where(
    _APPS.c.id == sa.bindparam("app_id")).values(workflow_started=True)


def mark_started(conn: Connection, app_id: str) -> None:
    """Notes the started workflow (``unstarted`` skips it after a restart)."""
    conn.execute(_MARK_STARTED, {"app_id": app_id})


def rate(s: Session, app_id: str, *, score: int, comment: str, actor: str) -> Application:
    """Records a rating and its timeline event."""
    row = s.get(ApplicationRow, app_id)
    if row is None:
        raise NotFound(f"applications/{app_id} not found", reason="APPLICATION_NOT_FOUND")
    row.rating, row.rating_comment = score, comment
    s.add(row)
    s.add(ApplicationEventRow(application_id=row.id, event_id="9000-rated",
                              kind="rated", message=f"评价 {score}/5：{comment[:200]}",
                              message_en=f"Rated {score}/5: {comment[:200]}",
                              time=utcnow(), actor=actor))
    s.flush()
    return _application(row)


# ------------------------------------------------------------------ the workflow's writes
_EVENT_INSERTS: dict[str, Any] = {}  # by dialect name


def _event_insert(conn: Connection) -> Any:
    """A timeline event's INSERT, doing nothing if the event is there already (built once
    per dialect)."""
    stmt = _EVENT_INSERTS.get(conn.dialect.name)
    if stmt is None:
        stmt = _EVENT_INSERTS[conn.dialect.name] = dialect_insert(
            conn, _EVENTS).on_conflict_do_nothing(index_elements=["application_id", "event_id"])
    return stmt


@functools.cache
def _row_update(columns: tuple[str, ...], decided: bool) -> Any:
    """The application row's UPDATE for one set of columns (each bound as ``new_<column>``);
    a decision's time is the first one's (kept once set)."""
    values: dict[str, Any] = {c: sa.bindparam(f"new_{c}") for c in columns}
    if decided:
        values["decided_time"] = sa.func.coalesce(_APPS.c.decided_time,
                                                  sa.bindparam("new_decided_time"))
    return sa.update(_APPS).where(_APPS.c.id == sa.bindparam("app_id")).values(**values)


# The application's columns an event may set, when it carries a value for them.
_CARRIED = ("result_certificate", "receipt_json", "due_time", "current_steps",
            "missing_materials", "supplement_due_time", "result_certificates", "reasons",
            "interested")


def record_event(conn: Connection, app_id: str, ev: Progress) -> None:
    """Appends a timeline event and applies what it carries to the application's row.
    Core statements (three round trips, no ORM loading): the event is inserted unless
    it is there already (a retried activity then changes nothing), then the row is
    updated; an application that is not there undoes the insert (NOT_FOUND)."""
    # The statements are built once (per dialect; per set of columns updated), so a
    # call pays for executing them, not for building and keying them again.
    inserted = conn.execute(_event_insert(conn), {
        "application_id": app_id, "event_id": ev.event_id, "kind": ev.kind,
        "message": ev.message, "message_en": ev.message_en, "time": ev.time,
        "status": ev.status, "actor": ev.actor})
    if inserted.rowcount == 0:
        return  # a retried activity: already recorded
    values: dict[str, Any] = {"update_time": utcnow()}
    if ev.status:
        values["status"] = ev.status
    for key in _CARRIED:
        value = getattr(ev, key)
        if value is not None and value != "":
            values[key] = value
    if ev.due_time is not None:
        values["due_provisional"] = ev.due_provisional
    if ev.overdue:
        values["overdue"] = True
    decided = ev.status in DECIDED_STATUSES
    if decided:
        values["decided_time"] = ev.time  # kept if the row has one: see _row_update
    params = {f"new_{k}": v for k, v in values.items()}
    params["app_id"] = app_id
    updated = conn.execute(_row_update(tuple(sorted(values)), decided), params)
    if updated.rowcount == 0:
        raise NotFound(f"applications/{app_id} not found", reason="APPLICATION_NOT_FOUND")
    if ev.receipt_json:
        # A rule decided (秒批 or not): the receipt is what the decision rested on.
        receipt = json.loads(ev.receipt_json)
        audit.append(conn, action="rule.decided", actor=ev.actor,
                     subject=f"applications/{app_id}", details={
                         "event": ev.event_id, "kind": ev.kind,
                         "outcome": receipt["outcome"],
                         "rule_version": receipt["rule_version"],
                         "inputs_json": receipt["inputs_json"],
                         "explanations": receipt["explanations"]})


# ------------------------------------------------------------------ reads
_HEAD = Prepared(sa.select(_APPS.c.applicant, _APPS.c.submitted_by, _APPS.c.agency,
                           _APPS.c.version).where(_APPS.c.id == sa.bindparam("id")))
_ROW = Prepared(sa.select(_APPS).where(_APPS.c.id == sa.bindparam("id")))
_TIMELINE = Prepared(sa.select(_EVENTS).where(
    _EVENTS.c.application_id == sa.bindparam("id")).order_by(_EVENTS.c.event_id))
_CHILDREN = Prepared(sa.select(_APPS.c.id).where(_APPS.c.parent_id == sa.bindparam("id")))


def head(conn: Connection, app_id: str) -> ApplicationHead | None:
    """The application's parties and version (what every read checks first)."""
    row = _HEAD.first(conn, {"id": app_id})
    return None if row is None else ApplicationHead._make(row)


def read(conn: Connection, app_id: str) -> ApplicationData | None:
    """The application with its timeline and children. The timeline is read after the
    row: at least as new as the version the row carries."""
    row = _ROW.first(conn, {"id": app_id})
    if row is None:
        return None
    events = [_event(e) for e in _TIMELINE.all(conn, {"id": app_id})]
    kids = [r.id for r in _CHILDREN.all(conn, {"id": app_id})]
    return ApplicationData(_application_of(row), events, kids)


def get(s: Session, app_id: str) -> Application | None:
    """The application alone, in an ORM session's transaction."""
    row = s.get(ApplicationRow, app_id)
    return None if row is None else _application(row)


# ListApplications statements by filter shape, built and compiled once each: who the
# caller is (an official's agency, a person's own and represented applications, the ones
# a caller submitted, or everything) and which filters are set.
_LISTS: dict[tuple[Any, ...], Prepared] = {}


@dataclasses.dataclass(frozen=True)
class ListQuery:
    """Which applications to list, newest first. ``who`` is ``agency`` (``agency``),
    ``applicant`` (any of ``applicants``), ``submitter`` (``submitted_by``) or ``all``."""

    who: str
    agency: str = ""
    applicants: tuple[str, ...] = ()
    submitted_by: str = ""
    matter: str | None = None
    status: str | None = None
    overdue: bool | None = None
    created_after: Any = None  # dt.datetime | None
    created_before: Any = None


def listing(conn: Connection, q: ListQuery, *, offset: int, limit: int,
            build: Callable[[Application], V]) -> list[V]:
    """``build`` of each application of the page (what ``build`` made of the same stored
    values before is reused: see Prepared.all_built)."""
    params: dict[str, Any] = {"offset": offset, "limit": limit}
    if q.who == "agency":
        params["agency"] = q.agency
    elif q.who == "applicant":
        params.update({f"applicant_{i}": m for i, m in enumerate(q.applicants)})
    elif q.who == "submitter":
        params["submitted_by"] = q.submitted_by
    for key in ("matter", "status", "overdue", "created_after", "created_before"):
        if getattr(q, key) is not None:
            params[key] = getattr(q, key)
    shape = ((q.who, len(q.applicants) if q.who == "applicant" else 0),
             *(k in params for k in ("matter", "status", "overdue", "created_after",
                                     "created_before")))
    stmt = _LISTS.get(shape)
    if stmt is None:
        stmt = _LISTS[shape] = _list_statement(shape)
    return stmt.all_built(conn, params, lambda row: build(_application_of(row)))


def _list_statement(shape: tuple[Any, ...]) -> Prepared:
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


# ------------------------------------------------------------------ statistics
def _narrowed(q: Any, agency: str | None, matter_code: str | None) -> Any:
    if agency is not None:
        q = q.where(ApplicationRow.agency == agency)
    if matter_code is not None:
        q = q.where(ApplicationRow.matter_code == matter_code)
    return q


def status_counts(s: Session, *, agency: str | None, matter_code: str | None) -> list[StatusCount]:
    """How many applications per matter, agency and status."""
    q = _narrowed(select(ApplicationRow.matter_code, ApplicationRow.agency,
                         ApplicationRow.status, sa.func.count()).group_by(
        ApplicationRow.matter_code, ApplicationRow.agency, ApplicationRow.status),
        agency, matter_code)
    return [StatusCount(m, a, st, int(n)) for m, a, st, n in s.exec(q)]


def decided(s: Session, *, agency: str | None, matter_code: str | None,
            limit: int = 100000) -> list[Application]:
    """The applications with a decision."""
    q = _narrowed(select(ApplicationRow).where(col(ApplicationRow.decided_time).is_not(None)),
                  agency, matter_code)
    return [_application(r) for r in s.exec(q.limit(limit))]
