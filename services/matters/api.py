"""MattersService servicer: proto in, use case, proto out."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from typing import cast

import grpc

from govflow import auth, log
from govflow.errors import InvalidArgument, PermissionDenied
from govflow.matters.v1 import matters_pb2 as pb
from govflow.matters.v1 import matters_pb2_grpc
from govflow.paging import next_token, page, parse_filter
from services.matters import publishing, read_model, reads
from services.matters.calendars import year_from_entries
from services.matters.delegations import acts_under_delegation, bearer_token
from services.matters.domain.applications import Progress, Task
from services.matters.domain.catalogue_search import parse_query
from services.matters.messages import (
    build_application,
    build_calendar_year,
    build_matter,
    build_statistics,
    build_task,
    get_application_response,
    timestamp,
)
from services.matters.service import Matters
from workflows.models import ApplicantAction, SuppliedMaterial

PUBLIC_METHODS = {"ListMatters", "GetMatter", "GetCalendarYear", "ListCalendarYears",
                  "ComputeDueTimes"}
STATUSES = {n.removeprefix("APPLICATION_STATUS_")
            for n in pb.ApplicationStatus.keys()} - {"UNSPECIFIED"}  # noqa: SIM118 (an enum wrapper)
TASK_STATUSES = {n.removeprefix("TASK_STATUS_")
                 for n in pb.TaskStatus.keys()} - {"UNSPECIFIED"}  # noqa: SIM118 (an enum wrapper)


def _token(context: object) -> str:
    """The caller's bearer token, for a partner's delegation check at identity."""
    return bearer_token(cast("grpc.aio.ServicerContext[object, object]",
                             context).invocation_metadata())


def _status_filter(f: dict[str, str], allowed: set[str]) -> None:
    if "status" in f and f["status"].upper() not in allowed:
        raise InvalidArgument(fields={"filter": f"status must be one of {', '.join(sorted(allowed))}"})
    if "overdue" in f and f["overdue"].lower() not in ("true", "false"):
        raise InvalidArgument(fields={"filter": "overdue must be true or false"})


class MattersApi(matters_pb2_grpc.MattersServiceServicer):
    def __init__(self, matters: Matters) -> None:
        self.m = matters
        self.db = matters.db
        self.applications: reads.ApplicationReader[pb.GetApplicationResponse] = \
            reads.ApplicationReader(self.db, get_application_response,
                                    cache=matters.caches.applications)

    async def ListMatters(self, request: pb.ListMattersRequest, context: object) -> pb.ListMattersResponse:
        """Each matter's latest version, by code, that the filter selects; see the proto."""
        query = parse_query(request.filter)
        offset, limit = page(request.page_size, request.page_token)
        rows, more = await self.m.catalogue.search(query, offset=offset, limit=limit)
        built = self.m.caches.matter_messages
        out = []
        for mv in rows:
            msg = built.get((mv.code, mv.version))
            if msg is None:
                msg = build_matter(mv)
                built.put((mv.code, mv.version), msg)
            out.append(msg)
        return pb.ListMattersResponse(
            matters=out, next_page_token=next_token(offset, limit, len(rows)) if more else "")

    async def GetMatter(self, request: pb.GetMatterRequest, context: object) -> pb.GetMatterResponse:
        if not request.name.startswith("matters/"):
            raise InvalidArgument(fields={"name": "must be matters/{code}"})
        if request.version < 0:
            raise InvalidArgument(fields={"version": "must not be negative"})
        mv = await self.db.run(lambda s: publishing.get(
            s, request.name.removeprefix("matters/"), version=request.version))
        return pb.GetMatterResponse(matter=build_matter(mv))

    async def PublishMatter(self, request: pb.PublishMatterRequest, context: object) -> pb.PublishMatterResponse:
        p = auth.principal()
        if not p.is_admin:
            raise PermissionDenied("only administrators publish matters", reason="ADMIN_ONLY")
        mv = await self.db.run(lambda s: publishing.publish(s, request.definition_yaml, p))
        return pb.PublishMatterResponse(matter=build_matter(mv))

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
        return pb.PublishCalendarYearResponse(calendar_year=build_calendar_year(stored),
                                              applications_recomputed=asked)

    async def GetCalendarYear(self, request: pb.GetCalendarYearRequest, context: object) -> pb.GetCalendarYearResponse:
        return pb.GetCalendarYearResponse(
            calendar_year=build_calendar_year(await self.m.calendars.get(request.name)))

    async def ListCalendarYears(self, request: pb.ListCalendarYearsRequest, context: object) -> pb.ListCalendarYearsResponse:
        offset, limit = page(request.page_size, request.page_token)
        years = await self.m.calendars.listing(request.parent, offset=offset, limit=limit)
        return pb.ListCalendarYearsResponse(
            calendar_years=[build_calendar_year(y, days=False) for y in years],
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
            pb.DueTimeAnswer(due_time=timestamp(d.time), provisional=d.provisional,
                             missing_years=list(d.missing_years)) for d in dues])

    async def SubmitApplication(self, request: pb.SubmitApplicationRequest, context: object) -> pb.SubmitApplicationResponse:
        app = await self.m.submissions.submit(
            auth.principal(), matter=request.matter, applicant=request.applicant,
            request_id=request.request_id, pledges=list(request.pledges),
            token=_token(context))
        log.note_call(application=f"applications/{app.id}")
        return pb.SubmitApplicationResponse(application=build_application(app))

    async def GetApplication(self, request: pb.GetApplicationRequest, context: object) -> pb.GetApplicationResponse:
        """One application with its timeline and children; NOT_FOUND unless the caller may
        see it. The response may come from the version-checked cache (reads.py). A partner
        reads only under the applicant's live delegation (recorded at identity)."""
        p = auth.principal()
        response = await self.applications.get(p, request.name)
        if acts_under_delegation(p):
            a = response.application
            await self.m.delegations.use(
                _token(context), applicant=a.applicant,
                matter_code=a.matter.removeprefix("matters/"), action="GetApplication",
                target=a.name)
        return response

    async def WithdrawApplication(self, request: pb.WithdrawApplicationRequest, context: object) -> pb.WithdrawApplicationResponse:
        p = auth.principal()
        if len(request.reason) > 1000:
            raise InvalidArgument(fields={"reason": "at most 1000 characters"})
        app = await self.m.applicants.act(p, request.name, "withdraw", ApplicantAction(
            caller=p.subject, acting_for=p.acting_for, reason=request.reason),
            token=_token(context), rpc="WithdrawApplication")
        return pb.WithdrawApplicationResponse(application=build_application(app))

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
        app = await self.m.applicants.act(p, request.name, "supply_materials", ApplicantAction(
            caller=p.subject, acting_for=p.acting_for, materials=[
                SuppliedMaterial(code=m.code, certificate=m.certificate, upload_uri=m.upload_uri,
                                 upload_sha256=m.upload_sha256) for m in request.materials]),
            token=_token(context), rpc="SupplyMaterials")
        return pb.SupplyMaterialsResponse(application=build_application(app))

    async def RateApplication(self, request: pb.RateApplicationRequest, context: object) -> pb.RateApplicationResponse:
        app = await self.m.applicants.rate(auth.principal(), request.name, request.score,
                                           request.comment, token=_token(context))
        return pb.RateApplicationResponse(application=build_application(app))

    async def ReassignTask(self, request: pb.ReassignTaskRequest, context: object) -> pb.ReassignTaskResponse:
        if not request.assignee.startswith("persons/"):
            raise InvalidArgument(fields={"assignee": "must be persons/{id}"})
        t = await self.m.officers.act(auth.principal(), request.name, "reassign_task",
                                      assignee=request.assignee)
        return pb.ReassignTaskResponse(task=build_task(t))

    async def GetStatistics(self, request: pb.GetStatisticsRequest, context: object) -> pb.GetStatisticsResponse:
        p = auth.principal()
        f = parse_filter(request.filter, {"agency", "matter"})
        items = await self.db.run(lambda s: read_model.figures(s, p, f))
        return pb.GetStatisticsResponse(matters=[build_statistics(i) for i in items])

    async def ListApplications(self, request: pb.ListApplicationsRequest, context: object) -> pb.ListApplicationsResponse:
        p = auth.principal()
        f = parse_filter(request.filter, {"matter", "status", "overdue", "created_after",
                                          "created_before"})
        _status_filter(f, STATUSES)
        offset, limit = page(request.page_size, request.page_token)
        apps = await self.db.read(reads.list_applications(p, f, offset=offset, limit=limit,
                                                          build=build_application))
        token = next_token(offset, limit, len(apps))
        if acts_under_delegation(p):
            apps = await self._delegated(apps, _token(context))
        return pb.ListApplicationsResponse(applications=apps, next_page_token=token)

    async def _delegated(self, apps: list[pb.Application], token: str) -> list[pb.Application]:
        """A partner's list: only the applications whose applicant's delegation to it is
        live now (each one listed is a use, in that applicant's access records). The page
        may come back shorter than asked; its token still goes on from the page read."""
        async def allowed(a: pb.Application) -> bool:
            try:
                await self.m.delegations.use(
                    token, applicant=a.applicant, matter_code=a.matter.removeprefix("matters/"),
                    action="ListApplications", target=a.name)
            except PermissionDenied:
                return False
            return True

        keep = await asyncio.gather(*(allowed(a) for a in apps))
        return [a for a, ok in zip(apps, keep, strict=True) if ok]

    async def ListTasks(self, request: pb.ListTasksRequest, context: object) -> pb.ListTasksResponse:
        p = auth.principal()
        f = parse_filter(request.filter, {"status", "overdue", "due_before", "due_soon",
                                          "assignee"})
        _status_filter(f, TASK_STATUSES)
        offset, limit = page(request.page_size, request.page_token)
        # The response of a page is shared with later reads of it (never changed after).
        return await self.db.read(reads.list_tasks(
            p, f, offset=offset, limit=limit, build=build_task, cache=self.m.caches.inbox_pages,
            respond=lambda tasks: pb.ListTasksResponse(
                tasks=tasks, next_page_token=next_token(offset, limit, len(tasks)))))

    async def ClaimTask(self, request: pb.ClaimTaskRequest, context: object) -> pb.ClaimTaskResponse:
        t = await self.m.officers.act(auth.principal(), request.name, "claim_task")
        return pb.ClaimTaskResponse(task=build_task(t))

    async def DecideTask(self, request: pb.DecideTaskRequest, context: object) -> pb.DecideTaskResponse:
        if request.decision == pb.DECISION_UNSPECIFIED:
            raise InvalidArgument(fields={"decision": "required"})
        decision = pb.Decision.Name(request.decision).removeprefix("DECISION_")
        t = await self.m.officers.act(auth.principal(), request.name, "decide_task",
                                      decision=decision, reasons=list(request.reasons),
                                      missing=list(request.missing_materials))
        return pb.DecideTaskResponse(task=build_task(t))

    async def RecordApplicationEvent(self, request: pb.RecordApplicationEventRequest, context: object) -> pb.RecordApplicationEventResponse:
        auth.principal().require_scope(auth.SCOPE_APP_RECORD)
        await read_model.record_event(self.db, *_progress(request))
        return pb.RecordApplicationEventResponse()

    async def RecordApplicationEvents(self, request: pb.RecordApplicationEventsRequest, context: object) -> pb.RecordApplicationEventsResponse:
        auth.principal().require_scope(auth.SCOPE_APP_RECORD)
        if not 1 <= len(request.events) <= MAX_EVENTS_PER_BATCH:
            raise InvalidArgument(fields={"events": f"1 to {MAX_EVENTS_PER_BATCH} events"})
        events = [_progress(r, f"events[{i}].") for i, r in enumerate(request.events)]
        await read_model.record_events(self.db, events)
        return pb.RecordApplicationEventsResponse()

    async def UpsertTask(self, request: pb.UpsertTaskRequest, context: object) -> pb.UpsertTaskResponse:
        auth.principal().require_scope(auth.SCOPE_APP_RECORD)
        t = request.task
        if not t.name.startswith("tasks/"):
            raise InvalidArgument(fields={"task.name": "must be tasks/{id}"})
        task = await read_model.upsert_task(self.db, Task(
            name=t.name, application_id=t.application.removeprefix("applications/"),
            matter=t.matter, step=t.step, display_name=t.display_name, role=t.role,
            agency=t.agency, status=pb.TaskStatus.Name(t.status).removeprefix("TASK_STATUS_"),
            assignee=t.assignee, overdue=t.overdue,
            decision=pb.Decision.Name(t.decision).removeprefix("DECISION_") if t.decision else "",
            due_time=t.due_time.ToDatetime(tzinfo=dt.UTC) if t.HasField("due_time") else None,
            # None: a new task's is now, a known one's stays.
            create_time=t.create_time.ToDatetime(tzinfo=dt.UTC)
            if t.HasField("create_time") else None,
            update_time=None, kind=t.kind or "step", reasons=json.dumps(list(t.reasons)),
            workflow_id=request.workflow_id, due_provisional=t.due_time_provisional))
        return pb.UpsertTaskResponse(task=build_task(task))


__all__ = ["PUBLIC_METHODS", "MattersApi", "build_task", "get_application_response"]


# The most events one RecordApplicationEvents call records.
MAX_EVENTS_PER_BATCH = 100


def _progress(request: pb.RecordApplicationEventRequest, prefix: str = "") -> tuple[str, Progress]:
    """The application id and the Progress a RecordApplicationEventRequest carries (field
    names in errors start with ``prefix``)."""
    e = request.event
    problems = {}
    if not request.application.startswith("applications/"):
        problems[f"{prefix}application"] = "must be applications/{id}"
    if not e.event_id:
        problems[f"{prefix}event.event_id"] = "required"
    if problems:
        raise InvalidArgument(fields=problems)
    ev = Progress(
        event_id=e.event_id, kind=e.kind, message=e.message, message_en=e.message_en,
        time=e.time.ToDatetime(tzinfo=dt.UTC), actor=e.actor or "system",
        status=pb.ApplicationStatus.Name(e.status).removeprefix("APPLICATION_STATUS_")
        if e.status else "",
        result_certificate=request.result_certificate or None,
        overdue=request.overdue,
        due_time=request.due_time.ToDatetime(tzinfo=dt.UTC)
        if request.HasField("due_time") else None,
        due_provisional=request.due_time_provisional,
        reasons=json.dumps(list(request.reasons), ensure_ascii=False)
        if request.reasons else None,
        interested="," + ",".join(request.interested) + ","
        if request.interested else None,
        current_steps=",".join(request.current_steps) if request.current_steps else None,
        missing_materials=",".join(request.missing_materials)
        if request.missing_materials else None,
        result_certificates=",".join(request.result_certificates)
        if request.result_certificates else None,
        supplement_due_time=request.supplement_due_time.ToDatetime(tzinfo=dt.UTC)
        if request.HasField("supplement_due_time") else None,
        receipt_json=json.dumps({
            "rule_version": request.decision_receipt.rule_version,
            "inputs_json": request.decision_receipt.inputs_json,
            "outcome": request.decision_receipt.outcome,
            "explanations": list(request.decision_receipt.explanations),
        }) if request.HasField("decision_receipt") else None)
    return request.application.removeprefix("applications/"), ev
