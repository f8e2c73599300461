"""The typed keys of the search attributes the application workflow sets (names and types
in workflows/models.py SEARCH_ATTRIBUTES), and the set an application's workflow starts
with. Pure: passed through the sandbox."""

from __future__ import annotations

import datetime as dt

from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes

from workflows.models import (
    SA_AGENCY,
    SA_APPLICANT,
    SA_DUE_PROVISIONAL,
    SA_DUE_TIME,
    SA_MATTER,
    SA_OVERDUE,
    SA_STATUS,
    ApplicationInput,
)

STATUS_KEY = SearchAttributeKey.for_keyword(SA_STATUS)
DUE_KEY = SearchAttributeKey.for_datetime(SA_DUE_TIME)
OVERDUE_KEY = SearchAttributeKey.for_bool(SA_OVERDUE)
MATTER_KEY = SearchAttributeKey.for_keyword(SA_MATTER)
AGENCY_KEY = SearchAttributeKey.for_keyword(SA_AGENCY)
APPLICANT_KEY = SearchAttributeKey.for_keyword(SA_APPLICANT)
PROVISIONAL_KEY = SearchAttributeKey.for_bool(SA_DUE_PROVISIONAL)


def at_start(inp: ApplicationInput) -> TypedSearchAttributes:
    """Every attribute an application's workflow starts with (by the matters service, or
    by a life event for its bundled matters), so `GovflowOverdue = false` finds the
    applications that are not overdue."""
    return TypedSearchAttributes([
        SearchAttributePair(MATTER_KEY, inp.matter.code),
        SearchAttributePair(AGENCY_KEY, inp.matter.agency),
        SearchAttributePair(APPLICANT_KEY, inp.applicant),
        SearchAttributePair(STATUS_KEY, "SUBMITTED"),
        SearchAttributePair(DUE_KEY, dt.datetime.fromisoformat(inp.due_time)),
        SearchAttributePair(OVERDUE_KEY, False),
        SearchAttributePair(PROVISIONAL_KEY, inp.due_provisional),
    ])
