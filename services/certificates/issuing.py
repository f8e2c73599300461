"""Issuing: certificate types, issuing and signing a certificate, and its issuer's status
changes (suspend, reinstate, revoke)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Callable, Mapping

from sqlmodel import Session

from govflow import auth, faults
from govflow.db import Database
from govflow.errors import FailedPrecondition, InvalidArgument, PermissionDenied, collect
from services.certificates import access, domain, keys
from services.certificates.domain import Certificate, CertificateType
from services.certificates.store import audit as audit_chain
from services.certificates.store import certificate_types, status_lists, transactions
from services.certificates.store import certificates as certificate_store

_STATUS_ACTIONS = {domain.SUSPENDED: "certificate.suspended", domain.REVOKED: "certificate.revoked",
                   domain.ACTIVE: "certificate.reinstated"}


@dataclasses.dataclass(frozen=True)
class IssueRequest:
    type: str  # certificateTypes/{code}
    holder: str
    fields: Mapping[str, str]
    valid_from: dt.datetime | None
    valid_until: dt.datetime | None
    request_id: str
    application: str


def type_code(name: str) -> str:
    """The code of ``certificateTypes/{code}``; '' for any other name."""
    return name.removeprefix("certificateTypes/") if name.startswith("certificateTypes/") else ""


class Issuing:
    """CreateCertificateType, ListCertificateTypes, IssueCertificate and the status changes."""

    def __init__(self, db: Database, clock: Callable[[], dt.datetime]) -> None:
        self.db = db
        self.clock = clock

    # ------------------------------------------------------------ certificate types
    async def put_type(self, p: auth.Principal, t: CertificateType) -> CertificateType:
        """Creates the type, or replaces its definition; existing certificates keep theirs."""
        return await self.db.run(lambda s: self._put_type(s, p, t))

    @staticmethod
    def _put_type(s: Session, p: auth.Principal, t: CertificateType) -> CertificateType:
        if not p.is_admin:
            raise PermissionDenied("only administrators define certificate types",
                                   reason="ADMIN_ONLY")
        if p.kind == auth.OFFICIAL:
            # An agency's admin defines its own agency's types only: neither a type another
            # agency issues, nor one that would make their agency issue another's type.
            existing = certificate_types.get_type(s, t.code)
            theirs = [existing.issuing_agency] if existing else []
            if any(a != p.agency for a in [t.issuing_agency, *theirs]):
                raise PermissionDenied("an agency's admin defines its own agency's types only",
                                       reason="OTHER_AGENCY")
        collect(domain.type_problems(
            code=t.code, display_name=t.display_name, issuing_agency=t.issuing_agency,
            holder_kind=t.holder_kind, fields=t.fields,
            default_validity_days=t.default_validity_days))
        return certificate_types.save_type(s, t)

    async def list_types(self, *, offset: int, limit: int, issuing_agency: str | None,
                         holder_kind: str | None) -> list[CertificateType]:
        return await self.db.run(lambda s: certificate_types.list_types(
            s, offset=offset, limit=limit, issuing_agency=issuing_agency,
            holder_kind=holder_kind))

    # ------------------------------------------------------------ issuing
    async def issue(self, p: auth.Principal, req: IssueRequest) -> Certificate:
        """Issues once per (caller, request id). A concurrent duplicate loses the insert race
        on the unique constraint; it then finds and returns the winner's certificate."""
        cert = await transactions.with_retries(self.db.run, lambda s: self._issue_once(s, p, req))
        faults.crash_point("certificates.issue.after_commit")  # test-only; inert by default
        return cert

    def _issue_once(self, s: Session, p: auth.Principal, req: IssueRequest) -> Certificate:
        existing = certificate_store.find_by_request(s, p.subject, req.request_id)
        if existing is not None:
            return existing
        problems: dict[str, str] = {}
        if not req.request_id.strip():
            problems["request_id"] = "required: a retry with the same id returns the same certificate"
        elif len(req.request_id) > 200:
            problems["request_id"] = "longer than 200 characters"
        ctype = certificate_types.get_type(s, type_code(req.type))
        if ctype is None:
            problems["certificate.type"] = "must name an existing certificate type"
            collect(problems)
        assert ctype is not None
        # Authority before content: a caller who may not issue this type learns nothing more.
        if not domain.may_issue(p, ctype.issuing_agency):
            raise PermissionDenied(f"only {ctype.issuing_agency} issues {req.type}",
                                   reason="NOT_THE_ISSUER",
                                   metadata={"issuing_agency": ctype.issuing_agency})
        bad_holder = domain.holder_problem(req.holder, ctype.holder_kind)
        if bad_holder:
            problems["certificate.holder"] = bad_holder
        problems.update(domain.field_problems(ctype.fields, req.fields))
        now = domain.whole_seconds(self.clock())
        valid_from = domain.whole_seconds(req.valid_from) if req.valid_from else now
        if req.valid_until is not None:
            valid_until: dt.datetime | None = domain.whole_seconds(req.valid_until)
            if valid_until is not None and valid_until <= valid_from:
                problems["certificate.valid_until"] = "must be after valid_from"
        elif ctype.default_validity_days:
            valid_until = valid_from + dt.timedelta(days=ctype.default_validity_days)
        else:
            valid_until = None
        if req.application and not req.application.startswith("applications/"):
            problems["application"] = "must be applications/{id}"
        collect(problems)

        issuer = ctype.issuing_agency.removeprefix("agencies/")
        index = status_lists.take_slot(s, issuer)  # first: it takes the issuer's lock
        key = keys.active_key(s, issuer)
        cert_id = uuid.uuid4().hex
        fields = domain.normalise_fields(ctype.fields, req.fields)
        payload = domain.canonical(domain.build_payload(
            certificate_id=cert_id, type_code=ctype.code, holder=req.holder, issuer_code=issuer,
            fields=fields, valid_from=valid_from, valid_until=valid_until,
            status_list_index=index, kid=key.kid))
        cert = certificate_store.add_certificate(s, Certificate(
            id=cert_id, type_code=ctype.code, holder=req.holder, issuer=issuer,
            fields_json=json.dumps(fields, sort_keys=True), valid_from=valid_from,
            valid_until=valid_until, status=domain.ACTIVE, status_reason="", key_id=key.kid,
            signature=domain.sign(keys.private(key), payload), signed_payload=payload.decode(),
            status_list_index=index, issue_time=now, requested_by=p.subject,
            request_id=req.request_id, application=req.application, version=0))
        audit_chain.append(s, actor=p.subject, action="certificate.issued",
                                certificate_id=cert.id, details={
            "type": f"certificateTypes/{cert.type_code}", "holder": cert.holder,
            "issuer": f"agencies/{issuer}", "application": cert.application,
            "request_id": cert.request_id, "key_id": cert.key_id,
            "status_list_index": cert.status_list_index,
            "signed_payload_sha256": hashlib.sha256(payload).hexdigest()})
        return cert

    # ------------------------------------------------------------ status changes
    async def change_status(self, p: auth.Principal, name: str, target: str,
                            reason: str) -> Certificate:
        """Suspend, reinstate or revoke, by the certificate's issuer only."""
        return await self.db.run(lambda s: self._change_status(s, p, name, target, reason))

    @staticmethod
    def _change_status(s: Session, p: auth.Principal, name: str, target: str,
                       reason: str) -> Certificate:
        cert = certificate_store.get_certificate(s, access.certificate_id(name))
        if cert is None:
            raise access.certificate_not_found(name)
        if not domain.may_issue(p, f"agencies/{cert.issuer}"):
            if domain.is_holder(p, cert.holder) or domain.may_pull(p):
                raise PermissionDenied("only the issuer changes a certificate's status",
                                       reason="NOT_THE_ISSUER")
            raise access.certificate_not_found(name)
        if not reason.strip():
            raise InvalidArgument(fields={"reason": "required"})
        if len(reason) > 1000:
            raise InvalidArgument(fields={"reason": "longer than 1000 characters"})
        if cert.status == target:
            # Repeating the same change (a retried call) is harmless.
            return cert
        if not domain.transition_allowed(cert.status, target):
            raise FailedPrecondition(
                f"a {cert.status} certificate cannot become {target}",
                reason="CERTIFICATE_REVOKED" if cert.status == domain.REVOKED
                else "STATUS_CHANGE_NOT_ALLOWED",
                metadata={"status": cert.status, "target": target})
        changed = certificate_store.set_status(s, cert.id, target, reason.strip())
        audit_chain.append(s, actor=p.subject, action=_STATUS_ACTIONS.get(
            target, f"certificate.{target}"), certificate_id=cert.id, details={
            "from": cert.status, "to": target, "reason": changed.status_reason})
        return changed
