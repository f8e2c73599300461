"""Applications and tasks as plain data, and the rules about them: who is a party to an
application, who may see it, who may submit for whom, one result per holder, a
request_id names one request, ratings, and the order a task's status moves in.

Nothing here touches gRPC, the database or Temporal: the store returns these dataclasses,
the use cases apply these rules, the servicer turns the dataclasses into messages.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Callable, Sequence
from typing import NamedTuple, Protocol

from govflow import auth
from govflow.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from services.matters.domain.definition import MatterSpec
from workflows.models import TaskRecord

# Where an application may end.
TERMINAL = frozenset({"COMPLETED", "REJECTED", "WITHDRAWN", "FAILED", "REVOKED"})
# Statuses that carry a decision (the first one's time is the application's decided_time).
DECIDED_STATUSES = frozenset({"APPROVED", "COMPLETED", "REJECTED", "REVOKED"})
# An application whose result is gone, or never came: its holder may apply again.
RESULT_GONE = ("REJECTED", "WITHDRAWN", "FAILED", "REVOKED")
# Tasks move only forward: OPEN -> CLAIMED -> DECIDED or CANCELLED. A write of a task with
# the status on the left applies only while the stored task has one on the right.
TASK_MAY_BECOME: dict[str, tuple[str, ...]] = {
    "OPEN": ("OPEN",), "CLAIMED": ("OPEN", "CLAIMED"),
    "DECIDED": ("OPEN", "CLAIMED"), "CANCELLED": ("OPEN", "CLAIMED")}


def aware(t: dt.datetime | None) -> dt.datetime | None:
    """``t`` in UTC when stored without a zone (SQLite keeps none)."""
    if t is None:
        return None
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


def split_list(text: str) -> list[str]:
    """A stored comma-separated list ("" or "-" for none)."""
    return [x for x in text.split(",") if x and x != "-"]


@dataclasses.dataclass(frozen=True, slots=True)
class Application:
    """One application as the read model holds it (fields in the table's column order;
    lists as stored: comma-separated text, ``reasons`` and ``receipt_json`` as JSON)."""

    id: str
    matter_code: str
    matter_version: int
    agency: str
    applicant: str
    submitted_by: str
    request_id: str
    status: str
    create_time: dt.datetime
    update_time: dt.datetime
    due_time: dt.datetime | None
    overdue: bool
    result_certificate: str
    receipt_json: str
    current_steps: str
    workflow_started: bool
    parent_id: str | None
    missing_materials: str
    supplement_due_time: dt.datetime | None
    pledges: str
    result_certificates: str
    rating: int
    rating_comment: str
    decided_time: dt.datetime | None
    due_provisional: bool
    reasons: str
    interested: str
    version: int
    delegation: str


class ApplicationHead(NamedTuple):
    """What every read of an application checks first: its parties and its version (a
    named tuple: made on every GetApplication, where a frozen dataclass costs more)."""

    applicant: str
    submitted_by: str
    agency: str
    version: int


@dataclasses.dataclass(frozen=True, slots=True)
class TimelineEvent:
    event_id: str
    kind: str
    message: str  # Simplified Chinese
    time: dt.datetime
    status: str
    actor: str
    message_en: str = ""  # English, beside it ("" on events recorded before)


@dataclasses.dataclass(frozen=True, slots=True)
class Progress:
    """What the workflow records (RecordApplicationEvent): a timeline event and the
    application's new values, each None (or False) when unchanged. Lists are stored as
    text: ``reasons`` a JSON list, ``interested`` as ``,a,b,``, the others ``a,b``."""

    event_id: str
    kind: str
    message: str
    time: dt.datetime
    actor: str
    status: str = ""
    message_en: str = ""
    result_certificate: str | None = None
    overdue: bool = False
    due_time: dt.datetime | None = None
    due_provisional: bool = False
    reasons: str | None = None
    interested: str | None = None
    current_steps: str | None = None
    missing_materials: str | None = None
    result_certificates: str | None = None
    supplement_due_time: dt.datetime | None = None
    receipt_json: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class ApplicationData:
    """One application as read: its row, its timeline in order, its children's ids."""

    application: Application
    events: Sequence[TimelineEvent]
    children: list[str]


@dataclasses.dataclass(frozen=True, slots=True)
class Task:
    """An officer's task as the read model holds it (``reasons`` a JSON list), or as the
    workflow answered an Update (``task_from_record``)."""

    name: str
    application_id: str
    matter: str
    step: str
    display_name: str
    role: str
    agency: str
    status: str
    assignee: str
    due_time: dt.datetime | None
    overdue: bool
    decision: str
    create_time: dt.datetime | None
    update_time: dt.datetime | None
    kind: str
    reasons: str
    workflow_id: str
    due_provisional: bool


def task_from_record(t: TaskRecord) -> Task:
    """The task as the workflow answered an Update (its due time as it stands; the
    answer carries no creation or update time)."""
    return Task(name=t.name, application_id=t.application_id, matter=t.matter, step=t.step,
                display_name=t.display_name, role=t.role, agency=t.agency, status=t.status,
                assignee=t.assignee,
                due_time=dt.datetime.fromisoformat(t.due_time) if t.due_time else None,
                overdue=t.overdue, decision=t.decision, create_time=None, update_time=None,
                kind=t.kind, reasons=json.dumps(t.reasons) if t.reasons else "",
                workflow_id=t.workflow_id, due_provisional=t.due_provisional)


@dataclasses.dataclass(frozen=True, slots=True)
class MatterVersion:
    """One published version of a matter's definition."""

    code: str
    version: int
    agency: str
    display_name: str
    definition_yaml: str
    spec: MatterSpec
    fingerprint: str


class HasParties(Protocol):
    @property
    def applicant(self) -> str: ...
    @property
    def submitted_by(self) -> str: ...
    @property
    def agency(self) -> str: ...


# ------------------------------------------------------------------ who may see what
def is_party(p: auth.Principal, app: HasParties) -> bool:
    """The one ownership check: ``p`` is the application's applicant, the person acting
    for it (the organisation their token acts for), or its submitter."""
    return app.applicant in (p.subject, p.acting_for) or app.submitted_by == p.subject


def may_see(p: auth.Principal, app: HasParties, has_task_of_agency: Callable[[], bool]) -> bool:
    """Whether ``p`` may read the application: services and admins, its parties
    (``is_party``), officials of its agency, and officials of an agency holding one of its
    tasks (``has_task_of_agency`` asks, only when it matters)."""
    if p.kind == auth.SERVICE or p.is_admin and p.kind != auth.OFFICIAL:
        return True
    if is_party(p, app):
        return True
    if p.kind == auth.OFFICIAL:
        return bool(app.agency == p.agency or has_task_of_agency())
    return False


def require_party(p: auth.Principal, app: HasParties, name: str) -> None:
    """Applicant actions (withdraw, supply, rate) are for the application's parties; to
    anyone else it is not there (NOT_FOUND, as for a missing one)."""
    if not is_party(p, app):
        raise NotFound(f"{name} not found", reason="APPLICATION_NOT_FOUND")


# ------------------------------------------------------------------ submission
def submission_request(p: auth.Principal, *, matter: str, applicant: str,
                       request_id: str) -> tuple[str, str]:
    """Checks a SubmitApplication request and who may make it: yourself or the
    organisation your token acts for; a partner with ``applications.submit`` on behalf of
    a named applicant. Returns the matter's code and the applicant."""
    problems: dict[str, str] = {}
    if not matter.startswith("matters/"):
        problems["matter"] = "must be matters/{code}"
    if not request_id or len(request_id) > 128:
        problems["request_id"] = "required, at most 128 characters"
    if applicant and not applicant.startswith(("organisations/", "persons/")):
        problems["applicant"] = "must be persons/{id} or organisations/{id}"
    if problems:
        raise InvalidArgument(fields=problems)
    if p.kind == auth.PERSON or p.kind == auth.OFFICIAL:
        applicant = applicant or p.subject
        if applicant != p.subject and applicant != p.acting_for:
            raise PermissionDenied("you may apply only for yourself or an organisation "
                                   "your token acts for", reason="NOT_YOUR_APPLICANT")
    elif p.has_scope(auth.SCOPE_APP_SUBMIT):
        if not applicant:
            raise InvalidArgument(fields={"applicant": "required when submitting on behalf"})
    else:
        raise PermissionDenied("this caller may not submit applications",
                               reason="MISSING_SCOPE")
    return matter.removeprefix("matters/"), applicant


def same_request(app: Application, request_id: str, *, matter_code: str, applicant: str,
                 pledges: list[str]) -> None:
    """AIP-155: a request_id names one request. Sent again with that request, it gets the
    application the first made; sent with another (another matter, applicant or pledges),
    it is refused — INVALID_ARGUMENT on ``request_id`` (REQUEST_ID_REUSED), naming the
    application it was used for (the caller's own: ids are per submitter)."""
    differs = [what for what, same in (("matter", app.matter_code == matter_code),
                                       ("applicant", app.applicant == applicant),
                                       ("pledges", app.pledges == ",".join(pledges)))
               if not same]
    if differs:
        raise InvalidArgument(
            f"request_id {request_id} was already used for applications/{app.id}, a request "
            f"with another {' and '.join(differs)}; send a new request_id for a new "
            "application", fields={"request_id": "already used for a different request"},
            reason="REQUEST_ID_REUSED", metadata={"application": f"applications/{app.id}"})


def applicant_kind(applicant: str) -> str:
    return "organisation" if applicant.startswith("organisations/") else "person"


def check_applicant_kind(spec: MatterSpec, applicant: str, *, in_life_event: bool = False) -> None:
    """A matter is for persons or for organisations (WRONG_APPLICANT_KIND)."""
    kind = applicant_kind(applicant)
    if spec.applicant_kind == kind:
        return
    if in_life_event:
        raise FailedPrecondition(f"{spec.display_name} in this life event is for a "
                                 f"{spec.applicant_kind}", reason="WRONG_APPLICANT_KIND")
    raise FailedPrecondition(f"{spec.display_name} is for a {spec.applicant_kind}, "
                             f"not a {kind}", reason="WRONG_APPLICANT_KIND")


def check_pledges(specs: Sequence[MatterSpec], pledges: list[str]) -> None:
    """Only materials that allow a pledge may be pledged (in any matter of a life event)."""
    pledgeable = {m.code for c in specs for m in c.materials if m.pledge_allowed}
    bad = [c for c in pledges if c not in pledgeable]
    if bad:
        raise InvalidArgument(fields={"pledges": f"no pledge allowed for {', '.join(bad)}; "
                                      f"allowed: {', '.join(sorted(pledgeable)) or 'none'}"})


def holding_key(spec: MatterSpec, applicant: str) -> str:
    """What submissions that could take the same one-per-holder result share."""
    return f"{spec.code} {applicant}"


def refuse_if_held(p: auth.Principal, spec: MatterSpec, applicant: str,
                   earlier: Application | None) -> None:
    """One result per holder (``spec.one_per_holder``): refuses the submission with
    FAILED_PRECONDITION (RESULT_ALREADY_HELD) while ``earlier`` — the applicant's oldest
    application for the matter whose status is not in RESULT_GONE — exists. The earlier
    application is named to a caller who may see it (a party to it); to a partner that
    did not submit it, only its existence."""
    if earlier is None:
        return
    shown = may_see(p, earlier, lambda: False)
    which = f"applications/{earlier.id}" if shown else "an earlier application"
    state = ("completed, and its result stands" if earlier.status == "COMPLETED"
             else f"still open ({earlier.status.lower()})")
    who = "You" if applicant == p.subject else applicant
    raise FailedPrecondition(
        f"{who} already applied for the {spec.name_en} in {which}, {state}; one "
        "is held at a time: apply again once that application is withdrawn, rejected, "
        "failed or revoked", reason="RESULT_ALREADY_HELD",
        metadata={"matter": f"matters/{spec.code}",
                  **({"application": f"applications/{earlier.id}"} if shown else {})})


def submitted_message(spec: MatterSpec, parent_id: str | None) -> tuple[str, str]:
    """The first line of a timeline: in Simplified Chinese and in English."""
    zh, en = f"已提交{spec.display_name}申请", f"Submitted for {spec.name_en}"
    if parent_id:
        zh += f"（一件事 applications/{parent_id} 的一项）"
        en += f" (part of applications/{parent_id})"
    return zh, en


# ------------------------------------------------------------------ applicant actions
def check_not_in_life_event(app: Application) -> None:
    """A matter inside a life event is acted on through the life event."""
    if app.parent_id:
        raise FailedPrecondition("this matter is part of a life event; act on "
                                 f"applications/{app.parent_id}", reason="PART_OF_LIFE_EVENT")


def check_rating(score: int, comment: str) -> None:
    problems = {}
    if not 1 <= score <= 5:
        problems["score"] = "must be 1 to 5"
    if len(comment) > 2000:
        problems["comment"] = "at most 2000 characters"
    if problems:
        raise InvalidArgument(fields=problems)


def check_may_rate(app: Application) -> None:
    """Rated once, after the end."""
    if app.status not in TERMINAL:
        raise FailedPrecondition("rate the application once it has ended",
                                 reason="APPLICATION_NOT_ENDED")
    if app.rating:
        raise FailedPrecondition("the application is already rated", reason="ALREADY_RATED")


def needs_follow_up(score: int) -> bool:
    """A rating of 1 or 2 starts a follow-up by the agency's supervisor."""
    return score <= 2


# ------------------------------------------------------------------ officers
def check_official(p: auth.Principal) -> None:
    if p.kind != auth.OFFICIAL:
        raise PermissionDenied("only officials act on tasks", reason="OFFICIALS_ONLY")
