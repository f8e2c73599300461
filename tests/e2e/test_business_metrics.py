"""The business collectors' SQL on both databases: after an instant approval, the matters
and certificates collectors read it from the services' real tables (SQLite and PostgreSQL)."""

from __future__ import annotations

import uuid

from govflow import business_metrics
from govflow.matters.v1 import matters_pb2 as mpb
from tests.e2e.helpers import new_senior, wait_done
from tests.stack import Stack

MATTER = "senior-citizen-card"
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(collector: business_metrics.DatabaseCollector) -> Samples:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in collector.collect() for s in family.samples}


async def test_collectors_read_an_instant_approval(stack: Stack) -> None:
    matters = business_metrics.collector_for("matters", stack.settings.database_url("matters"))
    certificates = business_metrics.collector_for(
        "certificates", stack.settings.database_url("certificates"))
    assert matters is not None and certificates is not None
    matters.clock = certificates.clock = iter(range(0, 10**6, 10)).__next__  # never cached

    def instant(values: Samples) -> float:
        return sum(v for (name, labels), v in values.items()
                   if name == "govflow_instant_approvals_total" and ("matter", MATTER) in labels)

    before_m, before_c = samples(matters), samples(certificates)
    _senior, md = await new_senior(stack)
    sub = await stack.matters.SubmitApplication(mpb.SubmitApplicationRequest(
        matter=f"matters/{MATTER}", request_id=uuid.uuid4().hex), metadata=md)
    app = await wait_done(stack, md, sub.application.name)
    assert app.status == mpb.APPLICATION_STATUS_COMPLETED
    after_m, after_c = samples(matters), samples(certificates)

    assert instant(after_m) == instant(before_m) + 1
    names = {name for name, _ in after_m}
    assert {"govflow_applications", "govflow_applications_submitted_total",
            "govflow_instant_approvals_total"} <= names
    completed = [v for (name, labels), v in after_m.items()
                 if name == "govflow_applications" and ("status", "COMPLETED") in labels]
    assert sum(completed) >= 1

    def issued(values: Samples) -> float:
        return sum(v for (name, labels), v in values.items()
                   if name == "govflow_certificates_issued_total"
                   and ("type", MATTER) in labels)

    assert issued(after_c) == issued(before_c) + 1
    assert after_c[("govflow_consent_grants_total", ())] > before_c.get(
        ("govflow_consent_grants_total", ()), 0)
    # Every figure's value is a number, from both dialects' answers (AVG is a Decimal on
    # PostgreSQL).
    assert all(isinstance(v, float) for v in (*after_m.values(), *after_c.values()))
