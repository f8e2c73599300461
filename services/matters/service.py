"""Matters' use cases: the catalogue, submissions (the Temporal client side), the read
model the workflow writes, and officer actions sent to the workflow as Updates."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import hashlib
import json
import uuid
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlmodel import Session, col, select
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.common import (
    SearchAttributeKey,
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
)
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError

from govflow import audit, auth, faults, log, ratelimit, temporal_data
from govflow.db import Database, dialect_insert
from govflow.errors import (
    DomainError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unavailable,
)
from govflow.lru import Lru
from services.matters import catalogue
from services.matters import working_days as wd
from services.matters.calendars import Calendars, CalendarStore
from services.matters.store import (
    ApplicationEventRow,
    ApplicationRow,
    AuditEntryRow,
    AuditHeadRow,
    MatterVersionRow,
    SubmissionRateRow,
    TaskRow,
    utcnow,
)
from workflows import request_ids
from workflows.application import ApplicationWorkflow
from workflows.models import (
    SA_AGENCY,
    SA_APPLICANT,
    SA_DUE_PROVISIONAL,
    SA_DUE_TIME,
    SA_MATTER,
    SA_OVERDUE,
    SA_STATUS,
    ApplicantAction,
    ApplicationInput,
    BundleItem,
    ChildApplication,
    FollowUpInput,
    MaterialSpec,
    MatterSpec,
    OfficerAction,
    RuleSpec,
    StepSpec,
    TaskRecord,
    workflow_id,
)

TERMINAL = {"COMPLETED", "REJECTED", "WITHDRAWN", "FAILED", "REVOKED"}
DECIDED_STATUSES = {"APPROVED", "COMPLETED", "REJECTED", "REVOKED"}
# Tasks move only forward: OPEN -> CLAIMED -> DECIDED or CANCELLED. A write of a task
# with the status on the left applies only while the stored task has one on the right.
_TASK_MAY_BECOME = {"OPEN": ["OPEN"], "CLAIMED": ["OPEN", "CLAIMED"],
                    "DECIDED": ["OPEN", "CLAIMED"], "CANCELLED": ["OPEN", "CLAIMED"]}
# Matters' audit chain (govflow/audit.py): every decision, by rule or by an officer.
AUDIT_CHAIN = "decisions"
_ERRORS = {"PERMISSION_DENIED": PermissionDenied, "FAILED_PRECONDITION": FailedPrecondition,
           "NOT_FOUND": NotFound}


def may_see(p: auth.Principal, row: Any, has_task_of_agency: Callable[[], bool]) -> bool:
    """Whether ``p`` may read the application ``row`` (anything with ``applicant``,
    ``submitted_by`` and ``agency``): services and admins, its applicant (or the person
    acting for it) and its submitter, officials of its agency, and officials of an agency
    holding one of its tasks (``has_task_of_agency`` asks, only when it matters)."""
    if p.kind == auth.SERVICE or p.is_admin and p.kind != auth.OFFICIAL:
        return True
    if row.applicant in (p.subject, p.acting_for) or row.submitted_by == p.subject:
        return True
    if p.kind == auth.OFFICIAL:
        return bool(row.agency == p.agency or has_task_of_agency())
    return False


def same_request(row: Any, request_id: str, *, matter_code: str, applicant: str,
                 pledges: list[str]) -> None:
    """AIP-155: a request_id names one request. Sent again with that request, it gets the
    application the first made; sent with another (another matter, applicant or pledges),
    it is refused — INVALID_ARGUMENT on ``request_id`` (REQUEST_ID_REUSED), naming the
    application it was used for (the caller's own: ids are per submitter)."""
    differs = [what for what, same in (("matter", row.matter_code == matter_code),
                                       ("applicant", row.applicant == applicant),
                                       ("pledges", row.pledges == ",".join(pledges)))
               if not same]
    if differs:
        raise InvalidArgument(
            f"request_id {request_id} was already used for applications/{row.id}, a request "
            f"with another {' and '.join(differs)}; send a new request_id for a new "
            "application", fields={"request_id": "already used for a different request"},
            reason="REQUEST_ID_REUSED", metadata={"application": f"applications/{row.id}"})


# An application whose result is gone, or never came: its holder may apply again.
RESULT_GONE = ("REJECTED", "WITHDRAWN", "FAILED", "REVOKED")


def refuse_if_held(s: Session, p: auth.Principal, spec: MatterSpec, applicant: str) -> None:
    """One result per holder (``spec.one_per_holder``): refuses the submission with
    FAILED_PRECONDITION (RESULT_ALREADY_HELD) while an earlier application of
    ``applicant`` for the matter is open, or completed with its result standing. The
    earlier application is named to a caller who may see it (the applicant, one acting
    for it, its submitter); to a partner that did not submit it, only its existence."""
    earlier = s.exec(select(ApplicationRow).where(
        ApplicationRow.matter_code == spec.code, ApplicationRow.applicant == applicant,
        col(ApplicationRow.status).not_in(RESULT_GONE)).order_by(
        col(ApplicationRow.create_time)).limit(1)).first()
    if earlier is None:
        return
    shown = may_see(p, earlier, lambda: False)
    which = f"applications/{earlier.id}" if shown else "an earlier application"
    state = ("completed, and its result stands" if earlier.status == "COMPLETED"
             else f"still open ({earlier.status.lower()})")
    who = "You" if applicant == p.subject else applicant
    raise FailedPrecondition(
        f"{who} already applied for the {spec.display_name} in {which}, {state}; one "
        "is held at a time: apply again once that application is withdrawn, rejected, "
        "failed or revoked", reason="RESULT_ALREADY_HELD",
        metadata={"matter": f"matters/{spec.code}",
                  **({"application": f"applications/{earlier.id}"} if shown else {})})


def spec_from_json(text: str) -> MatterSpec:
    d = json.loads(text)
    d["materials"] = [MaterialSpec(**m) for m in d.get("materials", [])]
    d["steps"] = [StepSpec(**s) for s in d.get("steps", [])]
    d["instant_rules"] = [RuleSpec(**r) for r in d.get("instant_rules", [])]
    d["bundle"] = [BundleItem(**b) for b in d.get("bundle", [])]
    return MatterSpec(**d)


def aware(t: dt.datetime | None) -> dt.datetime | None:
    if t is None:
        return None
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


_APPLICATIONS: sa.Table = ApplicationRow.__table__  # type: ignore[attr-defined]
_EVENTS: sa.Table = ApplicationEventRow.__table__  # type: ignore[attr-defined]
# A started workflow noted on its application (resume_unstarted skips it after a restart).
_MARK_STARTED = sa.update(_APPLICATIONS).where(
    _APPLICATIONS.c.id == sa.bindparam("app_id")).values(workflow_started=True)
_EVENT_INSERTS: dict[str, Any] = {}  # by dialect name

# SQLite: a write statement takes the database's write lock until the transaction ends,
# even one that changes nothing, like this one.
_TAKE_WRITE_LOCK = sa.update(_APPLICATIONS).where(sa.false()).values(id=_APPLICATIONS.c.id)


def lock_holdings(s: Session, keys: list[str]) -> None:
    """Makes the submissions that could take the same one-per-holder results (``keys``:
    matter and applicant) take turns until their transactions end: on PostgreSQL through
    transaction-scoped advisory locks, one per key, across replicas; on SQLite through the
    database's write lock (one writer at a time; taken here, before the check, rather
    than at the insert)."""
    conn = s.connection()
    if conn.dialect.name == "postgresql":
        for key in sorted(keys):
            lock_id = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(),
                                     "big", signed=True)
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(lock_id)))
    else:
        conn.execute(_TAKE_WRITE_LOCK)


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
        values["decided_time"] = sa.func.coalesce(_APPLICATIONS.c.decided_time,
                                                  sa.bindparam("new_decided_time"))
    return sa.update(_APPLICATIONS).where(
        _APPLICATIONS.c.id == sa.bindparam("app_id")).values(**values)


class TemporalLink:
    """Connects to Temporal on first use, so the service starts even before Temporal."""

    def __init__(self, address: str, namespace: str, task_queue: str) -> None:
        self.address, self.namespace, self.task_queue = address, namespace, task_queue
        self._client: Client | None = None

    async def client(self) -> Client:
        if self._client is None:
            try:
                # Each start, Update and signal carries the served call's request id.
                self._client = await temporal_data.connect(
                    self.address, self.namespace, interceptors=[request_ids.ClientInterceptor()])
            except Exception as exc:
                raise Unavailable("the workflow engine is not reachable; retry shortly",
                                  reason="TEMPORAL_UNAVAILABLE") from exc
        return self._client


class Matters:
    def __init__(self, db: Database, temporal: TemporalLink, *, submit_rate_limit: int = 0,
                 rate_window_seconds: int = 60) -> None:
        self.db = db
        self.temporal = temporal
        # SubmitApplication calls per caller per window (0: no limit), across replicas.
        self.submit_rate_limit = submit_rate_limit
        self.rate_window_seconds = rate_window_seconds
        # Which workflow and agency a task belongs to never changes once the task exists, so
        # an officer's claim-then-decide looks the task up once (bounded; any replica may
        # hold a different subset, and a miss just reads the row).
        self.task_routes: Lru[str, tuple[str, str]] = Lru(10_000)
        self.calendars = Calendars(db, temporal)

    # ------------------------------------------------------------ catalogue
    def publish(self, s: Session, text: str,
                p: auth.Principal | None = None) -> MatterVersionRow:
        spec = catalogue.parse(text)
        fp = catalogue.fingerprint(text)
        latest = self.latest(s, spec.code, missing_ok=True)
        if p is not None and p.kind == auth.OFFICIAL and (
                spec.agency != p.agency or (latest is not None and latest.agency != p.agency)):
            # An agency's admin publishes its own agency's matters only.
            raise PermissionDenied("an agency's admin publishes its own agency's matters only",
                                   reason="OTHER_AGENCY")
        if latest is not None and latest.fingerprint == fp:
            return latest  # unchanged: publishing again makes no new version
        spec.version = (latest.version if latest else 0) + 1
        row = MatterVersionRow(code=spec.code, version=spec.version, agency=spec.agency,
                               display_name=spec.display_name, definition_yaml=text,
                               spec_json=json.dumps(dataclasses.asdict(spec), ensure_ascii=False),
                               fingerprint=fp)
        s.add(row)
        s.flush()
        return row

    def latest(self, s: Session, code: str, *, version: int = 0,
               missing_ok: bool = False) -> MatterVersionRow | None:
        q = select(MatterVersionRow).where(MatterVersionRow.code == code)
        q = q.where(MatterVersionRow.version == version) if version else q.order_by(
            col(MatterVersionRow.version).desc())
        row = s.exec(q.limit(1)).first()
        if row is None and not missing_ok:
            raise NotFound(f"matters/{code} not found", reason="MATTER_NOT_FOUND")
        return row

    def list_matters(self, s: Session, *, offset: int, limit: int, agency: str | None) -> list[MatterVersionRow]:
        newest = select(MatterVersionRow.code, sa.func.max(MatterVersionRow.version).label("v")) \
            .group_by(MatterVersionRow.code).subquery()
        q = select(MatterVersionRow).join(newest, sa.and_(
            MatterVersionRow.code == newest.c.code, MatterVersionRow.version == newest.c.v))
        if agency:
            q = q.where(MatterVersionRow.agency == agency)
        return list(s.exec(q.order_by(MatterVersionRow.code).offset(offset).limit(limit)))

    # ------------------------------------------------------------ submission
    async def submit(self, p: auth.Principal, *, matter: str, applicant: str,
                     request_id: str, pledges: list[str] | None = None) -> ApplicationRow:
        problems: dict[str, str] = {}
        if not matter.startswith("matters/"):
            problems["matter"] = "must be matters/{code}"
        if not request_id or len(request_id) > 128:
            problems["request_id"] = "required, at most 128 characters"
        if applicant and not (applicant.startswith("organisations/") or applicant.startswith("persons/")):
            problems["applicant"] = "must be persons/{id} or organisations/{id}"
        if problems:
            raise InvalidArgument(fields=problems)
        if p.kind == auth.PERSON or p.kind == auth.OFFICIAL:
            applicant = applicant or p.subject
            if applicant != p.subject and applicant != p.acting_for:
                raise PermissionDenied("you may apply only for yourself or an organisation "
                                       "your token acts for", reason="NOT_YOUR_APPLICANT")
        elif p.has_scope(auth.SCOPE_APP_SUBMIT):
            if not applicant:
                raise InvalidArgument(fields={"applicant": "required when submitting on behalf"})
        else:
            raise PermissionDenied("this caller may not submit applications",
                                   reason="MISSING_SCOPE")
        code = matter.removeprefix("matters/")
        if self.submit_rate_limit > 0:
            # In a transaction of its own, so that submissions which then fail count too.
            await self.db.write(lambda conn: ratelimit.hit(
                conn, SubmissionRateRow, f"submit:{p.subject}", limit=self.submit_rate_limit,
                window_seconds=self.rate_window_seconds, what="submissions"))

        pledges = sorted(set(pledges or []))

        def earlier_request(s: Session) -> ApplicationRow | None:
            existing = s.exec(select(ApplicationRow).where(
                ApplicationRow.submitted_by == p.subject,
                ApplicationRow.request_id == request_id)).first()
            if existing is not None:
                same_request(existing, request_id, matter_code=code, applicant=applicant,
                             pledges=pledges)
            return existing

        def insert(s: Session) -> tuple[ApplicationRow, MatterSpec]:
            existing = earlier_request(s)
            if existing is not None:
                return existing, self.input_spec(s, existing)
            mv = self.latest(s, code)
            assert mv is not None
            spec = spec_from_json(mv.spec_json)
            kind = "organisation" if applicant.startswith("organisations/") else "person"
            if spec.applicant_kind != kind:
                raise FailedPrecondition(f"{spec.display_name} is for a {spec.applicant_kind}, "
                                         f"not a {kind}", reason="WRONG_APPLICANT_KIND")
            children = [spec_from_json(self.latest(s, b.matter).spec_json)  # type: ignore[union-attr]
                        for b in spec.bundle]
            pledgeable = {m.code for c in [spec, *children] for m in c.materials if m.pledge_allowed}
            bad = [c for c in pledges if c not in pledgeable]
            if bad:
                raise InvalidArgument(fields={"pledges": f"no pledge allowed for {', '.join(bad)}; "
                                              f"allowed: {', '.join(sorted(pledgeable)) or 'none'}"})
            for child in children:
                if child.applicant_kind != kind:
                    raise FailedPrecondition(f"{child.display_name} in this life event is for a "
                                             f"{child.applicant_kind}", reason="WRONG_APPLICANT_KIND")
            held = [c for c in [spec, *children] if c.one_per_holder]
            if held:
                # Submissions that could take the same result take turns from here to the
                # commit, so two at once cannot both pass the check.
                lock_holdings(s, [f"{c.code} {applicant}" for c in held])
                existing = earlier_request(s)  # the same request may have had its turn first
                if existing is not None:
                    return existing, self.input_spec(s, existing)
                for c in held:
                    refuse_if_held(s, p, c, applicant)
            row = self.new_row(s, spec, mv.version, applicant, p.subject, request_id, pledges)
            for child in children:
                self.new_row(s, child, child.version, applicant, p.subject,
                             f"{request_id}/{child.code}", pledges, parent_id=row.id)
            s.flush()
            return row, spec

        try:
            row, spec = await self.db.run(insert)
        except sa.exc.IntegrityError:
            # A concurrent duplicate won the insert: return the one that exists.
            row, spec = await self.db.run(insert)
        if not row.workflow_started:
            faults.crash_point("matters.submit.after_insert")  # test-only; inert by default
            await self.start_workflow(row, spec)
        return row

    def new_row(self, s: Session, spec: MatterSpec, version: int, applicant: str, submitter: str,
                request_id: str, pledges: list[str], parent_id: str | None = None) -> ApplicationRow:
        row = ApplicationRow(id=uuid.uuid4().hex[:16], matter_code=spec.code,
                             matter_version=version, agency=spec.agency, applicant=applicant,
                             submitted_by=submitter, request_id=request_id,
                             pledges=",".join(pledges), parent_id=parent_id,
                             # Children are started by their life event's workflow.
                             workflow_started=parent_id is not None)
        s.add(row)
        text = f"Submitted for {spec.display_name}"
        if parent_id:
            text += f" (part of applications/{parent_id})"
        s.add(ApplicationEventRow(application_id=row.id, event_id="0000-submitted",
                                  kind="submitted", message=text, time=row.create_time,
                                  status="SUBMITTED", actor=submitter))
        return row

    def input_spec(self, s: Session, row: ApplicationRow) -> MatterSpec:
        mv = self.latest(s, row.matter_code, version=row.matter_version)
        assert mv is not None
        return spec_from_json(mv.spec_json)

    def children_of(self, s: Session, row: ApplicationRow) -> list[ChildApplication]:
        spec = self.input_spec(s, row)
        kids = {r.matter_code: r for r in s.exec(select(ApplicationRow).where(
            ApplicationRow.parent_id == row.id))}
        return [ChildApplication(application_id=kids[b.matter].id,
                                 matter=self.input_spec(s, kids[b.matter]), after=b.after)
                for b in spec.bundle]

    async def start_workflow(self, row: ApplicationRow, spec: MatterSpec) -> None:
        client = await self.temporal.client()
        children = await self.db.run(lambda s: self.children_of(s, row)) if spec.bundle else []
        submitted = aware(row.create_time)
        assert submitted is not None
        # The promised due time, counted here and handed to the workflow as input: a
        # recorded value, so a later change of the calendar never changes its replay.
        (due,) = await self.calendars.due_times(spec.calendar, [(submitted, spec.promised_limit_days)])
        inp = ApplicationInput(application_id=row.id, matter=spec, applicant=row.applicant,
                               submitted_by=row.submitted_by, request_id=row.request_id,
                               submitted_at=submitted.isoformat(),
                               pledges=[c for c in row.pledges.split(",") if c],
                               children=children, due_time=due.time.isoformat(),
                               due_provisional=due.provisional)
        try:
            await client.start_workflow(
                ApplicationWorkflow.run, inp, id=workflow_id(row.id),
                task_queue=self.temporal.task_queue,
                # A retried submit after a crash finds the workflow running: no second one.
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                search_attributes=TypedSearchAttributes([
                    SearchAttributePair(SearchAttributeKey.for_keyword(SA_MATTER), spec.code),
                    SearchAttributePair(SearchAttributeKey.for_keyword(SA_AGENCY), spec.agency),
                    SearchAttributePair(SearchAttributeKey.for_keyword(SA_APPLICANT), row.applicant),
                    SearchAttributePair(SearchAttributeKey.for_keyword(SA_STATUS), "SUBMITTED"),
                    # Every attribute from the start, so `GovflowOverdue = false` finds the
                    # applications that are not overdue.
                    SearchAttributePair(SearchAttributeKey.for_datetime(SA_DUE_TIME), due.time),
                    SearchAttributePair(SearchAttributeKey.for_bool(SA_OVERDUE), False),
                    SearchAttributePair(SearchAttributeKey.for_bool(SA_DUE_PROVISIONAL),
                                        due.provisional),
                ]),
                memo={"matter": spec.display_name, "applicant": row.applicant,
                      "matter_version": spec.version},
            )
        except RPCError as exc:
            raise Unavailable("could not start the application's workflow; retry with the "
                              "same request_id", reason="WORKFLOW_START_FAILED") from exc

        await self.db.write(lambda conn: conn.execute(_MARK_STARTED, {"app_id": row.id}))
        row.workflow_started = True

    async def resume_unstarted(self) -> int:
        """Starts workflows for applications persisted before a crash stopped their start."""
        rows = await self.db.run(lambda s: list(s.exec(select(ApplicationRow).where(
            ~col(ApplicationRow.workflow_started)).limit(1000))))
        for row in rows:
            spec = await self.db.run(lambda s, r=row: self.input_spec(s, r))
            await self.start_workflow(row, spec)
        return len(rows)

    # ------------------------------------------------------------ reading
    def can_see(self, s: Session, p: auth.Principal, row: ApplicationRow) -> bool:
        return may_see(p, row, lambda: s.exec(select(TaskRow).where(
            TaskRow.application_id == row.id, TaskRow.agency == p.agency)).first() is not None)

    def get(self, s: Session, p: auth.Principal, name: str) -> tuple[ApplicationRow, list[ApplicationEventRow]]:
        row = s.get(ApplicationRow, name.removeprefix("applications/")) \
            if name.startswith("applications/") else None
        if row is None or not self.can_see(s, p, row):
            raise NotFound(f"{name} not found", reason="APPLICATION_NOT_FOUND")
        events = list(s.exec(select(ApplicationEventRow).where(
            ApplicationEventRow.application_id == row.id).order_by(ApplicationEventRow.event_id)))
        return row, events

    # ------------------------------------------------------------ read model (worker)
    def record_event(self, conn: Connection, app_id: str, ev: dict[str, Any]) -> None:
        """Appends a timeline event and applies what it carries to the application's row.
        Core statements (three round trips, no ORM loading): the event is inserted unless
        it is there already (a retried activity then changes nothing), then the row is
        updated; an application that is not there undoes the insert (NOT_FOUND)."""
        # The statements are built once (per dialect; per set of columns updated), so a
        # call pays for executing them, not for building and keying them again.
        inserted = conn.execute(_event_insert(conn), {
            "application_id": app_id, "event_id": ev["event_id"], "kind": ev["kind"],
            "message": ev["message"], "time": ev["time"], "status": ev["status"],
            "actor": ev["actor"]})
        if inserted.rowcount == 0:
            return  # a retried activity: already recorded
        values: dict[str, Any] = {"update_time": utcnow()}
        if ev["status"]:
            values["status"] = ev["status"]
        for key in ("result_certificate", "receipt_json", "due_time", "current_steps",
                    "missing_materials", "supplement_due_time", "result_certificates",
                    "reasons", "interested"):
            if ev.get(key) is not None and ev.get(key) != "":
                values[key] = ev[key]
        if ev.get("due_time") is not None:
            values["due_provisional"] = bool(ev.get("due_provisional"))
        if ev.get("overdue"):
            values["overdue"] = True
        decided = ev["status"] in DECIDED_STATUSES
        if decided:
            values["decided_time"] = ev["time"]  # kept if the row has one: see _row_update
        params = {f"new_{k}": v for k, v in values.items()}
        params["app_id"] = app_id
        updated = conn.execute(_row_update(tuple(sorted(values)), decided), params)
        if updated.rowcount == 0:
            raise NotFound(f"applications/{app_id} not found", reason="APPLICATION_NOT_FOUND")
        if ev.get("receipt_json"):
            # A rule decided (秒批 or not): the receipt is what the decision rested on.
            receipt = json.loads(ev["receipt_json"])
            audit_decision(conn, action="rule.decided", actor=ev["actor"],
                           subject=f"applications/{app_id}", details={
                               "event": ev["event_id"], "kind": ev["kind"],
                               "outcome": receipt["outcome"],
                               "rule_version": receipt["rule_version"],
                               "inputs_json": receipt["inputs_json"],
                               "explanations": receipt["explanations"]})

    def upsert_task(self, s: Session, t: dict[str, Any]) -> TaskRow:
        """Writes the workflow's snapshot of a task. Tasks only move forward (OPEN ->
        CLAIMED -> DECIDED or CANCELLED), so a stale snapshot — an older write, say a
        claim's retried after a timeout, landing after the decision's — changes nothing.
        The check is part of the UPDATE itself: two writes racing in separate transactions
        cannot both pass it on a stale read."""
        row = s.get(TaskRow, t["name"])
        if row is None:
            row = TaskRow(**t)
            s.add(row)
            s.flush()  # a concurrent first write fails on the key; the activity retries
            if t.get("status") == "DECIDED":
                self.audit_task_decided(s, t)
            return row
        table = TaskRow.__table__  # type: ignore[attr-defined]
        status = t.get("status", "")
        wrote = s.execute(sa.update(table).where(
            table.c.name == t["name"],
            table.c.status.in_(_TASK_MAY_BECOME[status] if status in _TASK_MAY_BECOME
                               else list(_TASK_MAY_BECOME))).values(
            **{k: v for k, v in t.items() if k != "name"}, update_time=utcnow()))
        if wrote.rowcount == 1 and status == "DECIDED":  # type: ignore[attr-defined]
            # This write made the decision reach the read model (a retry finds it decided
            # and appends nothing).
            self.audit_task_decided(s, t)
        s.expire(row)
        s.refresh(row)
        return row

    @staticmethod
    def audit_task_decided(s: Session, t: dict[str, Any]) -> None:
        audit_decision(s, action="task.decided", actor=t.get("assignee", ""),
                       subject=t["name"], details={
                           "application": f"applications/{t['application_id']}",
                           "matter": t.get("matter", ""), "step": t.get("step", ""),
                           "kind": t.get("kind", "step"), "role": t.get("role", ""),
                           "agency": t.get("agency", ""), "decision": t.get("decision", ""),
                           "reasons": json.loads(t.get("reasons") or "[]"),
                           "workflow_id": t.get("workflow_id", "")})

    # ------------------------------------------------------------ officers
    def task_for(self, s: Session, p: auth.Principal, name: str) -> TaskRow:
        if p.kind != auth.OFFICIAL:
            raise PermissionDenied("only officials act on tasks", reason="OFFICIALS_ONLY")
        row = s.get(TaskRow, name) if name.startswith("tasks/") else None
        if row is None or row.agency != p.agency:
            raise NotFound(f"{name} not found", reason="TASK_NOT_FOUND")
        return row

    async def officer_update(self, p: auth.Principal, name: str, update: str,
                             decision: str = "", reasons: list[str] | None = None,
                             missing: list[str] | None = None, assignee: str = "") -> TaskRecord:
        wid, agency = self.task_routes.get(name) or (None, None)
        if wid is None or agency != p.agency or p.kind != auth.OFFICIAL:
            row = await self.db.run(lambda s: self.task_for(s, p, name))
            wid = row.workflow_id or workflow_id(row.application_id)
            self.task_routes.put(name, (wid, row.agency))
        action = OfficerAction(task=name, officer=p.subject, agency=p.agency, roles=list(p.roles),
                               decision=decision, reasons=list(reasons or []),
                               missing_materials=list(missing or []), assignee=assignee)
        # The workflow answers as soon as its state has changed (the answer is the task as
        # it now stands); its read-model writes land right after (workflows/application.py,
        # OFFICER_ANSWER_FIRST).
        return await self.update(wid, update, action, TaskRecord)  # type: ignore[no-any-return]

    async def applicant_update(self, p: auth.Principal, name: str, update: str,
                               action: ApplicantAction) -> ApplicationRow:
        row, _ = await self.db.run(lambda s: self.get(s, p, name))
        if row.submitted_by != p.subject and row.applicant not in (p.subject, p.acting_for):
            raise NotFound(f"{name} not found", reason="APPLICATION_NOT_FOUND")
        if row.parent_id:
            raise FailedPrecondition("this matter is part of a life event; act on "
                                     f"applications/{row.parent_id}", reason="PART_OF_LIFE_EVENT")
        await self.update(workflow_id(row.id), update, action, str)
        fresh, _ = await self.db.run(lambda s: self.get(s, p, name))
        return fresh

    async def update(self, wid: str, update: str, action: object, result_type: type) -> object:
        client = await self.temporal.client()
        handle = client.get_workflow_handle(wid)
        try:
            return await handle.execute_update(update, action, result_type=result_type)
        except WorkflowUpdateFailedError as exc:
            cause = exc.cause
            if isinstance(cause, ApplicationError):
                err_cls: type[DomainError] = _ERRORS.get(cause.type or "", FailedPrecondition)
                if cause.type == "INVALID_ARGUMENT":
                    field = "materials" if update == "supply_materials" else (
                        "assignee" if update == "reassign_task" else "decision")
                    raise InvalidArgument(cause.message, fields={field: cause.message}) from exc
                raise err_cls(cause.message, reason=f"{update.upper()}_{cause.type}") from exc
            raise FailedPrecondition(str(cause), reason="UPDATE_REFUSED") from exc
        except RPCError as exc:
            # The workflow may have closed while the Update was on its way (e.g. a second
            # withdrawal racing the end of the first): that is a state, not an outage.
            if await self.closed(handle):
                raise FailedPrecondition("the application is no longer open",
                                         reason="APPLICATION_CLOSED") from exc
            raise Unavailable("the workflow engine did not answer; retry",
                              reason="TEMPORAL_UNAVAILABLE") from exc

    @staticmethod
    async def closed(handle: Any) -> bool:
        try:
            desc = await handle.describe()
        except RPCError as exc:
            return "not found" in str(exc).lower()
        return desc.status is not None and desc.status.name != "RUNNING"


def audit_decision(s: Session | Connection, *, action: str, actor: str, subject: str,
                   details: dict[str, Any]) -> None:
    """Appends to matters' audit chain in the caller's transaction."""
    audit.append(s, AuditEntryRow, AuditHeadRow, chain=AUDIT_CHAIN, action=action, actor=actor,
                 subject=subject, details=details, request_id=log.request_id_var.get())


class Ratings:
    """RateApplication: once, after the end; 1 or 2 starts a supervisor follow-up."""

    def __init__(self, matters: Matters) -> None:
        self.m = matters

    async def rate(self, p: auth.Principal, name: str, score: int, comment: str) -> ApplicationRow:
        problems = {}
        if not 1 <= score <= 5:
            problems["score"] = "must be 1 to 5"
        if len(comment) > 2000:
            problems["comment"] = "at most 2000 characters"
        if problems:
            raise InvalidArgument(fields=problems)

        def work(s: Session) -> ApplicationRow:
            row, _ = self.m.get(s, p, name)
            if row.submitted_by != p.subject and row.applicant not in (p.subject, p.acting_for):
                raise NotFound(f"{name} not found", reason="APPLICATION_NOT_FOUND")
            if row.status not in TERMINAL:
                raise FailedPrecondition("rate the application once it has ended",
                                         reason="APPLICATION_NOT_ENDED")
            if row.rating:
                raise FailedPrecondition("the application is already rated",
                                         reason="ALREADY_RATED")
            row.rating, row.rating_comment = score, comment
            s.add(row)
            s.add(ApplicationEventRow(application_id=row.id, event_id="9000-rated",
                                      kind="rated", message=f"Rated {score}/5: {comment[:200]}",
                                      time=utcnow(), actor=p.subject))
            return row

        row = await self.m.db.run(work)
        if score <= 2:
            client = await self.m.temporal.client()
            # The follow-up's limit: 5 working days (a recorded input, as for applications).
            (due,) = await self.m.calendars.due_times("CN", [(utcnow(), 5)])
            from workflows.follow_up import FollowUpWorkflow

            await client.start_workflow(
                FollowUpWorkflow.run,
                FollowUpInput(application_id=row.id, matter=f"matters/{row.matter_code}",
                              agency=row.agency, score=score, comment=comment,
                              applicant=row.applicant, due_time=due.time.isoformat(),
                              due_provisional=due.provisional),
                id=f"followup-{row.id}", task_queue=self.m.temporal.task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING)
        return row


def statistics(s: Session, p: auth.Principal, f: dict[str, str]) -> list[dict[str, Any]]:
    """Counts by status, on-time rate, average working days and rating per matter/agency."""
    if p.kind == auth.OFFICIAL:
        if f.get("agency", p.agency) != p.agency:
            raise PermissionDenied("officials see their own agency's figures",
                                   reason="AGENCY_ONLY")
        f = {**f, "agency": p.agency}
    elif not (p.is_admin or p.kind == auth.SERVICE):
        raise PermissionDenied("statistics are for officials and administrators",
                               reason="OFFICIALS_ONLY")
    q = select(ApplicationRow.matter_code, ApplicationRow.agency, ApplicationRow.status,
               sa.func.count()).group_by(
        ApplicationRow.matter_code, ApplicationRow.agency, ApplicationRow.status)
    if "agency" in f:
        q = q.where(ApplicationRow.agency == f["agency"])
    if "matter" in f:
        q = q.where(ApplicationRow.matter_code == f["matter"].removeprefix("matters/"))
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for matter, agency, status, count in s.exec(q):
        item = out.setdefault((matter, agency), {"matter": f"matters/{matter}", "agency": agency,
                                                 "counts": {}, "on_time_rate": 0.0,
                                                 "average_working_days": 0.0, "decided": 0,
                                                 "average_rating": 0.0})
        item["counts"][status] = int(count)
    decided = select(ApplicationRow).where(col(ApplicationRow.decided_time).is_not(None))
    if "agency" in f:
        decided = decided.where(ApplicationRow.agency == f["agency"])
    if "matter" in f:
        decided = decided.where(ApplicationRow.matter_code == f["matter"].removeprefix("matters/"))
    sums: dict[tuple[str, str], list[float]] = {}
    rows = list(s.exec(decided.limit(100000)))
    # Counted on the mainland calendar as published (Monday to Friday where a year is not).
    years = {y for r in rows for y in (aware(r.create_time).astimezone(wd.CHINA_TZ).year,  # type: ignore[union-attr]
                                        aware(r.decided_time).astimezone(wd.CHINA_TZ).year)}  # type: ignore[union-attr]
    cal = wd.Calendar("CN", CalendarStore.years(s, "CN", years))
    for row in rows:
        acc = sums.setdefault((row.matter_code, row.agency), [0, 0, 0, 0, 0])
        acc[0] += 1
        end, due = aware(row.decided_time), aware(row.due_time)
        acc[1] += 1 if due is None or (end is not None and end <= due) else 0
        acc[2] += wd.working_days_between(aware(row.create_time), end, cal)  # type: ignore[arg-type]
        if row.rating:
            acc[3] += row.rating
            acc[4] += 1
    for key, (n, on_time, days, rating_sum, rated) in sums.items():
        item = out.get(key)
        if item is None:
            continue
        item["decided"] = int(n)
        item["on_time_rate"] = on_time / n
        item["average_working_days"] = days / n
        item["average_rating"] = rating_sum / rated if rated else 0.0
    return [out[k] for k in sorted(out)]
