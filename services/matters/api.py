"""MattersService servicer: proto in, use case, proto out."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import json
from collections.abc import Sequence
from typing import Any

from google.protobuf import timestamp_pb2

from govflow import auth, log
from govflow.errors import InvalidArgument, PermissionDenied
from govflow.matters.v1 import matters_pb2 as pb
from govflow.matters.v1 import matters_pb2_grpc
from govflow.paging import next_token, page, parse_filter
from services.matters import reads
from services.matters.calendars import PublishedYear, year_from_entries
from services.matters.service import Matters, Ratings, aware, spec_from_json, statistics
from services.matters.store import ApplicationEventRow, ApplicationRow, MatterVersionRow, TaskRow
from workflows.models import ApplicantAction, SuppliedMaterial, TaskRecord, workflow_id

PUBLIC_METHODS = {"ListMatters", "GetMatter", "GetCalendarYear", "ListCalendarYears",
                  "ComputeDueTimes"}
_KIND = {"person": pb.APPLICANT_KIND_PERSON, "organisation": pb.APPLICANT_KIND_ORGANISATION}
STATUSES = {n.removeprefix("APPLICATION_STATUS_") for n in pb.ApplicationStatus.keys()} - {"UNSPECIFIED"}
TASK_STATUSES = {n.removeprefix("TASK_STATUS_") for n in pb.TaskStatus.keys()} - {"UNSPECIFIED"}


def _ts(t: dt.datetime | None) -> timestamp_pb2.Timestamp | None:
    if t is None:
        return None
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(aware(t))  # type: ignore[arg-type]
    return ts


def matter_pb(row: MatterVersionRow) -> pb.Matter:
    spec = spec_from_json(row.spec_json)
    return pb.Matter(
        name=f"matters/{spec.code}", code=spec.code, version=row.version,
        display_name=spec.display_name, agency=spec.agency,
        applicant_kind=_KIND[spec.applicant_kind], legal_limit_days=spec.legal_limit_days,
        promised_limit_days=spec.promised_limit_days, assurance_level=spec.assurance_level,
        materials=[pb.Material(code=m.code, display_name=m.display_name,
                               certificate_types=m.certificate_types, required=m.required,
                               upload_allowed=m.upload_allowed, pledge_allowed=m.pledge_allowed)
                   for m in spec.materials],
        steps=[pb.Step(code=s.code, display_name=s.display_name, role=s.role, agencies=s.agencies,
                       quorum=s.quorum, time_limit_days=s.time_limit_days) for s in spec.steps],
        instant_approval=spec.instant_approval,
        result_certificate_type=spec.result_certificate_type,
        definition_yaml=row.definition_yaml,
        bundled_matters=[f"matters/{b.matter}" for b in spec.bundle],
        one_per_holder=spec.one_per_holder)


def _list(text: str) -> list[str]:
    return [x for x in text.split(",") if x and x != "-"]


def application_pb(row: ApplicationRow | Any, events: Sequence[ApplicationEventRow | Any] = (),
                   children: Sequence[str] = ()) -> pb.Application:
    """The Application message of ``row`` (an ORM object or a Core row of its columns),
    with its timeline and children when given."""
    app = pb.Application(
        name=f"applications/{row.id}", matter=f"matters/{row.matter_code}",
        matter_version=row.matter_version, applicant=row.applicant, submitted_by=row.submitted_by,
        status=pb.ApplicationStatus.Value(f"APPLICATION_STATUS_{row.status}"),
        overdue=row.overdue, result_certificate=row.result_certificate,
        workflow_id=workflow_id(row.id), agency=row.agency,
        current_steps=_list(row.current_steps), missing_materials=_list(row.missing_materials),
        rating=row.rating, parent=f"applications/{row.parent_id}" if row.parent_id else "",
        children=[f"applications/{c}" for c in children],
        result_certificates=_list(row.result_certificates), pledges=_list(row.pledges),
        due_time_provisional=bool(row.due_provisional),
        reasons=json.loads(row.reasons) if row.reasons else [])
    for field, value in (("create_time", row.create_time), ("update_time", row.update_time),
                         ("due_time", row.due_time),
                         ("supplement_due_time", row.supplement_due_time)):
        ts = _ts(value)
        if ts is not None:
            getattr(app, field).CopyFrom(ts)
    if row.receipt_json:
        r = json.loads(row.receipt_json)
        app.decision_receipt.CopyFrom(pb.DecisionReceipt(
            rule_version=r["rule_version"], inputs_json=r["inputs_json"], outcome=r["outcome"],
            explanations=r["explanations"]))
    for e in events:
        app.timeline.append(pb.TimelineEvent(
            event_id=e.event_id, kind=e.kind, message=e.message, actor=e.actor,
            time=_ts(e.time),
            status=pb.ApplicationStatus.Value(f"APPLICATION_STATUS_{e.status}") if e.status else 0))
    return app


def task_pb(row: TaskRow | Any) -> pb.Task:
    """The Task message of ``row`` (an ORM object or a Core row of its columns)."""
    if isinstance(row, tuple):
        # A Core row is its values: an inbox page read again is mostly the same rows, and
        # copying the message built from the same values is cheaper than building it.
        out = pb.Task()
        out.CopyFrom(_task_message(row))
        return out
    return build_task(row)


@functools.lru_cache(maxsize=8192)
def _task_message(row: tuple[Any, ...]) -> pb.Task:
    return build_task(row)


def build_task(row: TaskRow | Any) -> pb.Task:
    t = pb.Task(name=row.name, application=f"applications/{row.application_id}", step=row.step,
                display_name=row.display_name, role=row.role, agency=row.agency,
                status=pb.TaskStatus.Value(f"TASK_STATUS_{row.status}"), assignee=row.assignee,
                overdue=row.overdue, matter=row.matter, kind=row.kind,
                reasons=json.loads(row.reasons) if row.reasons else [],
                due_time_provisional=bool(row.due_provisional),
                decision=pb.Decision.Value(f"DECISION_{row.decision}") if row.decision else 0)
    for field, value in (("due_time", row.due_time), ("create_time", row.create_time)):
        ts = _ts(value)
        if ts is not None:
            getattr(t, field).CopyFrom(ts)
    return t


def record_pb(t: TaskRecord) -> pb.Task:
    task = pb.Task(name=t.name, application=f"applications/{t.application_id}", step=t.step,
                   display_name=t.display_name, role=t.role, agency=t.agency,
                   status=pb.TaskStatus.Value(f"TASK_STATUS_{t.status}"), assignee=t.assignee,
                   overdue=t.overdue, matter=t.matter, kind=t.kind, reasons=t.reasons,
                   due_time_provisional=t.due_provisional,
                   decision=pb.Decision.Value(f"DECISION_{t.decision}") if t.decision else 0)
    if t.due_time:
        task.due_time.FromDatetime(dt.datetime.fromisoformat(t.due_time))
    return task


def calendar_year_pb(y: PublishedYear, *, days: bool = True) -> pb.CalendarYear:
    out = pb.CalendarYear(
        name=f"calendars/{y.days.region}/years/{y.days.year}", region=y.days.region,
        year=y.days.year, source=y.days.source, published_by=y.published_by,
        revision=y.revision, publish_time=_ts(y.publish_time))
    if days:
        out.holidays.extend(pb.CalendarDay(date=d.isoformat(), name=n)
                            for d, n in sorted(y.days.holidays.items()))
        out.working_days.extend(pb.CalendarDay(date=d.isoformat(), name=n)
                                for d, n in sorted(y.days.working_days.items()))
    return out


def _status_filter(f: dict[str, str], allowed: set[str]) -> None:
    if "status" in f and f["status"].upper() not in allowed:
        raise InvalidArgument(fields={"filter": f"status must be one of {', '.join(sorted(allowed))}"})
    if "overdue" in f and f["overdue"].lower() not in ("true", "false"):
        raise InvalidArgument(fields={"filter": "overdue must be true or false"})


def get_application_response(data: reads.ApplicationData) -> pb.GetApplicationResponse:
    return pb.GetApplicationResponse(
        application=application_pb(data.row, data.events, data.children))


class MattersApi(matters_pb2_grpc.MattersServiceServicer):
    def __init__(self, matters: Matters) -> None:
        self.m = matters
        self.db = matters.db
        self.applications = reads.ApplicationReader(self.db, get_application_response)
        # Inbox pages' responses by filter and caller's roles, each with its agency's inbox
        # version.
        self.inbox_pages: reads.VersionedCache[pb.ListTasksResponse] = reads.VersionedCache(4096)

    async def ListMatters(self, request: pb.ListMattersRequest, context: object) -> pb.ListMattersResponse:
        f = parse_filter(request.filter, {"agency"})
        offset, limit = page(request.page_size, request.page_token)
        rows = await self.db.run(lambda s: self.m.list_matters(
            s, offset=offset, limit=limit, agency=f.get("agency")))
        return pb.ListMattersResponse(matters=[matter_pb(r) for r in rows],
                                      next_page_token=next_token(offset, limit, len(rows)))

    async def GetMatter(self, request: pb.GetMatterRequest, context: object) -> pb.GetMatterResponse:
        if not request.name.startswith("matters/"):
            raise InvalidArgument(fields={"name": "must be matters/{code}"})
        if request.version < 0:
            raise InvalidArgument(fields={"version": "must not be negative"})
        row = await self.db.run(lambda s: self.m.latest(
            s, request.name.removeprefix("matters/"), version=request.version))
        return pb.GetMatterResponse(matter=matter_pb(row))  # type: ignore[arg-type]

    async def PublishMatter(self, request: pb.PublishMatterRequest, context: object) -> pb.PublishMatterResponse:
        p = auth.principal()
        if not p.is_admin:
            raise PermissionDenied("only administrators publish matters", reason="ADMIN_ONLY")
        row = await self.db.run(lambda s: self.m.publish(s, request.definition_yaml, p))
        return pb.PublishMatterResponse(matter=matter_pb(row))

    async def PublishCalendarYear(self, request: pb.PublishCalendarYearRequest, context: object) -> pb.PublishCalendarYearResponse:
        """Publishes a region's year (platform administrators); see the proto."""
        p = auth.principal()
        if not p.is_admin or p.kind == auth.OFFICIAL:
            raise PermissionDenied("only platform administrators publish calendars",
                                   reason="PLATFORM_ADMIN_ONLY")
        c = request.calendar_year
        days = year_from_entries(
            c.region, c.year,
            [{"date": d.date, "name": d.name} for d in c.holidays],
            [{"date": d.date, "name": d.name} for d in c.working_days],
            c.source, prefix="calendar_year.")
        stored, asked = await self.m.calendars.publish(p, days, validate_only=request.validate_only)
        return pb.PublishCalendarYearResponse(calendar_year=calendar_year_pb(stored),
                                              applications_recomputed=asked)

    async def GetCalendarYear(self, request: pb.GetCalendarYearRequest, context: object) -> pb.GetCalendarYearResponse:
        return pb.GetCalendarYearResponse(
            calendar_year=calendar_year_pb(await self.m.calendars.get(request.name)))

    async def ListCalendarYears(self, request: pb.ListCalendarYearsRequest, context: object) -> pb.ListCalendarYearsResponse:
        offset, limit = page(request.page_size, request.page_token)
        years = await self.m.calendars.listing(request.parent, offset=offset, limit=limit)
        return pb.ListCalendarYearsResponse(
            calendar_years=[calendar_year_pb(y, days=False) for y in years],
            next_page_token=next_token(offset, limit, len(years)))

    async def ComputeDueTimes(self, request: pb.ComputeDueTimesRequest, context: object) -> pb.ComputeDueTimesResponse:
        problems: dict[str, str] = {}
        if not 1 <= len(request.queries) <= 50:
            problems["queries"] = "give 1 to 50 queries"
        for i, q in enumerate(request.queries):
            if not q.HasField("start_time"):
                problems[f"queries[{i}].start_time"] = "required"
            if not 0 <= q.working_days <= 3660:
                problems[f"queries[{i}].working_days"] = "must be 0 to 3660"
        if problems:
            raise InvalidArgument(fields=problems)
        dues = await self.m.calendars.due_times(request.region, [
            (q.start_time.ToDatetime(tzinfo=dt.UTC), q.working_days) for q in request.queries])
        return pb.ComputeDueTimesResponse(answers=[
            pb.DueTimeAnswer(due_time=_ts(d.time), provisional=d.provisional,
                             missing_years=list(d.missing_years)) for d in dues])

    async def SubmitApplication(self, request: pb.SubmitApplicationRequest, context: object) -> pb.SubmitApplicationResponse:
        row = await self.m.submit(auth.principal(), matter=request.matter,
                                  applicant=request.applicant, request_id=request.request_id,
                                  pledges=list(request.pledges))
        log.note_call(application=f"applications/{row.id}")
        return pb.SubmitApplicationResponse(application=application_pb(row))

    async def GetApplication(self, request: pb.GetApplicationRequest, context: object) -> pb.GetApplicationResponse:
        """One application with its timeline and children; NOT_FOUND unless the caller may
        see it. The response may come from the version-checked cache (reads.py)."""
        return await self.applications.get(auth.principal(), request.name)

    async def WithdrawApplication(self, request: pb.WithdrawApplicationRequest, context: object) -> pb.WithdrawApplicationResponse:
        p = auth.principal()
        if len(request.reason) > 1000:
            raise InvalidArgument(fields={"reason": "at most 1000 characters"})
        row = await self.m.applicant_update(p, request.name, "withdraw", ApplicantAction(
            caller=p.subject, acting_for=p.acting_for, reason=request.reason))
        return pb.WithdrawApplicationResponse(application=application_pb(row))

    async def SupplyMaterials(self, request: pb.SupplyMaterialsRequest, context: object) -> pb.SupplyMaterialsResponse:
        p = auth.principal()
        problems = {}
        if not request.materials:
            problems["materials"] = "supply at least one material"
        for i, m in enumerate(request.materials):
            if not m.code:
                problems[f"materials[{i}].code"] = "required"
            if bool(m.certificate) == bool(m.upload_uri):
                problems[f"materials[{i}]"] = "give exactly one of certificate or upload_uri"
            if m.certificate and not m.certificate.startswith("certificates/"):
                problems[f"materials[{i}].certificate"] = "must be certificates/{id}"
            if m.upload_sha256 and (len(m.upload_sha256) != 64 or any(
                    c not in "0123456789abcdef" for c in m.upload_sha256.lower())):
                problems[f"materials[{i}].upload_sha256"] = "must be 64 hex characters"
        if problems:
            raise InvalidArgument(fields=problems)
        row = await self.m.applicant_update(p, request.name, "supply_materials", ApplicantAction(
            caller=p.subject, acting_for=p.acting_for, materials=[
                SuppliedMaterial(code=m.code, certificate=m.certificate, upload_uri=m.upload_uri,
                                 upload_sha256=m.upload_sha256) for m in request.materials]))
        return pb.SupplyMaterialsResponse(application=application_pb(row))

    async def RateApplication(self, request: pb.RateApplicationRequest, context: object) -> pb.RateApplicationResponse:
        row = await Ratings(self.m).rate(auth.principal(), request.name, request.score,
                                         request.comment)
        return pb.RateApplicationResponse(application=application_pb(row))

    async def ReassignTask(self, request: pb.ReassignTaskRequest, context: object) -> pb.ReassignTaskResponse:
        if not request.assignee.startswith("persons/"):
            raise InvalidArgument(fields={"assignee": "must be persons/{id}"})
        t = await self.m.officer_update(auth.principal(), request.name, "reassign_task",
                                        assignee=request.assignee)
        return pb.ReassignTaskResponse(task=record_pb(t))

    async def GetStatistics(self, request: pb.GetStatisticsRequest, context: object) -> pb.GetStatisticsResponse:
        p = auth.principal()
        f = parse_filter(request.filter, {"agency", "matter"})
        items = await self.db.run(lambda s: statistics(s, p, f))
        return pb.GetStatisticsResponse(matters=[pb.MatterStatistics(**i) for i in items])

    async def ListApplications(self, request: pb.ListApplicationsRequest, context: object) -> pb.ListApplicationsResponse:
        p = auth.principal()
        f = parse_filter(request.filter, {"matter", "status", "overdue", "created_after",
                                          "created_before"})
        _status_filter(f, STATUSES)
        offset, limit = page(request.page_size, request.page_token)
        apps = await self.db.read(reads.list_applications(p, f, offset=offset, limit=limit,
                                                          build=application_pb))
        return pb.ListApplicationsResponse(applications=apps,
                                           next_page_token=next_token(offset, limit, len(apps)))

    async def ListTasks(self, request: pb.ListTasksRequest, context: object) -> pb.ListTasksResponse:
        p = auth.principal()
        f = parse_filter(request.filter, {"status", "overdue", "due_before", "due_soon",
                                          "assignee"})
        _status_filter(f, TASK_STATUSES)
        offset, limit = page(request.page_size, request.page_token)
        # The response of a page is shared with later reads of it (never changed after).
        return await self.db.read(reads.list_tasks(
            p, f, offset=offset, limit=limit, build=build_task, cache=self.inbox_pages,
            respond=lambda tasks: pb.ListTasksResponse(
                tasks=tasks, next_page_token=next_token(offset, limit, len(tasks)))))

    async def ClaimTask(self, request: pb.ClaimTaskRequest, context: object) -> pb.ClaimTaskResponse:
        t = await self.m.officer_update(auth.principal(), request.name, "claim_task")
        return pb.ClaimTaskResponse(task=record_pb(t))

    async def DecideTask(self, request: pb.DecideTaskRequest, context: object) -> pb.DecideTaskResponse:
        if request.decision == pb.DECISION_UNSPECIFIED:
            raise InvalidArgument(fields={"decision": "required"})
        decision = pb.Decision.Name(request.decision).removeprefix("DECISION_")
        t = await self.m.officer_update(auth.principal(), request.name, "decide_task",
                                        decision=decision, reasons=list(request.reasons),
                                        missing=list(request.missing_materials))
        return pb.DecideTaskResponse(task=record_pb(t))

    async def RecordApplicationEvent(self, request: pb.RecordApplicationEventRequest, context: object) -> pb.RecordApplicationEventResponse:
        auth.principal().require_scope(auth.SCOPE_APP_RECORD)
        e = request.event
        if not request.application.startswith("applications/") or not e.event_id:
            raise InvalidArgument(fields={"application": "required", "event.event_id": "required"})
        ev = {
            "event_id": e.event_id, "kind": e.kind, "message": e.message,
            "time": e.time.ToDatetime(tzinfo=dt.UTC), "actor": e.actor or "system",
            "status": pb.ApplicationStatus.Name(e.status).removeprefix("APPLICATION_STATUS_")
            if e.status else "",
            "result_certificate": request.result_certificate or None,
            "overdue": request.overdue,
            "due_time": request.due_time.ToDatetime(tzinfo=dt.UTC) if request.HasField("due_time") else None,
            "due_provisional": request.due_time_provisional,
            "reasons": json.dumps(list(request.reasons), ensure_ascii=False)
            if request.reasons else None,
            "interested": "," + ",".join(request.interested) + ","
            if request.interested else None,
            "current_steps": ",".join(request.current_steps) if request.current_steps else None,
            "missing_materials": ",".join(request.missing_materials)
            if request.missing_materials else None,
            "result_certificates": ",".join(request.result_certificates)
            if request.result_certificates else None,
            "supplement_due_time": request.supplement_due_time.ToDatetime(tzinfo=dt.UTC)
            if request.HasField("supplement_due_time") else None,
            "receipt_json": json.dumps({
                "rule_version": request.decision_receipt.rule_version,
                "inputs_json": request.decision_receipt.inputs_json,
                "outcome": request.decision_receipt.outcome,
                "explanations": list(request.decision_receipt.explanations),
            }) if request.HasField("decision_receipt") else None,
        }
        # A Core transaction (Database.write): record_event is Core statements only.
        await self.db.write(lambda conn: self.m.record_event(
            conn, request.application.removeprefix("applications/"), ev))
        return pb.RecordApplicationEventResponse()

    async def UpsertTask(self, request: pb.UpsertTaskRequest, context: object) -> pb.UpsertTaskResponse:
        auth.principal().require_scope(auth.SCOPE_APP_RECORD)
        t = request.task
        if not t.name.startswith("tasks/"):
            raise InvalidArgument(fields={"task.name": "must be tasks/{id}"})
        fields = {
            "name": t.name, "application_id": t.application.removeprefix("applications/"),
            "matter": t.matter, "step": t.step, "display_name": t.display_name, "role": t.role,
            "agency": t.agency, "status": pb.TaskStatus.Name(t.status).removeprefix("TASK_STATUS_"),
            "assignee": t.assignee, "overdue": t.overdue,
            "decision": pb.Decision.Name(t.decision).removeprefix("DECISION_") if t.decision else "",
            "due_time": t.due_time.ToDatetime(tzinfo=dt.UTC) if t.HasField("due_time") else None,
            "kind": t.kind or "step", "reasons": json.dumps(list(t.reasons)),
            "workflow_id": request.workflow_id, "due_provisional": t.due_time_provisional,
        }
        if t.HasField("create_time"):
            fields["create_time"] = t.create_time.ToDatetime(tzinfo=dt.UTC)
        row = await self.db.run(lambda s: self.m.upsert_task(s, fields))
        return pb.UpsertTaskResponse(task=task_pb(row))


__all__ = ["MattersApi", "PUBLIC_METHODS", "dataclasses"]
