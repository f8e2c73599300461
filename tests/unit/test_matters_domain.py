"""Matters' rules without a server or a database (services/matters/domain/)."""

from __future__ import annotations

import ast
import datetime as dt
import pathlib

import pytest

from govflow import auth
from govflow.errors import FailedPrecondition, NotFound
from services.matters import domain
from services.matters import working_days as wd
from services.matters.domain import statistics
from services.matters.domain.applications import Application, ApplicationHead

DOMAIN = pathlib.Path(__file__).parents[2] / "services" / "matters" / "domain"
UTC = dt.UTC


def test_the_domain_imports_no_transport_storage_or_temporal() -> None:
    for path in DOMAIN.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                assert name.split(".")[0] not in {"grpc", "sqlalchemy", "sqlmodel", "temporalio",
                                                  "google"}, f"{path.name} imports {name}"


def app(**kw: object) -> Application:
    now = dt.datetime(2026, 3, 2, 9, tzinfo=UTC)
    fields: dict[str, object] = {
        "id": "a1", "matter_code": "m", "matter_version": 1, "agency": "agencies/x", "applicant": "persons/a",
        "submitted_by": "persons/a", "request_id": "r", "status": "SUBMITTED", "create_time": now,
        "update_time": now, "due_time": None, "overdue": False, "result_certificate": "", "receipt_json": "",
        "current_steps": "", "workflow_started": True, "parent_id": None, "missing_materials": "",
        "supplement_due_time": None, "pledges": "", "result_certificates": "", "rating": 0,
        "rating_comment": "", "decided_time": None, "due_provisional": False, "reasons": "", "interested": "",
        "version": 1, "delegation": ""}
    fields.update(kw)
    return Application(**fields)  # type: ignore[arg-type]


def test_who_may_see_an_application() -> None:
    head = ApplicationHead(applicant="organisations/o", submitted_by="partners/p",
                           agency="agencies/x", version=3)
    acting = auth.Principal(subject="persons/b", kind=auth.PERSON, acting_for="organisations/o")
    partner = auth.Principal(subject="partners/p", kind=auth.PARTNER)
    stranger = auth.Principal(subject="persons/c", kind=auth.PERSON)
    official = auth.Principal(subject="persons/d", kind=auth.OFFICIAL, agency="agencies/y")
    assert domain.may_see(acting, head, lambda: False)
    assert domain.may_see(partner, head, lambda: False)
    assert not domain.may_see(stranger, head, lambda: True)
    assert not domain.may_see(official, head, lambda: False)
    assert domain.may_see(official, head, lambda: True)  # their agency holds one of its tasks
    with pytest.raises(NotFound):
        domain.require_party(official, head, "applications/a1")


def test_one_result_per_holder_names_the_earlier_application_only_to_its_parties() -> None:
    from services.matters.domain.definition import MatterSpec

    spec = MatterSpec(code="m", version=1, display_name="Card", agency="agencies/x",
                      applicant_kind="person", legal_limit_days=5, promised_limit_days=3,
                      assurance_level="real_name")
    me = auth.Principal(subject="persons/a", kind=auth.PERSON)
    domain.refuse_if_held(me, spec, "persons/a", None)
    with pytest.raises(FailedPrecondition) as mine:
        domain.refuse_if_held(me, spec, "persons/a", app())
    assert mine.value.metadata["application"] == "applications/a1"
    partner = auth.Principal(subject="partners/q", kind=auth.PARTNER,
                             scopes=(auth.SCOPE_APP_SUBMIT,))
    with pytest.raises(FailedPrecondition) as theirs:
        domain.refuse_if_held(partner, spec, "persons/a", app())
    assert "application" not in theirs.value.metadata


def test_statistics_count_on_time_days_and_ratings() -> None:
    start = dt.datetime(2026, 3, 2, 9, tzinfo=UTC)  # a Monday
    decided = [app(status="COMPLETED", decided_time=start + dt.timedelta(days=2),
                   due_time=start + dt.timedelta(days=3), rating=4),
               app(id="a2", status="REJECTED", decided_time=start + dt.timedelta(days=7),
                   due_time=start + dt.timedelta(days=3))]
    counts = [statistics.StatusCount("m", "agencies/x", "COMPLETED", 1),
              statistics.StatusCount("m", "agencies/x", "REJECTED", 1)]
    (item,) = statistics.compute(counts, decided, wd.Calendar("CN", []))
    assert item.matter == "matters/m" and item.decided == 2
    assert item.counts == {"COMPLETED": 1, "REJECTED": 1}
    assert item.on_time_rate == 0.5 and item.average_rating == 4.0
    with pytest.raises(Exception, match="own agency"):
        statistics.scope(auth.Principal(subject="persons/d", kind=auth.OFFICIAL,
                                        agency="agencies/y"), {"agency": "agencies/x"})
