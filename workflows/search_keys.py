"""The typed keys of the search attributes the application workflow sets (names and types
in workflows/models.py SEARCH_ATTRIBUTES). Immutable: passed through the sandbox."""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

from workflows.models import (
    SA_AGENCY,
    SA_APPLICANT,
    SA_DUE_PROVISIONAL,
    SA_DUE_TIME,
    SA_MATTER,
    SA_OVERDUE,
    SA_STATUS,
)

STATUS_KEY = SearchAttributeKey.for_keyword(SA_STATUS)
DUE_KEY = SearchAttributeKey.for_datetime(SA_DUE_TIME)
OVERDUE_KEY = SearchAttributeKey.for_bool(SA_OVERDUE)
MATTER_KEY = SearchAttributeKey.for_keyword(SA_MATTER)
AGENCY_KEY = SearchAttributeKey.for_keyword(SA_AGENCY)
APPLICANT_KEY = SearchAttributeKey.for_keyword(SA_APPLICANT)
PROVISIONAL_KEY = SearchAttributeKey.for_bool(SA_DUE_PROVISIONAL)
