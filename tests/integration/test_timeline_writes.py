"""RecordApplicationEvent, the worker's timeline write (Core statements since 2026-12-02):
a retry appends nothing, what the event carries lands on the application's row, the time
of the first decision is kept, and an unknown application is refused with nothing written
— on SQLite and on PostgreSQL."""

from __future__ import annotations

import datetime as dt

import grpc
import pytest
import sqlalchemy as sa

from govflow.db import normalise_url
from govflow.matters.v1 import matters_pb2 as mpb
from tests.e2e.helpers import TERMINAL, new_senior, submit, wait_for
from tests.stack import Stack


def _event(name: str, event_id: str, when: dt.datetime, status: int = 0, **kw: object
           ) -> mpb.RecordApplicationEventRequest:
    request = mpb.RecordApplicationEventRequest(
        application=name, event=mpb.TimelineEvent(
            event_id=event_id, kind="note", message=f"{event_id} 已记录",
            message_en=f"{event_id} noted", actor="system",
            status=status),  # type: ignore[arg-type]
        **kw)  # type: ignore[arg-type]
    request.event.time.FromDatetime(when)
    return request


async def test_timeline_writes_are_applied_once(stack: Stack) -> None:
    _, wang = await new_senior(stack)  # the card is one per holder
    name = await submit(stack, wang, "matters/senior-citizen-card")
    ended = await wait_for(stack, wang, name, lambda a: a.status in TERMINAL)
    await stack.client.get_workflow_handle(ended.workflow_id).result()
    worker = await stack.service_md("govflow-worker")
    app_id = name.removeprefix("applications/")
    engine = sa.create_engine(normalise_url(stack.settings.database_url("matters")))

    def decided_time() -> dt.datetime | None:
        with engine.connect() as conn:
            return conn.execute(sa.text("SELECT decided_time FROM applications WHERE id = :i"),
                                {"i": app_id}).scalar_one()  # type: ignore[no-any-return]

    try:
        first_decided = decided_time()
        assert first_decided is not None  # the workflow's decision
        when = dt.datetime.now(dt.UTC).replace(microsecond=0)
        request = _event(name, "7000-retried", when, overdue=True, current_steps=["recheck"],
                         status=mpb.APPLICATION_STATUS_REJECTED)
        for _ in range(2):  # the activity retried after its answer was lost
            await stack.matters.RecordApplicationEvent(request, metadata=worker)
        got = (await stack.matters.GetApplication(mpb.GetApplicationRequest(name=name),
                                                  metadata=wang)).application
        assert [e.event_id for e in got.timeline].count("7000-retried") == 1
        assert got.timeline[-1].message == "7000-retried 已记录"
        assert got.timeline[-1].message_en == "7000-retried noted"
        assert got.overdue and list(got.current_steps) == ["recheck"]
        assert got.status == mpb.APPLICATION_STATUS_REJECTED
        # A later decision does not move the time of the first.
        assert decided_time() == first_decided

        missing = "applications/does-not-exist"
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stack.matters.RecordApplicationEvent(_event(missing, "7001-lost", when),
                                                       metadata=worker)
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
        with engine.connect() as conn:
            assert conn.execute(sa.text(
                "SELECT count(*) FROM application_events WHERE application_id = :i"),
                {"i": "does-not-exist"}).scalar_one() == 0
    finally:
        engine.dispose()


async def test_a_batch_of_events_is_recorded_in_order_all_or_none(stack: Stack) -> None:
    """RecordApplicationEvents (the worker's batched timeline): events recorded in order,
    the last status standing; sent again, nothing is appended; a bad event anywhere in the
    batch is refused naming its field, and one for an unknown application undoes the whole
    batch."""
    from grpc_status import rpc_status

    from govflow.errors import field_violations

    _, wang = await new_senior(stack)
    name = await submit(stack, wang, "matters/senior-citizen-card")
    ended = await wait_for(stack, wang, name, lambda a: a.status in TERMINAL)
    await stack.client.get_workflow_handle(ended.workflow_id).result()
    worker = await stack.service_md("govflow-worker")
    when = dt.datetime.now(dt.UTC).replace(microsecond=0)

    async def timeline() -> list[str]:
        got = (await stack.matters.GetApplication(mpb.GetApplicationRequest(name=name),
                                                  metadata=wang)).application
        return [e.event_id for e in got.timeline]

    before = await timeline()
    batch = mpb.RecordApplicationEventsRequest(events=[
        _event(name, "7100-first", when, status=mpb.APPLICATION_STATUS_IN_REVIEW),
        _event(name, "7101-second", when, status=mpb.APPLICATION_STATUS_REJECTED)])
    for _ in range(2):  # retried after its answer was lost
        await stack.matters.RecordApplicationEvents(batch, metadata=worker)
    after = await timeline()
    assert after == [*before, "7100-first", "7101-second"]
    got = (await stack.matters.GetApplication(mpb.GetApplicationRequest(name=name),
                                              metadata=wang)).application
    assert got.status == mpb.APPLICATION_STATUS_REJECTED

    refused = [
        (mpb.RecordApplicationEventsRequest(), "events"),  # empty
        (mpb.RecordApplicationEventsRequest(events=[_event(name, "7102-ok", when),
                                                    _event(name, "", when)]),
         "events[1].event.event_id"),
        (mpb.RecordApplicationEventsRequest(events=[_event("nonsense", "7102-ok", when)]),
         "events[0].application"),
    ]
    for request, field in refused:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stack.matters.RecordApplicationEvents(request, metadata=worker)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        # The field at fault, and only it.
        assert list(field_violations(rpc_status.from_call(err.value))) == [field]  # type: ignore[arg-type]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.matters.RecordApplicationEvents(mpb.RecordApplicationEventsRequest(events=[
            _event(name, "7103-undone", when),
            _event("applications/does-not-exist", "7104-lost", when)]), metadata=worker)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert await timeline() == after  # nothing of a refused batch was written
