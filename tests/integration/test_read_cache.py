"""GetApplication's response cache (services/matters/store/caches.py) is never stale: whichever
replica a write went through — or none, an operator's SQL — the next read on every replica
shows it, on SQLite and on PostgreSQL; and the caller is checked on every read."""

from __future__ import annotations

import asyncio
import datetime as dt

import grpc
import pytest
import sqlalchemy as sa

from govflow.db import normalise_url
from govflow.matters.v1 import matters_pb2 as mpb
from govflow.matters.v1 import matters_pb2_grpc
from services.matters.server import create_server as matters_server
from services.matters.store.caches import VersionedCache
from tests.e2e.helpers import TERMINAL, citizen, new_senior, official, submit, wait_for
from tests.stack import Stack

SENIOR_CARD = "matters/senior-citizen-card"


async def _read(stub: matters_pb2_grpc.MattersServiceStub, md: tuple, name: str  # type: ignore[type-arg]
                ) -> mpb.Application:
    resp = await stub.GetApplication(mpb.GetApplicationRequest(name=name), metadata=md)
    return resp.application  # type: ignore[no-any-return]


async def test_every_replica_reads_every_change(stack: Stack) -> None:
    _, wang = await new_senior(stack)  # the card is one per holder
    name = await submit(stack, wang, SENIOR_CARD)
    ended = await wait_for(stack, wang, name, lambda a: a.status in TERMINAL)
    # The workflow may record an event or two after the status: let it finish first.
    await stack.client.get_workflow_handle(ended.workflow_id).result()
    done = await _read(stack.matters, wang, name)
    worker = await stack.service_md("govflow-worker")
    other, port = await matters_server(stack.settings, port=0)  # a second replica, same database
    await other.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
            a, b = stack.matters, matters_pb2_grpc.MattersServiceStub(ch)
            for replica in (a, b):  # each builds and keeps its response
                assert await _read(replica, wang, name) == done
                assert await _read(replica, wang, name) == done

            # A timeline event and a field of the row, written through replica a.
            when = dt.datetime.now(dt.UTC).replace(microsecond=0)
            request = mpb.RecordApplicationEventRequest(
                application=name, overdue=True,
                event=mpb.TimelineEvent(event_id="5000-cache-check", kind="note",
                                        message="checked", actor="system"))
            request.event.time.FromDatetime(when)
            await a.RecordApplicationEvent(request, metadata=worker)
            for replica in (b, a):
                got = await _read(replica, wang, name)
                assert got.overdue
                assert got.timeline[-1].event_id == "5000-cache-check"
                assert len(got.timeline) == len(done.timeline) + 1

            # The applicant's rating, through replica b.
            await b.RateApplication(mpb.RateApplicationRequest(name=name, score=5,
                                                               comment="quick"), metadata=wang)
            for replica in (a, b):
                got = await _read(replica, wang, name)
                assert got.rating == 5
                assert got.timeline[-1].kind == "rated"

            # An operator's fix in SQL, through neither.
            engine = sa.create_engine(normalise_url(stack.settings.database_url("matters")))
            try:
                with engine.begin() as conn:
                    conn.execute(sa.text("UPDATE applications SET current_steps = 'recheck' "
                                         "WHERE id = :id"), {"id": name.removeprefix("applications/")})
            finally:
                engine.dispose()
            for replica in (a, b):
                assert list((await _read(replica, wang, name)).current_steps) == ["recheck"]

            # A cached response is still only for those who may see it.
            li = await citizen(stack, "li-wei")
            elsewhere = await official(stack, "lin-tao", "agencies/sz-hcb")
            for replica in (a, b):
                for md in (li, elsewhere):
                    with pytest.raises(grpc.aio.AioRpcError) as err:
                        await _read(replica, md, name)
                    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    finally:
        await other.stop(0)


def test_versioned_cache_serves_only_the_version_asked_for_and_stays_bounded() -> None:
    cache: VersionedCache[str] = VersionedCache(2)
    cache.put("a", 3, "a3")
    assert cache.get("a", 3) == "a3"
    assert cache.get("a", 4) is None  # changed since: built again
    cache.put("a", 2, "a2")  # a slower reader's older build does not replace a newer one
    assert cache.get("a", 3) == "a3"
    cache.put("b", 1, "b1")
    cache.get("a", 3)  # a is used more recently than b
    cache.put("c", 1, "c1")
    assert len(cache) == 2 and cache.get("b", 1) is None and cache.get("a", 3) == "a3"


OFFICER_MATTER = "matters/individual-business-registration"


async def _inbox(stub: matters_pb2_grpc.MattersServiceStub, md: tuple,  # type: ignore[type-arg]
                 filter_: str = "") -> dict[str, mpb.Task]:
    """Every task of the caller's inbox under ``filter_``, page by page."""
    out: dict[str, mpb.Task] = {}
    token = ""
    while True:
        resp = await stub.ListTasks(mpb.ListTasksRequest(page_size=100, page_token=token,
                                                         filter=filter_), metadata=md)
        out.update({t.name: t for t in resp.tasks})
        token = resp.next_page_token
        if not token:
            return out


async def test_every_replica_lists_every_change_to_an_inbox(stack: Stack) -> None:
    wang = await citizen(stack, "wang-fang")
    chen = await official(stack, "chen-jing", "agencies/sz-amr")
    other, port = await matters_server(stack.settings, port=0)
    await other.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
            a, b = stack.matters, matters_pb2_grpc.MattersServiceStub(ch)
            for replica in (a, b):  # each builds and keeps its pages
                await _inbox(replica, chen)
                await _inbox(replica, chen, "assignee=me")
            name = await submit(stack, wang, OFFICER_MATTER)
            task = f"tasks/{name.removeprefix('applications/')}-acceptance-sz-amr"
            # The worker writes the task (through replica a): both replicas list it.
            for _ in range(200):
                if task in await _inbox(a, chen):
                    break
                await asyncio.sleep(0.1)
            for replica in (a, b):
                got = await _inbox(replica, chen)
                assert got[task].status == mpb.TASK_STATUS_OPEN
                assert task not in await _inbox(replica, chen, "assignee=me")

            # Claimed through replica b; the claim reaches the read model just after the
            # answer (through replica a), and then both replicas' pages show it.
            await b.ClaimTask(mpb.ClaimTaskRequest(name=task), metadata=chen)
            for _ in range(200):
                if task in await _inbox(b, chen, "assignee=me"):
                    break
                await asyncio.sleep(0.1)
            for replica in (b, a):
                mine = await _inbox(replica, chen, "assignee=me")
                assert mine[task].status == mpb.TASK_STATUS_CLAIMED

            # An operator's fix in SQL, through neither.
            engine = sa.create_engine(normalise_url(stack.settings.database_url("matters")))
            try:
                with engine.begin() as conn:
                    conn.execute(sa.text("UPDATE tasks SET display_name = 'recheck' "
                                         "WHERE name = :name"), {"name": task})
            finally:
                engine.dispose()
            for replica in (a, b):
                assert (await _inbox(replica, chen, "assignee=me"))[task].display_name == \
                    "recheck"

            # A cached page is still only for that agency's officials.
            lin = await official(stack, "lin-tao", "agencies/sz-hcb")
            for replica in (a, b):
                assert task not in await _inbox(replica, lin)
                assert task not in await _inbox(replica, lin, "status=CLAIMED")
    finally:
        await other.stop(0)
