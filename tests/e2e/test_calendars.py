"""The statutory clock as data: calendars administrators publish, provisional due times,
and their recomputation when the missing year is published (real stack, per-workflow time
skipping for the timers)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import pathlib
import uuid

import grpc
import pytest
import sqlalchemy as sa
from grpc_status import rpc_status
from temporalio.worker import Replayer

from govflow.certificates.v1 import certificates_pb2 as cpb
from govflow.errors import field_violations
from govflow.matters.v1 import matters_pb2 as mpb
from tests.e2e.helpers import citizen, fast_forward, get, official, submit, task_for, wait_for
from tests.stack import Stack
from workflows.worker import WORKFLOWS, sandbox_runner

AMR = "agencies/sz-amr"
CST = dt.timezone(dt.timedelta(hours=8))
LONG_MATTER = """
code: calendar-long-permit
display_name: A permit with a long review
agency: agencies/sz-amr
applicant_kind: person
assurance_level: real_name
legal_limit_days: 40
promised_limit_days: 30
materials:
  - code: id-card
    display_name: Resident ID card
    certificate_types: [certificateTypes/resident-id-card]
steps:
  - code: acceptance
    display_name: Acceptance
    role: acceptor
    time_limit_days: 30
result:
  certificate_type: certificateTypes/individual-business-licence
  fields:
    operator_name: "=applicant.display_name"
    id_number: "=materials.id-card.id_number"
    trade_name: "long review"
    business_scope: "retail"
"""


def violations(err: grpc.aio.AioRpcError) -> dict[str, str]:
    status = rpc_status.from_call(err)
    return field_violations(status) if status is not None else {}


def next_weekday(day: dt.date) -> dt.date:
    day += dt.timedelta(days=1)
    while day.weekday() >= 5:
        day += dt.timedelta(days=1)
    return day


async def search_attributes(stack: Stack, workflow_id: str) -> dict[str, object]:
    desc = await stack.client.get_workflow_handle(workflow_id).describe()
    return {k.name: v for k, v in desc.typed_search_attributes}  # type: ignore[attr-defined]


def audit_actions(stack: Stack) -> list[dict[str, object]]:
    engine = sa.create_engine(stack.settings.database_url("matters").replace(
        "postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT entry_json FROM decision_audit_log "
                                        "WHERE action = 'calendar.published' ORDER BY seq"))
            return [json.loads(r[0]) for r in rows]
    finally:
        engine.dispose()


async def test_publishing_the_missing_year_moves_provisional_due_times(stack: Stack) -> None:
    admin = await stack.service_md()
    await stack.matters.PublishMatter(mpb.PublishMatterRequest(definition_yaml=LONG_MATTER),
                                      metadata=admin)
    applicant = await citizen(stack, "li-wei")
    name = await submit(stack, applicant, "matters/calendar-long-permit")
    acceptor = await official(stack, "chen-jing", AMR)
    task = await task_for(stack, acceptor, name, "acceptance")

    # Thirty working days from now reach a year with no published calendar (the seeded
    # years end with 2026): the due time is provisional everywhere it shows.
    assert task.due_time_provisional
    app = await get(stack, applicant, name)
    assert app.due_time_provisional
    opened = next(e for e in app.timeline if e.kind == "step_opened")
    assert "provisional" in opened.message_en and "暂按周一至周五计算" in opened.message
    sa_now = await search_attributes(stack, app.workflow_id)
    assert sa_now["GovflowDueProvisional"] is True and sa_now["GovflowOverdue"] is False
    inbox = await stack.matters.ListTasks(mpb.ListTasksRequest(page_size=100), metadata=acceptor)
    assert next(t for t in inbox.tasks if t.name == task.name).due_time_provisional

    # The administrator publishes that year with one more day off, inside the step's count.
    old_due = task.due_time.ToDatetime(tzinfo=dt.UTC)
    old_day = old_due.astimezone(CST).date()
    today = dt.datetime.now(CST).date()
    holiday = next(d for d in (today + dt.timedelta(days=n) for n in range(2, 400))
                   if d.year == old_day.year and d.weekday() < 5 and d <= old_day)
    # Any year still missing between now and the due (none, unless the run is years late).
    years = list(range(max(2027, today.year), old_day.year + 1))
    asked = 0
    for year in years:
        resp = await stack.matters.PublishCalendarYear(mpb.PublishCalendarYearRequest(
            calendar_year=mpb.CalendarYear(
                region="CN", year=year, source="test notice",
                holidays=[mpb.CalendarDay(date=holiday.isoformat(), name="Test holiday")]
                if year == holiday.year else [])), metadata=admin)
        assert resp.calendar_year.name == f"calendars/CN/years/{year}"
        asked += resp.applications_recomputed
    assert asked >= 1

    app = await wait_for(stack, applicant, name,
                         lambda a: "due_times_recomputed" in [e.kind for e in a.timeline])
    new_day = next_weekday(old_day)
    new_due = dt.datetime.combine(new_day, dt.time(23, 59, 59), tzinfo=CST)
    event = next(e for e in app.timeline if e.kind == "due_times_recomputed")
    assert f"calendars/CN/years/{holiday.year}" in event.message_en
    assert new_due.astimezone(dt.UTC).isoformat() in event.message_en
    assert new_due.strftime("%Y-%m-%d %H:%M") in event.message  # Beijing time, in Chinese
    assert not app.due_time_provisional
    task = await task_for(stack, acceptor, name, "acceptance")
    assert task.due_time.ToDatetime(tzinfo=dt.UTC) == new_due
    assert not task.due_time_provisional
    sa_now = await search_attributes(stack, app.workflow_id)
    assert sa_now["GovflowDueProvisional"] is False

    # The timers moved: past the old due time (a day before the new one) only the reminder
    # comes; the escalation waits for the new due time.
    now = dt.datetime.now(dt.UTC)
    await fast_forward(stack, name, new_due - dt.timedelta(days=1) - now + dt.timedelta(hours=1))
    app = await wait_for(stack, applicant, name,
                         lambda a: "reminder" in [e.kind for e in a.timeline])
    assert "escalated" not in [e.kind for e in app.timeline] and not app.overdue
    await fast_forward(stack, name, dt.timedelta(days=1))
    app = await wait_for(stack, applicant, name, lambda a: a.overdue)
    assert "escalated" in [e.kind for e in app.timeline]

    # The history recorded before the calendar changed still replays: workflow code took
    # its due times from recorded activity results, never from calendar data.
    history = await stack.client.get_workflow_handle(app.workflow_id).fetch_history()
    await Replayer(workflows=list(WORKFLOWS), workflow_runner=sandbox_runner()).replay_workflow(history)

    # Who published what is in the audit chain.
    published = [e for e in audit_actions(stack) if e["actor"] == "partners/govflow-admin"]
    assert [e["subject"] for e in published] == [f"calendars/CN/years/{y}" for y in years]


async def test_calendars_are_read_published_and_refused_with_every_problem(stack: Stack) -> None:
    listed = await stack.matters.ListCalendarYears(mpb.ListCalendarYearsRequest(
        parent="calendars/CN", page_size=100))
    years = [y.year for y in listed.calendar_years]
    assert years == sorted(years, reverse=True) and set(range(2004, 2027)) <= set(years)
    y2026 = (await stack.matters.GetCalendarYear(mpb.GetCalendarYearRequest(
        name="calendars/CN/years/2026"))).calendar_year
    assert y2026.published_by == "system" and y2026.revision == 1
    assert {"date": "2026-10-01", "name": "National Day"} in [
        {"date": d.date, "name": d.name} for d in y2026.holidays]
    assert "2026-10-10" in [d.date for d in y2026.working_days]  # 调休

    admin = await stack.service_md()
    # 2031: a year no test publishes.
    bad = mpb.CalendarYear(region="CN", year=2031, holidays=[
        mpb.CalendarDay(date="2031-01-01", name="New Year's Day"),
        mpb.CalendarDay(date="2031-01-01", name="New Year's Day"),
        mpb.CalendarDay(date="2032-02-02", name="Next year")],
        working_days=[mpb.CalendarDay(date="2031-02-05", name="A Wednesday")])
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stack.matters.PublishCalendarYear(
            mpb.PublishCalendarYearRequest(calendar_year=bad), metadata=admin)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    fields = violations(caught.value)
    assert "listed twice" in fields["calendar_year.holidays[1]"]
    assert "outside 2031" in fields["calendar_year.holidays[2]"]
    assert "2031-02-05" in fields["calendar_year.working_days"]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stack.matters.PublishCalendarYear(mpb.PublishCalendarYearRequest(
            calendar_year=mpb.CalendarYear(region="HK", year=2031)), metadata=admin)
    assert "unknown region" in violations(caught.value)["calendar_year.region"]
    # An agency's admin (an official) may not publish the national calendar.
    agency_admin = await official(stack, "sun-li", AMR)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stack.matters.PublishCalendarYear(mpb.PublishCalendarYearRequest(
            calendar_year=mpb.CalendarYear(region="CN", year=2031)), metadata=agency_admin)
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    # Nothing was written by any of them.
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stack.matters.GetCalendarYear(mpb.GetCalendarYearRequest(name="calendars/CN/years/2031"))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert not [e for e in audit_actions(stack) if e["subject"] == "calendars/CN/years/2031"]
    seeded = [e for e in audit_actions(stack) if e["actor"] == "system"]
    assert len(seeded) == 23  # 2004-2026, once each

    # Counting is a public call: the day of the start does not count.
    answer = (await stack.matters.ComputeDueTimes(mpb.ComputeDueTimesRequest(
        region="CN", queries=[mpb.DueTimeQuery(
            start_time=_ts(dt.datetime(2026, 9, 30, 10, tzinfo=CST)), working_days=1)]))).answers[0]
    assert answer.due_time.ToDatetime(tzinfo=dt.UTC) == dt.datetime(2026, 10, 8, 23, 59, 59, tzinfo=CST)
    assert not answer.provisional
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stack.matters.ComputeDueTimes(mpb.ComputeDueTimesRequest(
            region="CN", queries=[mpb.DueTimeQuery(working_days=-1)]))
    assert set(violations(caught.value)) == {"queries[0].start_time", "queries[0].working_days"}


def _ts(t: dt.datetime):  # type: ignore[no-untyped-def]
    from google.protobuf import timestamp_pb2

    out = timestamp_pb2.Timestamp()
    out.FromDatetime(t)
    return out


async def test_every_search_attribute_is_set_from_the_start(stack: Stack) -> None:
    applicant = await citizen(stack, "li-wei")
    name = await submit(stack, applicant, "matters/individual-business-registration")
    wid = "application-" + name.removeprefix("applications/")
    attrs = await search_attributes(stack, wid)
    assert attrs["GovflowOverdue"] is False
    assert "GovflowDueTime" in attrs and "GovflowDueProvisional" in attrs
    found = [wf.id async for wf in stack.client.list_workflows(
        f'GovflowOverdue = false AND WorkflowId = "{wid}"')]
    assert found == [wid]


async def test_a_suspended_certificate_is_named_with_its_state(stack: Stack) -> None:
    applicant = await citizen(stack, "li-wei")
    wallet = await stack.certificates.ListCertificates(cpb.ListCertificatesRequest(
        parent=stack.seeded.persons["li-wei"], page_size=50), metadata=applicant)  # type: ignore[attr-defined]
    card = next(c for c in wallet.certificates if c.type.endswith("resident-id-card"))
    admin = await stack.service_md()
    await stack.certificates.SuspendCertificate(cpb.SuspendCertificateRequest(
        name=card.name, reason="reported lost"), metadata=admin)
    try:
        name = await submit(stack, applicant, "matters/individual-business-registration")
        app = await wait_for(stack, applicant, name,
                             lambda a: a.status == mpb.APPLICATION_STATUS_REJECTED)
    finally:
        await stack.certificates.ReinstateCertificate(cpb.ReinstateCertificateRequest(
            name=card.name, reason="found again"), metadata=admin)
    # The application itself says why, naming the certificate and its state.
    assert app.reasons and card.name in app.reasons[0] and "suspended" in app.reasons[0]
    assert any(card.name in e.message_en and "suspended" in e.message_en for e in app.timeline
               if e.kind == "material_invalid")
    assert not any("no certificate found" in r for r in app.reasons)


async def test_one_request_id_follows_a_submission_into_the_activities(
        stack: Stack, capfd: pytest.CaptureFixture[str]) -> None:
    applicant = await citizen(stack, "li-wei")
    rid = "trace-" + uuid.uuid4().hex
    resp = await stack.matters.SubmitApplication(mpb.SubmitApplicationRequest(
        matter="matters/individual-business-registration", request_id=uuid.uuid4().hex),
        metadata=(*applicant, ("x-request-id", rid)))
    name = resp.application.name
    acceptor = await official(stack, "chen-jing", AMR)
    await task_for(stack, acceptor, name, "acceptance")
    await asyncio.sleep(0.3)  # access lines are written in small batches
    lines = [x for x in capfd.readouterr().out.splitlines() if rid in x]
    # The submission's access line names what it created ...
    assert any("SubmitApplication" in x and name in x for x in lines), lines
    # ... and the workflow's activities call the services under the same request id.
    for rpc in ("GetPerson", "PullCertificate", "ComputeDueTimes",
                "RecordApplicationEvent", "UpsertTask"):
        assert any(f"rpc={rpc}" in x or f'"rpc": "{rpc}"' in x for x in lines), rpc


async def test_govflow_calendar_import_refuses_a_bad_file_and_publishes_a_good_one(
        stack: Stack, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    from services.matters import calendar_cli

    bad = tmp_path / "bad.yaml"
    bad.write_text("region: XX\nyear: 2032\nholidays:\n"
                   "  - {date: 2032-01-01, name: New Year's Day}\n"
                   "  - {date: 2032-01-01, name: twice}\n"
                   "  - {from: 2032-02-10, to: 2032-02-08, name: backwards}\n"
                   "working_days:\n  - {date: 2033-01-08, name: next year}\n")
    assert await calendar_cli.import_year(stack.settings, bad, dry_run=False) == 1
    err = capsys.readouterr().err
    for field in ("region", "holidays[1]", "holidays[2]", "working_days[0]"):
        assert f"  {field}: " in err, (field, err)
    broken = tmp_path / "broken.yaml"
    broken.write_text("region: CN\nyear: 2032\nholidays:\n  - {date: 2032-13-01, name: x}\n")
    assert await calendar_cli.import_year(stack.settings, broken, dry_run=False) == 1
    assert "month must be in 1..12" in capsys.readouterr().err

    good = tmp_path / "CN-2032.yaml"
    good.write_text("region: CN\nyear: 2032\nsource: test\nholidays:\n"
                    "  - {from: 2032-10-01, to: 2032-10-07, name: National Day}\n"
                    "working_days:\n  - {date: 2032-10-09, name: National Day}\n")
    assert await calendar_cli.import_year(stack.settings, good, dry_run=True) == 0
    assert "not published" in capsys.readouterr().out
    with pytest.raises(grpc.aio.AioRpcError):
        await stack.matters.GetCalendarYear(mpb.GetCalendarYearRequest(name="calendars/CN/years/2032"))
    assert await calendar_cli.import_year(stack.settings, good, dry_run=False) == 0
    assert "published calendars/CN/years/2032 (revision 1)" in capsys.readouterr().out
    got = (await stack.matters.GetCalendarYear(mpb.GetCalendarYearRequest(
        name="calendars/CN/years/2032"))).calendar_year
    assert len(got.holidays) == 7 and [d.date for d in got.working_days] == ["2032-10-09"]
    assert got.published_by == "partners/govflow-admin"
