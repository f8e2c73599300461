"""Activities: the only workflow code that does I/O. Each reaches a service over gRPC with
the worker's own service identity, and every side effect carries an idempotency key
derived from the workflow id and the step, so a retry after a crash is harmless."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import grpc
from google.protobuf import timestamp_pb2
from grpc_status import rpc_status
from temporalio import activity
from temporalio.exceptions import ApplicationError

from govflow import log
from govflow.certificates.v1 import certificates_pb2 as cpb
from govflow.certificates.v1 import certificates_pb2_grpc
from govflow.errors import error_info
from govflow.identity.v1 import identity_pb2 as ipb
from govflow.identity.v1 import identity_pb2_grpc
from govflow.matters.v1 import matters_pb2 as mpb
from govflow.matters.v1 import matters_pb2_grpc
from govflow.service_client import ServiceToken
from workflows.models import (
    ApplicantFacts,
    DueAnswer,
    DueRequest,
    Event,
    FinishRequest,
    Gathered,
    GatherRequest,
    IssueRequest,
    PulledCertificate,
    PullRequest,
    StatusChange,
    TaskRecord,
    assurance_meets,
    issued_message,
    released_message,
)

# Codes that will not get better by retrying: fail the activity for good.
FINAL_CODES = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.ALREADY_EXISTS,
}
_ASSURANCE = {1: "account", 2: "real_name", 3: "face"}
# Events a RecordApplicationEvents call carries at most (the service takes 100).
MAX_EVENTS_PER_CALL = 100
# The purpose of the grants the worker makes, and states when it reads under them.
CONSENT_PURPOSE = "application-processing"

logger = log.get_logger("govflow.activities")


def _error_info(err: grpc.aio.AioRpcError) -> dict[str, object]:
    """The ErrorInfo of a rich status (reason and metadata), or an empty dict."""
    status = rpc_status.from_call(err)
    info = error_info(status) if status is not None else None
    return {"reason": info.reason, "metadata": dict(info.metadata)} if info is not None else {}


def _ts(iso: str) -> timestamp_pb2.Timestamp | None:
    if not iso:
        return None
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(dt.datetime.fromisoformat(iso))
    return ts


class ApplicationActivities:
    """Activities of the application workflow, holding the worker's stubs and identity."""

    def __init__(
        self,
        identity: identity_pb2_grpc.IdentityServiceStub,
        certificates: certificates_pb2_grpc.CertificatesServiceStub,
        matters: matters_pb2_grpc.MattersServiceStub,
        token: ServiceToken,
    ) -> None:
        self.identity = identity
        self.certificates = certificates
        self.matters = matters
        self.token = token

    async def _call(self, method: Any, request: Any) -> Any:
        """One call of a service's stub method (generated stubs are untyped), under the
        caller's request id (request_ids.py), else the workflow id."""
        rid = log.request_id_var.get() or activity.info().workflow_id or ""
        token = log.request_id_var.set(rid)
        try:
            md = await self.token.metadata()
            return await method(request, metadata=md, timeout=20)
        except grpc.aio.AioRpcError as err:
            if err.code() == grpc.StatusCode.UNAUTHENTICATED:
                self.token.invalidate()  # e.g. keys rotated; the retry logs in again
            if err.code() in FINAL_CODES:
                raise ApplicationError(
                    f"{err.code().name}: {err.details()}", _error_info(err),
                    type=err.code().name, non_retryable=True) from None
            raise
        finally:
            log.request_id_var.reset(token)

    @activity.defn(name="gather")
    async def gather(self, req: GatherRequest) -> Gathered:
        """The applicant and the materials in one call: the applicant's identity is read;
        if it meets the matter's assurance level, every material is pulled (concurrently,
        each under its own grant)."""
        applicant = None
        if req.applicant:
            applicant = await self.verify_applicant(req.applicant, req.submitted_by)
            if not assurance_meets(applicant.assurance_level, req.assurance_needed):
                return Gathered(applicant=applicant, materials={})
        codes = list(req.pulls)
        pulled = await asyncio.gather(*[self.pull_certificate(req.pulls[c]) for c in codes])
        return Gathered(applicant=applicant, materials=dict(zip(codes, pulled, strict=True)))

    async def verify_applicant(self, subject: str, submitted_by: str) -> ApplicantFacts:
        """Who applies, and how well the identity of the person behind it is established:
        the submitter, or for a partner's submission the applicant (or, for an
        organisation, its legal representative)."""
        if subject.startswith("organisations/"):
            org = await self._call(self.identity.GetOrganisation,
                                   ipb.GetOrganisationRequest(name=subject))
            behind = submitted_by if submitted_by.startswith("persons/") \
                else org.organisation.legal_representative
            person = await self._call(self.identity.GetPerson, ipb.GetPersonRequest(name=behind))
            interested = {org.organisation.legal_representative}
            token = ""
            while True:
                reps = await self._call(self.identity.ListRepresentations,
                                        ipb.ListRepresentationsRequest(
                                            parent=subject, page_size=100, page_token=token))
                interested |= {r.person for r in reps.representations}
                token = reps.next_page_token
                if not token:
                    break
            return ApplicantFacts(subject=subject, kind="organisation",
                                  display_name=org.organisation.display_name,
                                  assurance_level=_ASSURANCE.get(person.person.assurance_level,
                                                                 "account"),
                                  credit_code=org.organisation.credit_code,
                                  interested=sorted(i for i in interested if i))
        applicant = await self._call(self.identity.GetPerson, ipb.GetPersonRequest(name=subject))
        return ApplicantFacts(subject=subject, kind="person",
                              display_name=applicant.person.display_name,
                              assurance_level=_ASSURANCE.get(applicant.person.assurance_level,
                                                             "account"),
                              birth_date=applicant.person.birth_date)

    async def pull_certificate(self, req: PullRequest) -> PulledCertificate | None:
        """The holder's newest active certificate of an accepted type, verified, or the
        one held but not active, or None. The applicant's submission is their consent: one
        PullCertificate grants the worker access for this one application (idempotent) and
        verifies the certificate under that grant, so the pull is one read in the holder's
        access log and the audit chain."""
        try:
            pulled = await self._call(self.certificates.PullCertificate, cpb.PullCertificateRequest(
                holder=req.holder, certificate_types=req.certificate_types,
                application=f"applications/{req.application_id}", purpose=CONSENT_PURPOSE))
        except ApplicationError as err:
            if err.type != grpc.StatusCode.NOT_FOUND.name:
                raise
            info = err.details[0] if err.details else {}
            meta = info.get("metadata", {}) if isinstance(info, dict) else {}
            if not meta.get("certificate"):
                return None  # no certificate of an accepted type
            # One is held, but suspended, revoked or expired: say so.
            state = meta.get("state", "NOT_ACTIVE")
            return PulledCertificate(name=meta["certificate"],
                                     type=meta.get("certificate_type", ""), fields={},
                                     valid=False, failures=[state], state=state)
        cert = pulled.certificate
        return PulledCertificate(
            name=cert.name, type=cert.type, fields=dict(cert.fields), valid=pulled.valid,
            failures=[cpb.VerificationFailure.Name(f) for f in pulled.failures])

    @activity.defn(name="finish")
    async def finish(self, req: FinishRequest) -> int:
        """The end of an application: every certificate grant made for it ended (with
        ``release``; idempotent), then the closing events recorded in one call, the last
        naming how many grants ended. Returns that number."""
        return await self._finish(req, [])

    async def _finish(self, req: FinishRequest, before: list[Event]) -> int:
        released = 0
        if req.release:
            resp = await self._call(self.certificates.ReleaseApplicationGrants,
                                    cpb.ReleaseApplicationGrantsRequest(
                                        application=f"applications/{req.application_id}"))
            released = int(resp.released_count)
        events = [*before, *req.events]
        if req.released_event is not None:
            message, message_en = released_message(released)
            events.append(dataclasses.replace(req.released_event, message=message,
                                              message_en=message_en))
        if events:
            await self._record(events)
        return released

    @activity.defn(name="issue_certificate")
    async def issue_certificate(self, req: IssueRequest) -> str:
        """Issues the result certificate (the request id makes it happen once), then
        records the pending timeline events with ``issued_event`` naming it, in one call;
        when the application ends with it, ends it first (``finish``: grants released,
        then every event in that one call). Should it fail for good, the workflow keeps
        the events and records them with its ending."""
        cert = cpb.Certificate(type=req.certificate_type, holder=req.holder, fields=req.fields)
        if req.validity_days:
            until = dt.datetime.now(dt.UTC) + dt.timedelta(days=req.validity_days)
            cert.valid_until.FromDatetime(until)
        resp = await self._call(self.certificates.IssueCertificate, cpb.IssueCertificateRequest(
            certificate=cert, request_id=req.request_id,
            application=f"applications/{req.application_id}"))
        name: str = resp.certificate.name
        message, message_en = issued_message(name)
        after = [*req.events]
        if req.issued_event is not None:
            after.append(dataclasses.replace(req.issued_event, message=message,
                                             message_en=message_en, result_certificate=name))
        if req.finish is not None:
            await self._finish(req.finish, after)
        elif after:
            await self._record(after)
        return name

    @activity.defn(name="record_event")
    async def record_event(self, ev: Event) -> None:
        """Writes one timeline event (and the status it leads to) to the read model."""
        await self._call(self.matters.RecordApplicationEvent, _event_request(ev))

    @activity.defn(name="record_events")
    async def record_events(self, events: list[Event]) -> None:
        """Writes timeline events, in order, in one call (idempotent by event id)."""
        await self._record(events)

    async def _record(self, events: list[Event]) -> None:
        for i in range(0, len(events), MAX_EVENTS_PER_CALL):
            await self._call(self.matters.RecordApplicationEvents,
                             mpb.RecordApplicationEventsRequest(
                                 events=[_event_request(e)
                                         for e in events[i:i + MAX_EVENTS_PER_CALL]]))

    @activity.defn(name="upsert_task")
    async def upsert_task(self, t: TaskRecord) -> None:
        """Writes an officer task as the workflow sees it to the read model (inboxes)."""
        task = mpb.Task(
            name=t.name, application=f"applications/{t.application_id}", step=t.step,
            display_name=t.display_name, role=t.role, agency=t.agency,
            status=mpb.TaskStatus.Value(f"TASK_STATUS_{t.status}"), assignee=t.assignee,
            overdue=t.overdue, matter=t.matter, kind=t.kind, reasons=t.reasons,
            due_time_provisional=t.due_provisional,
            decision=mpb.Decision.Value(f"DECISION_{t.decision}") if t.decision else 0)
        for field, iso in (("due_time", t.due_time), ("create_time", t.create_time)):
            ts = _ts(iso)
            if ts is not None:
                getattr(task, field).CopyFrom(ts)
        await self._call(self.matters.UpsertTask,
                         mpb.UpsertTaskRequest(task=task, workflow_id=t.workflow_id))

    @activity.defn(name="due_times")
    async def due_times(self, req: DueRequest) -> list[DueAnswer]:
        """Due times counted on the calendar as published now (the matters service owns
        the calendars). Workflows take time limits only from here, as recorded results,
        so a calendar published later never changes a replay."""
        resp = await self._call(self.matters.ComputeDueTimes, mpb.ComputeDueTimesRequest(
            region=req.region, queries=[mpb.DueTimeQuery(start_time=_ts(q.start), working_days=q.days)
                                        for q in req.queries]))
        return [DueAnswer(time=a.due_time.ToDatetime(tzinfo=dt.UTC).isoformat(),
                          provisional=a.provisional, missing_years=list(a.missing_years))
                for a in resp.answers]

    @activity.defn(name="change_certificate_status")
    async def change_certificate_status(self, change: StatusChange) -> None:
        """Suspends or revokes a certificate (a pledge that did not hold); repeatable."""
        method = {"REVOKED": self.certificates.RevokeCertificate,
                  "SUSPENDED": self.certificates.SuspendCertificate}[change.status]
        request_type = {"REVOKED": cpb.RevokeCertificateRequest,
                        "SUSPENDED": cpb.SuspendCertificateRequest}[change.status]
        await self._call(method, request_type(name=change.certificate, reason=change.reason))

    def all(self) -> list[Callable[..., Any]]:
        return [self.gather, self.issue_certificate, self.record_event, self.record_events,
                self.upsert_task, self.change_certificate_status, self.finish, self.due_times]


def _event_request(ev: Event) -> mpb.RecordApplicationEventRequest:
    """The request that records ``ev`` (and the status it leads to)."""
    event = mpb.TimelineEvent(
        event_id=ev.event_id, kind=ev.kind, message=ev.message, message_en=ev.message_en,
        actor=ev.actor,
        status=mpb.ApplicationStatus.Value(f"APPLICATION_STATUS_{ev.status}") if ev.status else 0)
    event.time.FromDatetime(dt.datetime.fromisoformat(ev.time))
    req = mpb.RecordApplicationEventRequest(
        application=f"applications/{ev.application_id}", event=event,
        result_certificate=ev.result_certificate, overdue=ev.overdue)
    if ev.receipt:
        req.decision_receipt.CopyFrom(mpb.DecisionReceipt(
            rule_version=ev.receipt["rule_version"],
            inputs_json=json.dumps(ev.receipt["inputs"], ensure_ascii=False, sort_keys=True),
            outcome=ev.receipt["outcome"], explanations=ev.receipt["explanations"]))
    if ev.current_steps is not None:
        req.current_steps.extend(ev.current_steps or ["-"])
    if ev.missing_materials is not None:
        req.missing_materials.extend(ev.missing_materials or ["-"])
    if ev.result_certificates is not None:
        req.result_certificates.extend(ev.result_certificates)
    if ev.reasons:
        req.reasons.extend(ev.reasons)
    if ev.interested:
        req.interested.extend(ev.interested)
    supplement_due = _ts(ev.supplement_due_time)
    if supplement_due is not None:
        req.supplement_due_time.CopyFrom(supplement_due)
    due = _ts(ev.due_time)
    if due is not None:
        req.due_time.CopyFrom(due)
        req.due_time_provisional = ev.due_provisional
    return req
