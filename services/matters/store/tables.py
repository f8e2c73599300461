"""Matters' tables: published matter versions and the read model of applications,
timelines and officer tasks (written by the workflow's activities)."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlmodel import Field, Index, SQLModel, UniqueConstraint

from govflow.audit import AuditEntryBase, AuditHeadBase

metadata = SQLModel.metadata


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class MatterVersionRow(SQLModel, table=True):
    __tablename__ = "matter_versions"
    __table_args__ = (UniqueConstraint("code", "version"),)
    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(index=True)
    version: int
    agency: str = Field(index=True)
    display_name: str
    definition_yaml: str
    spec_json: str
    fingerprint: str
    publish_time: dt.datetime = Field(default_factory=utcnow)


class ApplicationRow(SQLModel, table=True):
    __tablename__ = "applications"
    __table_args__ = (
        UniqueConstraint("submitted_by", "request_id"),
        Index("ix_applications_agency_status", "agency", "status"),
        Index("ix_applications_applicant_created", "applicant", "create_time"),
        # Officials' lists: their agency, newest first, optionally by matter and status,
        # read a page off the index instead of sorting every match (govflow bench, fig. 6).
        Index("ix_applications_agency_created", "agency", "create_time"),
        Index("ix_applications_agency_matter_status_created", "agency", "matter_code", "status",
              "create_time"),
    )
    id: str = Field(primary_key=True)
    matter_code: str = Field(index=True)
    matter_version: int
    agency: str
    applicant: str
    submitted_by: str
    request_id: str
    status: str = "SUBMITTED"
    create_time: dt.datetime = Field(default_factory=utcnow)
    update_time: dt.datetime = Field(default_factory=utcnow)
    due_time: dt.datetime | None = None
    overdue: bool = False
    result_certificate: str = ""
    receipt_json: str = ""
    current_steps: str = ""
    workflow_started: bool = False
    parent_id: str | None = Field(default=None, index=True)
    missing_materials: str = ""
    supplement_due_time: dt.datetime | None = None
    pledges: str = ""
    result_certificates: str = ""
    rating: int = 0
    rating_comment: str = ""
    decided_time: dt.datetime | None = None
    # True while due_time reaches into a year with no published calendar.
    due_provisional: bool = Field(default=False, sa_column_kwargs={"server_default": sa.false()})
    # Why it ended (rejected, withdrawn, failed, revoked): a JSON list, "" while open.
    reasons: str = Field(default="", sa_column_kwargs={"server_default": ""})
    # Persons who may not decide its tasks besides applicant and submitter, as
    # ",persons/a,persons/b," (the inbox leaves their tasks out); "" when none.
    interested: str = Field(default="", sa_column_kwargs={"server_default": ""})
    # Bumped by triggers (see migration a3c1e07d5b21) on every write to the row, its
    # timeline or its children: what GetApplication's response cache is checked against.
    # Never written by the application.
    version: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    # The applicant's delegation a partner submitted it under
    # (persons/{p}/delegations/{d} or organisations/{o}/delegations/{d}); "" otherwise.
    delegation: str = Field(default="", sa_column_kwargs={"server_default": ""})


class ApplicationEventRow(SQLModel, table=True):
    __tablename__ = "application_events"
    __table_args__ = (UniqueConstraint("application_id", "event_id"),)
    id: int | None = Field(default=None, primary_key=True)
    application_id: str = Field(index=True)
    event_id: str
    kind: str
    message: str  # Simplified Chinese (English on events recorded before message_en)
    time: dt.datetime
    status: str = ""
    actor: str = "system"
    message_en: str = Field(default="", sa_column_kwargs={"server_default": ""})


class TaskRow(SQLModel, table=True):
    __tablename__ = "tasks"
    __table_args__ = (
        Index("ix_tasks_agency_role_status", "agency", "role", "status"),
        # Inboxes are ordered by due time: a page comes off this index without a sort.
        Index("ix_tasks_agency_role_status_due", "agency", "role", "status", "due_time", "name"),
    )
    name: str = Field(primary_key=True)
    application_id: str = Field(index=True)
    matter: str
    step: str
    display_name: str
    role: str
    agency: str
    status: str
    assignee: str = ""
    due_time: dt.datetime | None = None
    overdue: bool = False
    decision: str = ""
    create_time: dt.datetime = Field(default_factory=utcnow)
    update_time: dt.datetime = Field(default_factory=utcnow)
    kind: str = "step"
    reasons: str = ""  # JSON list
    workflow_id: str = ""
    due_provisional: bool = Field(default=False, sa_column_kwargs={"server_default": sa.false()})


class CalendarYearRow(SQLModel, table=True):
    """One published year of a region's working-day calendar (services/matters/working_days.py).
    Written by PublishCalendarYear and by seeding from the chinese-calendar package; the
    audit chain records each publication."""

    __tablename__ = "calendar_years"
    region: str = Field(primary_key=True)
    year: int = Field(primary_key=True)
    holidays_json: str  # {"YYYY-MM-DD": "name", ...}
    working_days_json: str  # {"YYYY-MM-DD": "name", ...}
    source: str = ""
    published_by: str = "system"
    publish_time: dt.datetime = Field(default_factory=utcnow)
    revision: int = 1


class InboxVersionRow(SQLModel, table=True):
    """Bumped by triggers (migration d41b7e2c9a60) on every write to a task of the agency:
    an inbox page built at a version is current while the version stays."""

    __tablename__ = "inbox_versions"
    agency: str = Field(primary_key=True)
    version: int = 0


class AuditEntryRow(AuditEntryBase, table=True):
    """This service's tamper-evident audit chain (govflow/audit.py)."""

    __tablename__ = "decision_audit_log"


class AuditHeadRow(AuditHeadBase, table=True):
    __tablename__ = "decision_audit_heads"


class SubmissionRateRow(SQLModel, table=True):
    """Calls per key in one fixed window (govflow/ratelimit.py), shared by all replicas."""

    __tablename__ = "submission_rate_limits"
    key: str = Field(primary_key=True)  # submit:{caller}
    window_start: int = Field(primary_key=True, index=True, sa_type=sa.BigInteger)  # Unix s
    count: int = 0
