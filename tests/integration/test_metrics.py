"""Metrics on a real service: the one call wrapper counts every RPC by status code and
times it, rate-limit refusals are counted by RPC, the process serves them at /metrics, and
the business collectors read their database at most once per cache period."""

from __future__ import annotations

import pathlib
import socket
import urllib.request

import grpc
import pytest
import sqlalchemy as sa

from govflow import business_metrics, metrics
from govflow.identity.v1 import identity_pb2 as ipb
from govflow.identity.v1 import identity_pb2_grpc
from govflow.settings import Settings
from services.identity.server import create_server


def sample(name: str, **labels: str) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


async def test_the_call_wrapper_counts_times_and_reports_rate_limits(
        tmp_path: pathlib.Path) -> None:
    settings = Settings(data_dir=tmp_path, login_rate_limit=1)
    server, port = await create_server(settings, port=0)
    await server.start()
    ok = dict(service="identity", rpc="ListAgencies", code="OK")
    bad = dict(service="identity", rpc="ListAgencies", code="INVALID_ARGUMENT")
    timed = dict(service="identity", rpc="ListAgencies")
    limited = dict(service="identity", rpc="Login")
    before = (sample("govflow_rpc_requests_total", **ok),
              sample("govflow_rpc_requests_total", **bad),
              sample("govflow_rpc_duration_seconds_count", **timed),
              sample("govflow_rpc_rate_limited_total", **limited))
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
            stub = identity_pb2_grpc.IdentityServiceStub(ch)
            await stub.ListAgencies(ipb.ListAgenciesRequest())
            with pytest.raises(grpc.aio.AioRpcError):
                await stub.ListAgencies(ipb.ListAgenciesRequest(page_size=-1))
            codes = []
            for _ in range(2):  # the second attempt is over the limit of one
                with pytest.raises(grpc.aio.AioRpcError) as err:
                    await stub.Login(ipb.LoginRequest(id_number="11010519491231002X",
                                                      password="wrong"))
                codes.append(err.value.code())
            assert codes[-1] == grpc.StatusCode.RESOURCE_EXHAUSTED
    finally:
        await server.stop(0)
    after = (sample("govflow_rpc_requests_total", **ok),
             sample("govflow_rpc_requests_total", **bad),
             sample("govflow_rpc_duration_seconds_count", **timed),
             sample("govflow_rpc_rate_limited_total", **limited))
    assert [a - b for a, b in zip(after, before, strict=True)] == [1, 1, 2, 1]
    assert sample("govflow_rpc_requests_total", service="identity", rpc="Login",
                  code="RESOURCE_EXHAUSTED") >= 1
    # The identity database's pool is reported under its name.
    assert metrics.REGISTRY.get_sample_value("govflow_db_pool_checked_out",
                                             {"database": "identity"}) is not None


def test_metrics_endpoint_serves_and_a_busy_port_is_not_fatal() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free = s.getsockname()[1]
    assert metrics.serve("test", "127.0.0.1", free) == free
    with urllib.request.urlopen(f"http://127.0.0.1:{free}/metrics", timeout=10) as resp:
        assert b"govflow_rpc_requests_total" in resp.read()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        assert metrics.serve("test", "127.0.0.1", busy.getsockname()[1]) == 0
    assert metrics.serve("test", "127.0.0.1", 0) == 0


def test_business_collector_reads_once_per_cache_period(tmp_path: pathlib.Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'c.sqlite3'}")
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE consents (id TEXT, revoke_time TEXT)"))
        conn.execute(sa.text("INSERT INTO consents VALUES ('a', NULL), ('b', '2026-01-01')"))
    now = [0.0]
    queries = [q for q in business_metrics.CERTIFICATES if q[0].startswith("govflow_consent")]
    collector = business_metrics.DatabaseCollector(engine, queries, clock=lambda: now[0])

    def values() -> dict[str, float]:
        return {s.name: s.value for m in collector.collect() for s in m.samples}

    assert values() == {"govflow_consent_grants_total": 2.0,
                        "govflow_consent_grants_revoked_total": 1.0}
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO consents VALUES ('c', NULL)"))
    assert values()["govflow_consent_grants_total"] == 2.0  # cached
    now[0] += business_metrics.CACHE_SECONDS
    assert values()["govflow_consent_grants_total"] == 3.0
    # A database that fails leaves the series out instead of failing the scrape.
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE consents"))
    now[0] += business_metrics.CACHE_SECONDS
    assert values() == {}
