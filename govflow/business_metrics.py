"""Business figures in /metrics, read from a service's own database when Prometheus scrapes.

Counted from the tables rather than at each use case: the figures then hold across
replicas and restarts (every replica reports the same totals; dashboards take ``max`` over
instances), and the use-case code carries no metrics calls. Each collector runs a few
grouped ``COUNT`` queries (indexed columns, a bounded number of groups: matters, agencies,
statuses, certificate types; never an ID) and keeps the answer for ``CACHE_SECONDS``, so a
scrape costs a few milliseconds however often it comes.

A collector reads only the tables of the service whose process it runs in.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from govflow import log
from govflow.db import make_engine, normalise_url

CACHE_SECONDS = 5.0

# (metric name, help, kind, label names, SQL returning the labels then the value)
Query = tuple[str, str, str, tuple[str, ...], str]

MATTERS: Sequence[Query] = (
    ("govflow_applications", "Applications by matter, agency and status.", "gauge",
     ("matter", "agency", "status"),
     "SELECT matter_code, agency, status, COUNT(*) FROM applications "
     "GROUP BY matter_code, agency, status"),
    ("govflow_applications_submitted", "Applications submitted, by matter and agency.",
     "counter", ("matter", "agency"),
     "SELECT matter_code, agency, COUNT(*) FROM applications GROUP BY matter_code, agency"),
    ("govflow_instant_approvals", "Applications approved by rule (秒批), by matter and agency.",
     "counter", ("matter", "agency"),
     "SELECT a.matter_code, a.agency, COUNT(*) FROM application_events e "
     "JOIN applications a ON a.id = e.application_id WHERE e.kind = 'instant_approved' "
     "GROUP BY a.matter_code, a.agency"),
    ("govflow_tasks_open", "Officer tasks open or claimed, by agency.", "gauge", ("agency",),
     "SELECT agency, COUNT(*) FROM tasks WHERE status IN ('OPEN', 'CLAIMED') GROUP BY agency"),
    ("govflow_tasks_overdue", "Open officer tasks past their due time, by agency.", "gauge",
     ("agency",),
     "SELECT agency, COUNT(*) FROM tasks WHERE status IN ('OPEN', 'CLAIMED') AND overdue "
     "GROUP BY agency"),
    ("govflow_applications_on_time_ratio",
     "Share of decided applications decided by their due time, by agency.", "gauge",
     ("agency",),
     "SELECT agency, AVG(CASE WHEN decided_time <= due_time THEN 1.0 ELSE 0.0 END) "
     "FROM applications WHERE decided_time IS NOT NULL AND due_time IS NOT NULL "
     "GROUP BY agency"),
)

CERTIFICATES: Sequence[Query] = (
    ("govflow_certificates", "Certificates by type and status (active, suspended, revoked).",
     "gauge", ("type", "status"),
     "SELECT type_code, status, COUNT(*) FROM certificates GROUP BY type_code, status"),
    ("govflow_certificates_issued", "Certificates issued, by type.", "counter", ("type",),
     "SELECT type_code, COUNT(*) FROM certificates GROUP BY type_code"),
    ("govflow_consent_grants", "Consent grants made by holders.", "counter", (),
     "SELECT COUNT(*) FROM consents"),
    ("govflow_consent_grants_revoked", "Consent grants revoked by holders.", "counter", (),
     "SELECT COUNT(*) FROM consents WHERE revoke_time IS NOT NULL"),
)

QUERIES: dict[str, Sequence[Query]] = {"matters": MATTERS, "certificates": CERTIFICATES}


class DatabaseCollector(Collector):
    """The ``queries`` of one service, answered from its database and cached briefly."""

    def __init__(self, engine: sa.Engine, queries: Sequence[Query],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.engine = engine
        self.queries = queries
        self.clock = clock
        self._lock = threading.Lock()
        self._cached: list[Metric] = []
        self._until = float("-inf")

    def describe(self) -> Iterable[Metric]:
        return []  # checked at scrape time only: registering must not touch the database

    def collect(self) -> Iterable[Metric]:
        with self._lock:
            if self.clock() >= self._until:
                self._cached = self._read()
                self._until = self.clock() + CACHE_SECONDS
            return list(self._cached)

    def _read(self) -> list[Metric]:
        out: list[Metric] = []
        try:
            with self.engine.connect() as conn:
                for name, help_text, kind, labels, sql in self.queries:
                    family: Any = (CounterMetricFamily if kind == "counter"
                                   else GaugeMetricFamily)(name, help_text, labels=labels)
                    for row in conn.execute(sa.text(sql)):
                        *values, value = row
                        family.add_metric([str(v) for v in values], float(value or 0))
                    out.append(family)
        except sa.exc.SQLAlchemyError as exc:
            # A database outage shows as missing series (and the service's health), not as
            # a failed scrape of the process's other metrics.
            log.get_logger("govflow.metrics").warning("metrics.business_read_failed",
                                                      error=type(exc).__name__)
            return []
        return out


def collector_for(service: str, database_url: str) -> DatabaseCollector | None:
    """The business collector of ``service`` over its database, or None if it has none."""
    queries = QUERIES.get(service)
    if queries is None:
        return None
    url = normalise_url(database_url)
    # Its own small engine: a scrape never waits for, or holds, a connection of the
    # service's pool.
    engine = (make_engine(url) if url.startswith("sqlite")
              else sa.create_engine(url, pool_size=1, max_overflow=0, pool_pre_ping=True))
    return DatabaseCollector(engine, queries)
