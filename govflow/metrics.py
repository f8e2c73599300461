"""Prometheus metrics of every Govflow process (prometheus-client).

Three kinds, all with bounded label sets (service, RPC, status code, matter, agency; never
an ID):

- per RPC, in the one call wrapper of govflow/grpckit.py and in the gateway: requests by
  status code, a latency histogram, and rate-limit refusals. The wrapper is a hot path
  (docs/performance.md), so every RPC's label children are bound once, when its handler is
  wrapped (``RpcMeter``); a call then costs one histogram observation and one counter
  increment;
- database pools (``PoolCollector``) and each service's business figures, read from its
  own database when Prometheus scrapes (govflow/business_metrics.py);
- the Temporal SDK's own metrics (worker task latencies, schedule-to-start, sticky cache),
  served by the SDK's runtime on a port of its own (``temporal_runtime``).

``serve(process, port)`` starts the ``/metrics`` endpoint; port 0 leaves it off.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterable
from typing import Any

import prometheus_client
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from govflow import log

REGISTRY = prometheus_client.REGISTRY

# Unary calls answer in milliseconds; the tail (a cold cache, a lock wait) in seconds.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                   10.0)

RPC_REQUESTS = prometheus_client.Counter(
    "govflow_rpc_requests", "RPCs answered, by service, RPC and gRPC status code.",
    ("service", "rpc", "code"))
RPC_SECONDS = prometheus_client.Histogram(
    "govflow_rpc_duration_seconds", "Time to answer an RPC, by service and RPC.",
    ("service", "rpc"), buckets=LATENCY_BUCKETS)
RPC_RATE_LIMITED = prometheus_client.Counter(
    "govflow_rpc_rate_limited", "RPCs refused with RESOURCE_EXHAUSTED (reason RATE_LIMITED).",
    ("service", "rpc"))

_RATE_LIMITED = "RATE_LIMITED"


class RpcMeter:
    """One RPC's metric children, bound once (labels() is a lock and a dict lookup)."""

    __slots__ = ("_codes", "_limited", "_ok", "_rpc", "_seconds", "_service")

    def __init__(self, service: str, rpc: str) -> None:
        self._service, self._rpc = service, rpc
        self._ok = RPC_REQUESTS.labels(service, rpc, "OK")
        self._seconds = RPC_SECONDS.labels(service, rpc)
        self._limited = RPC_RATE_LIMITED.labels(service, rpc)
        self._codes: dict[str, Any] = {"OK": self._ok}

    def ok(self, seconds: float) -> None:
        self._seconds.observe(seconds)
        self._ok.inc()

    def failed(self, code: str, seconds: float, reason: str = "") -> None:
        """A call answered with ``code`` (a gRPC status code's name)."""
        self._seconds.observe(seconds)
        child = self._codes.get(code)
        if child is None:  # at most the 17 gRPC codes per RPC
            child = self._codes[code] = RPC_REQUESTS.labels(self._service, self._rpc, code)
        child.inc()
        if reason == _RATE_LIMITED:
            self._limited.inc()


# ------------------------------------------------------------------ database pools

_ENGINES: weakref.WeakValueDictionary[str, Any] = weakref.WeakValueDictionary()


def track_engine(database: str, engine: Any) -> None:
    """Reports ``engine``'s connection pool under ``database`` (a service's name)."""
    _ENGINES[database] = engine


class PoolCollector(Collector):
    """Connections checked out of and idle in each tracked engine's pool, on scrape."""

    def collect(self) -> Iterable[GaugeMetricFamily]:
        out = GaugeMetricFamily("govflow_db_pool_checked_out",
                                "Database connections in use, by database.", labels=("database",))
        idle = GaugeMetricFamily("govflow_db_pool_idle",
                                 "Database connections idle in the pool, by database.",
                                 labels=("database",))
        for name, engine in list(_ENGINES.items()):
            pool = engine.pool
            checked_out = getattr(pool, "checkedout", None)
            checked_in = getattr(pool, "checkedin", None)
            if checked_out is not None:
                out.add_metric((name,), float(checked_out()))
            if checked_in is not None:
                idle.add_metric((name,), float(checked_in()))
        yield out
        yield idle


REGISTRY.register(PoolCollector())


# ------------------------------------------------------------------ endpoints

_served: dict[int, Any] = {}
_lock = threading.Lock()


def serve(process: str, host: str, port: int) -> int:
    """Starts this process's ``/metrics`` endpoint on ``host:port``; returns the port bound
    (0 when off). A busy port is logged, not fatal: serving matters more than the scrape
    (Prometheus then reports the target down, which says so)."""
    if not port:
        return 0
    with _lock:
        if port in _served:
            return port
        try:
            server, _thread = prometheus_client.start_http_server(port, addr=host)
        except OSError as exc:
            log.get_logger("govflow.metrics").error("metrics.port_busy", process=process,
                                                     port=port, error=str(exc))
            return 0
        _served[port] = server
        bound = int(server.server_address[1])
    log.get_logger("govflow.metrics").info("metrics.listening", process=process, port=bound)
    return bound


def temporal_runtime(host: str, port: int) -> Any:
    """A Temporal SDK runtime whose metrics (worker and client) Prometheus scrapes at
    ``host:port``; None when the port is 0 (the SDK's default runtime, no metrics)."""
    if not port:
        return None
    from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

    try:
        return Runtime(telemetry=TelemetryConfig(
            metrics=PrometheusConfig(bind_address=f"{host}:{port}")))
    except Exception as exc:  # a busy port: the SDK's default runtime, and say so
        log.get_logger("govflow.metrics").error("metrics.temporal_port_busy", port=port,
                                                 error=str(exc))
        return None


def endpoints(settings: Any) -> list[tuple[str, str]]:
    """(job, host:port) of every metrics endpoint ``govflow up`` runs: the processes'
    ``/metrics`` and the Temporal SDK's, for ``up`` to print and Prometheus to scrape."""
    out: list[tuple[str, str]] = []
    for name in ("identity", "certificates", "matters", "worker", "gateway"):
        if name == "gateway" and not settings.gateway_port:
            continue
        if port := getattr(settings, f"{name}_metrics_port"):
            out.append((name, f"{settings.host}:{port}"))
    for name in ("matters", "worker"):
        if port := getattr(settings, f"{name}_temporal_metrics_port"):
            out.append((f"{name}-temporal-sdk", f"{settings.host}:{port}"))
    if port := getattr(settings, "temporal_metrics_port", 0):
        # The dev server listens on the host of the Temporal address.
        host = settings.temporal_address.rpartition(":")[0] or settings.host
        out.append(("temporal", f"{host}:{port}"))
    return out
