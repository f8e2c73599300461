"""The one builder of each matters message from the domain's values (proto out)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence

from google.protobuf import timestamp_pb2

from govflow.matters.v1 import matters_pb2 as pb
from services.matters.calendars import PublishedYear
from services.matters.domain.applications import (
    Application,
    ApplicationData,
    MatterVersion,
    Task,
    TimelineEvent,
    aware,
    split_list,
)
from services.matters.domain.definition import english_names
from services.matters.domain.statistics import MatterStatistics
from workflows.models import workflow_id

_KIND = {"person": pb.APPLICANT_KIND_PERSON, "organisation": pb.APPLICANT_KIND_ORGANISATION}
# The stored names (SUBMITTED, OPEN, APPROVE, ...) and their enum values.
_APPLICATION_STATUS: dict[str, pb.ApplicationStatus] = {
    n.removeprefix("APPLICATION_STATUS_"): getattr(pb, n) for n in pb.ApplicationStatus.keys()}  # noqa: SIM118
_TASK_STATUS: dict[str, pb.TaskStatus] = {
    n.removeprefix("TASK_STATUS_"): getattr(pb, n) for n in pb.TaskStatus.keys()}  # noqa: SIM118
_DECISION: dict[str, pb.Decision] = {
    n.removeprefix("DECISION_"): getattr(pb, n) for n in pb.Decision.keys()}  # noqa: SIM118


def timestamp(t: dt.datetime | None) -> timestamp_pb2.Timestamp | None:
    if t is None:
        return None
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(aware(t))  # type: ignore[arg-type]  # an aware datetime; the stubs ask for a naive one
    return ts


def build_matter(mv: MatterVersion) -> pb.Matter:
    spec = mv.spec
    en = english_names(mv.definition_yaml)
    return pb.Matter(
        name=f"matters/{spec.code}", code=spec.code, version=mv.version,
        display_name=spec.display_name, display_name_en=en.matter, agency=spec.agency,
        applicant_kind=_KIND[spec.applicant_kind], legal_limit_days=spec.legal_limit_days,
        promised_limit_days=spec.promised_limit_days, assurance_level=spec.assurance_level,
        materials=[pb.Material(code=m.code, display_name=m.display_name,
                               display_name_en=en.materials.get(m.code, ""),
                               certificate_types=m.certificate_types, required=m.required,
                               upload_allowed=m.upload_allowed, pledge_allowed=m.pledge_allowed)
                   for m in spec.materials],
        steps=[pb.Step(code=s.code, display_name=s.display_name,
                       display_name_en=en.steps.get(s.code, ""), role=s.role, agencies=s.agencies,
                       quorum=s.quorum, time_limit_days=s.time_limit_days) for s in spec.steps],
        instant_approval=spec.instant_approval,
        result_certificate_type=spec.result_certificate_type,
        definition_yaml=mv.definition_yaml,
        bundled_matters=[f"matters/{b.matter}" for b in spec.bundle],
        one_per_holder=spec.one_per_holder)


def build_application(a: Application, events: Sequence[TimelineEvent] = (),
                      children: Sequence[str] = ()) -> pb.Application:
    """The Application message, with its timeline and children when given."""
    app = pb.Application(
        name=f"applications/{a.id}", matter=f"matters/{a.matter_code}",
        matter_version=a.matter_version, applicant=a.applicant, submitted_by=a.submitted_by,
        status=_APPLICATION_STATUS[a.status],
        overdue=a.overdue, result_certificate=a.result_certificate,
        workflow_id=workflow_id(a.id), agency=a.agency,
        current_steps=split_list(a.current_steps),
        missing_materials=split_list(a.missing_materials),
        rating=a.rating, parent=f"applications/{a.parent_id}" if a.parent_id else "",
        children=[f"applications/{c}" for c in children],
        result_certificates=split_list(a.result_certificates), pledges=split_list(a.pledges),
        due_time_provisional=bool(a.due_provisional),
        reasons=json.loads(a.reasons) if a.reasons else [], delegation=a.delegation)
    for field, value in (("create_time", a.create_time), ("update_time", a.update_time),
                         ("due_time", a.due_time),
                         ("supplement_due_time", a.supplement_due_time)):
        ts = timestamp(value)
        if ts is not None:
            getattr(app, field).CopyFrom(ts)
    if a.receipt_json:
        r = json.loads(a.receipt_json)
        app.decision_receipt.CopyFrom(pb.DecisionReceipt(
            rule_version=r["rule_version"], inputs_json=r["inputs_json"], outcome=r["outcome"],
            explanations=r["explanations"]))
    for e in events:
        app.timeline.append(pb.TimelineEvent(
            event_id=e.event_id, kind=e.kind, message=e.message, message_en=e.message_en,
            actor=e.actor,
            time=timestamp(e.time),
            status=_APPLICATION_STATUS[e.status] if e.status
            else pb.APPLICATION_STATUS_UNSPECIFIED))
    return app


def get_application_response(data: ApplicationData) -> pb.GetApplicationResponse:
    return pb.GetApplicationResponse(
        application=build_application(data.application, data.events, data.children))


def build_task(t: Task) -> pb.Task:
    out = pb.Task(name=t.name, application=f"applications/{t.application_id}", step=t.step,
                  display_name=t.display_name, role=t.role, agency=t.agency,
                  status=_TASK_STATUS[t.status], assignee=t.assignee,
                  overdue=t.overdue, matter=t.matter, kind=t.kind,
                  reasons=json.loads(t.reasons) if t.reasons else [],
                  due_time_provisional=bool(t.due_provisional),
                  decision=_DECISION[t.decision] if t.decision else pb.DECISION_UNSPECIFIED)
    for field, value in (("due_time", t.due_time), ("create_time", t.create_time)):
        ts = timestamp(value)
        if ts is not None:
            getattr(out, field).CopyFrom(ts)
    return out


def build_calendar_year(y: PublishedYear, *, days: bool = True) -> pb.CalendarYear:
    out = pb.CalendarYear(
        name=f"calendars/{y.days.region}/years/{y.days.year}", region=y.days.region,
        year=y.days.year, source=y.days.source, published_by=y.published_by,
        revision=y.revision, publish_time=timestamp(y.publish_time))
    if days:
        out.holidays.extend(pb.CalendarDay(date=d.isoformat(), name=n)
                            for d, n in sorted(y.days.holidays.items()))
        out.working_days.extend(pb.CalendarDay(date=d.isoformat(), name=n)
                                for d, n in sorted(y.days.working_days.items()))
    return out


def build_statistics(s: MatterStatistics) -> pb.MatterStatistics:
    return pb.MatterStatistics(matter=s.matter, agency=s.agency, counts=s.counts,
                               on_time_rate=s.on_time_rate,
                               average_working_days=s.average_working_days,
                               decided=s.decided, average_rating=s.average_rating)
