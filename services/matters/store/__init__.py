"""Matters' data: the tables (``tables``; Alembic migrations in ``../migrations``) and one
repository module per aggregate — typed functions that take plain values and return the
domain's dataclasses; how each one talks to the database (ORM session, Core statement,
``Prepared``) is its private business:

- ``matters``       published matter versions (the catalogue)
- ``applications``  applications and their timelines: submission, the workflow's event
                    writes, ratings, the reads behind GetApplication and ListApplications,
                    the figures behind GetStatistics
- ``tasks``         officers' tasks: the workflow's writes and the inbox
- ``audit``         the decisions audit chain
- ``caches``        every cache of the service and the rule that keeps each one correct
- calendar years are in ``services/matters/calendars.py`` (``CalendarStore``)

The table classes are re-exported here for migrations, tools and tests that write rows
directly; service code goes through the repository functions.
"""

from services.matters.store.tables import (
    ApplicationEventRow,
    ApplicationRow,
    AuditEntryRow,
    AuditHeadRow,
    CalendarYearRow,
    InboxVersionRow,
    MatterVersionRow,
    SubmissionRateRow,
    TaskRow,
    metadata,
    utcnow,
)

__all__ = ["ApplicationEventRow", "ApplicationRow", "AuditEntryRow", "AuditHeadRow",
           "CalendarYearRow", "InboxVersionRow", "MatterVersionRow", "SubmissionRateRow",
           "TaskRow", "metadata", "utcnow"]
