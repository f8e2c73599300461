"""The data the workflow, its activities and the matters service exchange.

Plain dataclasses (Temporal's default JSON converter handles them). Fields may be added
with defaults; never removed or renamed, so running workflows keep replaying.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

TASK_QUEUE = "govflow-applications"
# China Standard Time (no daylight saving): the day a rule's "today" falls on.
CHINA_TZ = dt.timezone(dt.timedelta(hours=8), "CST")
WORKFLOW_ID_PREFIX = "application-"

# Search attributes admins filter on in the Temporal UI (registered at start).
SA_MATTER = "GovflowMatter"
SA_AGENCY = "GovflowAgency"
SA_APPLICANT = "GovflowApplicant"
SA_STATUS = "GovflowStatus"
SA_DUE_TIME = "GovflowDueTime"
SA_OVERDUE = "GovflowOverdue"
# True while a time limit of the application reaches into a year with no published calendar.
SA_DUE_PROVISIONAL = "GovflowDueProvisional"
SEARCH_ATTRIBUTES = {
    SA_MATTER: "Keyword",
    SA_AGENCY: "Keyword",
    SA_APPLICANT: "Keyword",
    SA_STATUS: "Keyword",
    SA_DUE_TIME: "Datetime",
    SA_OVERDUE: "Bool",
    SA_DUE_PROVISIONAL: "Bool",
}


def workflow_id(application_id: str) -> str:
    return f"{WORKFLOW_ID_PREFIX}{application_id}"


@dataclasses.dataclass
class MaterialSpec:
    code: str
    display_name: str
    certificate_types: list[str] = dataclasses.field(default_factory=list)
    required: bool = True
    upload_allowed: bool = False
    pledge_allowed: bool = False
    display_name_en: str = ""  # the English name, for English messages ("" = none given)

    @property
    def name_en(self) -> str:
        return self.display_name_en or self.display_name


@dataclasses.dataclass
class StepSpec:
    code: str
    display_name: str
    role: str
    agencies: list[str]
    time_limit_days: int
    quorum: str = "all"  # all | any
    display_name_en: str = ""

    @property
    def name_en(self) -> str:
        return self.display_name_en or self.display_name


@dataclasses.dataclass
class RuleSpec:
    id: str
    description: str
    fact: str
    op: str
    value: Any = None


@dataclasses.dataclass
class BundleItem:
    matter: str  # matter code
    after: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class MatterSpec:
    code: str
    version: int
    display_name: str
    agency: str
    applicant_kind: str  # person | organisation
    legal_limit_days: int
    promised_limit_days: int
    assurance_level: str = "real_name"
    materials: list[MaterialSpec] = dataclasses.field(default_factory=list)
    steps: list[StepSpec] = dataclasses.field(default_factory=list)
    instant_approval: bool = False
    instant_rules: list[RuleSpec] = dataclasses.field(default_factory=list)
    result_certificate_type: str = ""
    # Result certificate fields: "=fact.path" takes a fact, anything else is literal.
    result_fields: dict[str, str] = dataclasses.field(default_factory=dict)
    result_validity_days: int = 0
    calendar: str = "CN"
    # Working days the applicant has to answer a supplement request.
    supplement_limit_days: int = 5
    # Pledge path: working days after approval when the pledged materials are checked,
    # and what happens to the result if they are still missing (revoke or suspend).
    pledge_check_days: int = 20
    pledge_failure: str = "revoke"
    # Life event (一件事): the bundled matter codes, each with the codes it must follow.
    bundle: list[BundleItem] = dataclasses.field(default_factory=list)
    # One result per holder (e.g. the senior card): the matters service refuses a second
    # application while an earlier one is open or its result stands.
    one_per_holder: bool = False
    display_name_en: str = ""

    @property
    def name_en(self) -> str:
        return self.display_name_en or self.display_name

    @property
    def rule_version(self) -> str:
        return f"matters/{self.code}@v{self.version}"


@dataclasses.dataclass
class ChildApplication:
    application_id: str
    matter: MatterSpec
    after: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class ApplicationInput:
    application_id: str
    matter: MatterSpec
    applicant: str  # persons/... or organisations/...
    submitted_by: str  # persons/... (or partners/...)
    request_id: str
    submitted_at: str  # ISO 8601, from the service (workflow time may differ slightly)
    pledges: list[str] = dataclasses.field(default_factory=list)
    parent_id: str = ""
    # Life events: the applications of the bundled matters, created with the parent.
    children: list[ChildApplication] = dataclasses.field(default_factory=list)
    # The promised due time (ISO 8601), counted by the matters service at submission on
    # the calendar as published then; provisional when it reaches into a year with no
    # published calendar. Empty for a bundled matter: its workflow asks due_times.
    due_time: str = ""
    due_provisional: bool = False


@dataclasses.dataclass
class ApplicationResult:
    status: str
    result_certificate: str = ""
    reasons: list[str] = dataclasses.field(default_factory=list)
    result_certificates: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Event:
    """One timeline event to record in the read model."""

    application_id: str
    event_id: str
    kind: str
    message: str  # Simplified Chinese, the primary language
    time: str  # ISO 8601
    status: str = ""  # ApplicationStatus name without prefix, or "" to keep
    actor: str = "system"
    receipt: dict[str, Any] | None = None
    result_certificate: str = ""
    current_steps: list[str] | None = None
    due_time: str = ""
    overdue: bool = False
    missing_materials: list[str] | None = None
    supplement_due_time: str = ""
    result_certificates: list[str] | None = None
    due_provisional: bool = False  # with due_time
    reasons: list[str] | None = None  # why it ended, with a final status
    interested: list[str] | None = None  # persons who may not decide its tasks
    message_en: str = ""  # the message in English, beside it


@dataclasses.dataclass
class DueQuery:
    """A limit to count: ``days`` working days after ``start`` (ISO 8601)."""

    start: str
    days: int


@dataclasses.dataclass
class DueRequest:
    region: str
    queries: list[DueQuery]


@dataclasses.dataclass
class DueAnswer:
    time: str  # ISO 8601, UTC
    provisional: bool
    missing_years: list[int] = dataclasses.field(default_factory=list)


# Identity assurance levels, weakest first.
ASSURANCE_ORDER = {"account": 1, "real_name": 2, "face": 3}


def assurance_meets(level: str, needed: str) -> bool:
    """Whether an identity established at ``level`` is enough for ``needed`` ("" or an
    unknown level needs nothing)."""
    return ASSURANCE_ORDER.get(level, 0) >= ASSURANCE_ORDER.get(needed, 0)


@dataclasses.dataclass
class ApplicantFacts:
    subject: str
    kind: str
    display_name: str
    assurance_level: str
    birth_date: str = ""  # persons only
    credit_code: str = ""  # organisations only
    # Persons with an interest in the application besides the submitter: for an
    # organisation, its legal representative and everyone authorised to act for it when
    # the application was submitted. None of them may decide its tasks.
    interested: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class PulledCertificate:
    name: str
    type: str
    fields: dict[str, str]
    valid: bool
    failures: list[str] = dataclasses.field(default_factory=list)
    # The certificate's state when it is not active (SUSPENDED, REVOKED, EXPIRED): the
    # holder has one of the type, but none usable.
    state: str = ""


@dataclasses.dataclass
class PullRequest:
    application_id: str
    holder: str
    certificate_types: list[str]
    purpose: str


@dataclasses.dataclass
class GatherRequest:
    """What the gather activity collects in one call: the applicant's identity (when
    ``applicant`` is set) and then, if it meets ``assurance_needed``, a pull of each
    material in ``pulls`` (by material code)."""

    application_id: str
    pulls: dict[str, PullRequest]
    applicant: str = ""
    submitted_by: str = ""
    assurance_needed: str = ""


@dataclasses.dataclass
class Gathered:
    # None when no applicant was asked for.
    applicant: ApplicantFacts | None
    # By material code; None: no certificate held (or the applicant's identity fell
    # short of the matter's assurance level, and nothing was pulled).
    materials: dict[str, PulledCertificate | None]


@dataclasses.dataclass
class IssueRequest:
    application_id: str
    request_id: str
    certificate_type: str
    holder: str
    fields: dict[str, str]
    validity_days: int = 0
    # Pending timeline events, recorded with issued_event once the certificate is issued.
    events: list[Event] = dataclasses.field(default_factory=list)
    # Recorded once it is issued, naming the certificate (issued_message).
    issued_event: Event | None = None
    # When the application ends with the issue: its end (FinishRequest) in the same call.
    finish: FinishRequest | None = None


def issued_message(certificate: str) -> tuple[str, str]:
    """The certificate_issued event's message: (Chinese, English)."""
    return (f"结果证照 {certificate} 已签发至电子证照夹",
            f"Result certificate {certificate} issued to the wallet")


def released_message(released: int) -> tuple[str, str]:
    """The consent_released event's message: (Chinese, English)."""
    return (f"{released} 项证照调用授权已随本申请结束",
            f"{released} certificate access grant(s) made for this application ended")


@dataclasses.dataclass
class FinishRequest:
    """The end of an application: its certificate grants released (``release``), then
    ``events`` recorded with, last, ``released_event`` when given (its message names how
    many grants ended)."""

    application_id: str
    release: bool
    events: list[Event] = dataclasses.field(default_factory=list)
    released_event: Event | None = None


@dataclasses.dataclass
class TaskRecord:
    """An officer task as the workflow knows it (and writes to the read model)."""

    name: str  # tasks/{application}-{step}-{agency}
    application_id: str
    matter: str
    step: str
    display_name: str
    role: str
    agency: str
    status: str  # OPEN | CLAIMED | DECIDED | CANCELLED
    due_time: str
    assignee: str = ""
    decision: str = ""
    reasons: list[str] = dataclasses.field(default_factory=list)
    overdue: bool = False
    create_time: str = ""
    kind: str = "step"  # step | follow_up
    workflow_id: str = ""
    due_provisional: bool = False


@dataclasses.dataclass
class OfficerAction:
    """An officer's claim or decision, sent to the workflow as an Update."""

    task: str
    officer: str  # persons/...
    agency: str  # agencies/... of the officer's token
    roles: list[str]
    decision: str = ""  # APPROVE | REJECT | REQUEST_SUPPLEMENT (decide only)
    reasons: list[str] = dataclasses.field(default_factory=list)
    missing_materials: list[str] = dataclasses.field(default_factory=list)
    assignee: str = ""  # reassign only: the new assignee


@dataclasses.dataclass
class ApplicantAction:
    """The applicant's withdrawal or supply of materials, sent as an Update."""

    caller: str  # persons/... (or partners/... submitting on behalf)
    acting_for: str = ""
    reason: str = ""
    materials: list[SuppliedMaterial] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class SuppliedMaterial:
    code: str
    certificate: str = ""
    upload_uri: str = ""
    upload_sha256: str = ""


@dataclasses.dataclass
class StatusChange:
    certificate: str
    status: str  # SUSPENDED | REVOKED
    reason: str


@dataclasses.dataclass
class FollowUpInput:
    application_id: str
    matter: str
    agency: str
    score: int
    comment: str
    applicant: str
    due_time: str = ""
    due_provisional: bool = False
