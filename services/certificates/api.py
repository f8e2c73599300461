"""CertificatesService servicer: proto in, use case, proto out."""

from __future__ import annotations

import datetime as dt
import json

from google.protobuf import timestamp_pb2

from govflow import auth
from govflow.certificates.v1 import certificates_pb2 as pb
from govflow.certificates.v1 import certificates_pb2_grpc
from govflow.errors import InvalidArgument
from govflow.paging import next_token, page, parse_filter
from services.certificates import domain, foreign
from services.certificates.consent import GrantRequest
from services.certificates.domain import AccessRecord, Certificate, CertificateType, Consent
from services.certificates.foreign import TrustedIssuer
from services.certificates.issuing import IssueRequest
from services.certificates.keys import SignedStatusList
from services.certificates.service import Certificates
from services.certificates.store import caches

PUBLIC_METHODS = {"ListCertificateTypes", "ListIssuerKeys", "GetStatusList",
                  "ListTrustedIssuers", "GetTrustList"}

_HOLDER_KIND = {"person": pb.HOLDER_KIND_PERSON, "organisation": pb.HOLDER_KIND_ORGANISATION}
_HOLDER_KIND_BACK = {v: k for k, v in _HOLDER_KIND.items()}
_STATUS = {domain.ACTIVE: pb.CERTIFICATE_STATUS_ACTIVE,
           domain.SUSPENDED: pb.CERTIFICATE_STATUS_SUSPENDED,
           domain.REVOKED: pb.CERTIFICATE_STATUS_REVOKED,
           domain.EXPIRED: pb.CERTIFICATE_STATUS_EXPIRED}
_FAILURE = {f: getattr(pb, f"VERIFICATION_FAILURE_{f.value}") for f in domain.Failure}
_CONSENT_STATE = {domain.CONSENT_ACTIVE: pb.CONSENT_STATE_ACTIVE,
                  domain.CONSENT_EXPIRED: pb.CONSENT_STATE_EXPIRED,
                  domain.CONSENT_REVOKED: pb.CONSENT_STATE_REVOKED}


def _ts(t: dt.datetime) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(domain.aware(t))
    return ts


def _from_ts(ts: timestamp_pb2.Timestamp) -> dt.datetime:
    return ts.ToDatetime(tzinfo=dt.UTC)


def type_pb(t: CertificateType) -> pb.CertificateType:
    return pb.CertificateType(
        name=f"certificateTypes/{t.code}", code=t.code, display_name=t.display_name,
        display_name_en=t.display_name_en, issuing_agency=t.issuing_agency,
        holder_kind=_HOLDER_KIND[t.holder_kind],
        fields=[pb.FieldSpec(name=f.name, type=f.type, required=f.required) for f in t.fields],
        default_validity_days=t.default_validity_days)


def certificate_pb(cert: Certificate, now: dt.datetime) -> pb.Certificate:
    """The Certificate message of ``cert`` at ``now`` (its effective status). The message
    built from the same record and status before is the same message, so a copy of that
    one is returned (cheaper than building it)."""
    out = pb.Certificate()
    out.CopyFrom(_certificate_message(
        cert, domain.effective_status(cert.status, cert.valid_until, now)))
    return out


@caches.by_value(4096)
def _certificate_message(row: Certificate, status: str) -> pb.Certificate:
    out = pb.Certificate(
        name=f"certificates/{row.id}", type=f"certificateTypes/{row.type_code}",
        holder=row.holder, fields=json.loads(row.fields_json),
        # A foreign issuer is stored by its full name (issuers/{id}), an agency by its code.
        issuer=row.issuer if foreign.is_foreign(row.issuer) else f"agencies/{row.issuer}",
        foreign=foreign.is_foreign(row.issuer),
        valid_from=_ts(row.valid_from), status=_STATUS[status],
        key_id=row.key_id, signature=row.signature, signed_payload=row.signed_payload,
        status_list_index=row.status_list_index, issue_time=_ts(row.issue_time),
        status_reason=row.status_reason)
    if row.valid_until is not None:
        out.valid_until.CopyFrom(_ts(row.valid_until))
    return out


def access_record_pb(row: AccessRecord) -> pb.AccessRecord:
    return pb.AccessRecord(
        name=f"accessRecords/{row.id}", certificate=f"certificates/{row.certificate_id}",
        accessor=row.accessor, action=row.action, purpose=row.purpose,
        application=row.application, access_time=_ts(row.time),
        consent=f"consents/{row.consent_id}" if row.consent_id else "", party=row.party)


def consent_pb(row: Consent, now: dt.datetime) -> pb.Consent:
    out = pb.Consent(
        name=f"consents/{row.id}", certificate=f"certificates/{row.certificate_id}",
        holder=row.holder, party=row.party, purpose=row.purpose,
        expire_time=_ts(row.expire_time),
        state=_CONSENT_STATE[domain.consent_state(row.revoke_time, row.expire_time, now)],
        granted_by=row.granted_by, create_time=_ts(row.create_time))
    if row.revoke_time is not None:
        out.revoke_time.CopyFrom(_ts(row.revoke_time))
    return out


def trusted_issuer_pb(e: TrustedIssuer) -> pb.TrustedIssuer:
    out = pb.TrustedIssuer(
        name=e.issuer, display_name=e.display_name, jurisdiction=e.jurisdiction,
        jwks_json=e.jwks_json, status_list_location=e.status_list_location,
        certificate_types=list(e.certificate_types), not_after=_ts(e.not_after),
        added_by=e.added_by, version=e.version)
    if e.add_time is not None:
        out.add_time.CopyFrom(_ts(e.add_time))
    return out


def status_list_pb(signed: SignedStatusList) -> pb.StatusList:
    """The StatusList message of a signed list (Govflow's own, or a trusted issuer's)."""
    doc = json.loads(signed.signed_payload)
    return pb.StatusList(
        issuer=doc["issuer"], revocation_list=doc["revocation_list"],
        suspension_list=doc["suspension_list"], size=doc["size"],
        # mypy, next line: a signed status list always carries both times
        issued_time=_ts(domain.parse_time(doc["issued_time"])),  # type: ignore[arg-type]
        # mypy, next line: a signed status list always carries both times
        valid_until=_ts(domain.parse_time(doc["valid_until"])),  # type: ignore[arg-type]
        key_id=signed.kid, signature=signed.signature, signed_payload=signed.signed_payload)


def _status_filter(value: str) -> str:
    v = value.upper().removeprefix("CERTIFICATE_STATUS_").lower()
    if v not in _STATUS:
        raise InvalidArgument(fields={"filter": "status must be ACTIVE, SUSPENDED, REVOKED or EXPIRED"})
    return v


class CertificatesApi(certificates_pb2_grpc.CertificatesServiceServicer):
    def __init__(self, certificates: Certificates) -> None:
        self.certs = certificates

    async def ListCertificateTypes(self, request: pb.ListCertificateTypesRequest, context: object) -> pb.ListCertificateTypesResponse:
        """Lists certificate types by code. Public. Filters: `issuing_agency=agencies/x`,
        `holder_kind=PERSON|ORGANISATION`."""
        f = parse_filter(request.filter, {"issuing_agency", "holder_kind"})
        kind = f.get("holder_kind", "").upper().removeprefix("HOLDER_KIND_").lower() or None
        if kind is not None and kind not in domain.HOLDER_KINDS:
            raise InvalidArgument(fields={"filter": "holder_kind must be PERSON or ORGANISATION"})
        offset, limit = page(request.page_size, request.page_token)
        rows = await self.certs.issuing.list_types(
            offset=offset, limit=limit, issuing_agency=f.get("issuing_agency"),
            holder_kind=kind)
        return pb.ListCertificateTypesResponse(
            certificate_types=[type_pb(t) for t in rows],
            next_page_token=next_token(offset, limit, len(rows)))

    async def CreateCertificateType(self, request: pb.CreateCertificateTypeRequest, context: object) -> pb.CreateCertificateTypeResponse:
        """Creates a certificate type, or replaces the definition of one with the same code
        (administrators only). Certificates already issued keep the fields they were signed with."""
        p = auth.principal()
        t = request.certificate_type
        ctype = CertificateType(
            code=t.code, display_name=t.display_name, display_name_en=t.display_name_en,
            issuing_agency=t.issuing_agency, holder_kind=_HOLDER_KIND_BACK.get(t.holder_kind, ""),
            fields=tuple(domain.FieldSpec(name=f.name, type=f.type, required=f.required)
                         for f in t.fields),
            default_validity_days=t.default_validity_days)
        saved = await self.certs.issuing.put_type(p, ctype)
        return pb.CreateCertificateTypeResponse(certificate_type=type_pb(saved))

    async def IssueCertificate(self, request: pb.IssueCertificateRequest, context: object) -> pb.IssueCertificateResponse:
        """Issues and signs a certificate. Only the type's issuing agency (its approvers and
        admins, or its partner systems with `certificates.issue`) or Govflow's worker may.
        Idempotent by `request_id` per caller, including under concurrent retries."""
        p = auth.principal()
        c = request.certificate
        req = IssueRequest(
            type=c.type, holder=c.holder, fields=dict(c.fields),
            valid_from=_from_ts(c.valid_from) if c.HasField("valid_from") else None,
            valid_until=_from_ts(c.valid_until) if c.HasField("valid_until") else None,
            request_id=request.request_id, application=request.application)
        row = await self.certs.issuing.issue(p, req)
        return pb.IssueCertificateResponse(certificate=certificate_pb(row, self.certs.clock()))

    async def GetCertificate(self, request: pb.GetCertificateRequest, context: object) -> pb.GetCertificateResponse:
        """Gets a certificate: its holder, or anyone under a live grant for the stated
        purpose (logged). No grant: NOT_FOUND; a grant for another purpose: WRONG_PURPOSE."""
        p = auth.principal()
        row = await self.certs.consents.get(p, request.name, purpose=request.purpose,
                                           application=request.application)
        return pb.GetCertificateResponse(certificate=certificate_pb(row, self.certs.clock()))

    async def ListCertificates(self, request: pb.ListCertificatesRequest, context: object) -> pb.ListCertificatesResponse:
        """Lists a holder's wallet, newest first. Filters: `type=certificateTypes/x`,
        `status=ACTIVE|SUSPENDED|REVOKED|EXPIRED`, joined by ` AND `."""
        p = auth.principal()
        f = parse_filter(request.filter, {"type", "status"})
        type_code = f["type"].removeprefix("certificateTypes/") if "type" in f else None
        status = _status_filter(f["status"]) if "status" in f else None
        offset, limit = page(request.page_size, request.page_token)
        rows = await self.certs.consents.list_wallet(
            p, request.parent, offset=offset, limit=limit, type_code=type_code,
            status=status, purpose=request.purpose, application=request.application)
        now = self.certs.clock()
        return pb.ListCertificatesResponse(
            certificates=[certificate_pb(r, now) for r in rows],
            next_page_token=next_token(offset, limit, len(rows)))

    async def VerifyCertificate(self, request: pb.VerifyCertificateRequest, context: object) -> pb.VerifyCertificateResponse:
        """Verifies a certificate and names every failure: payload mismatch, unknown key,
        bad signature, unknown issuer, validity window, suspension or revocation. Callable
        by the holder, or by anyone under a live grant for the stated purpose (logged)."""
        result = await self.certs.verifying.verify(auth.principal(), request.name,
                                                   purpose=request.purpose,
                                                   application=request.application)
        # A verification served again (store/caches.py, Verifications) is answered with the response made
        # of it the first time: the same within the span it is served in.
        response: pb.VerifyCertificateResponse | None = result.memo.get("response")
        if response is None:
            response = result.memo["response"] = pb.VerifyCertificateResponse(
                valid=not result.failures, failures=[_FAILURE[f] for f in result.failures],
                certificate=certificate_pb(result.certificate, self.certs.clock()))
        return response

    async def ListIssuerKeys(self, request: pb.ListIssuerKeysRequest, context: object) -> pb.ListIssuerKeysResponse:
        """Publishes every issuer's public keys as a JWK set (`kid`, `alg`, `issuer`). Public."""
        return pb.ListIssuerKeysResponse(jwks_json=await self.certs.keys.jwks())

    async def SuspendCertificate(self, request: pb.SuspendCertificateRequest, context: object) -> pb.SuspendCertificateResponse:
        """Suspends an active certificate (its issuer only; a reason is required)."""
        row = await self._change(request.name, domain.SUSPENDED, request.reason)
        return pb.SuspendCertificateResponse(certificate=certificate_pb(row, self.certs.clock()))

    async def ReinstateCertificate(self, request: pb.ReinstateCertificateRequest, context: object) -> pb.ReinstateCertificateResponse:
        """Reinstates a suspended certificate (its issuer only; a reason is required)."""
        row = await self._change(request.name, domain.ACTIVE, request.reason)
        return pb.ReinstateCertificateResponse(certificate=certificate_pb(row, self.certs.clock()))

    async def RevokeCertificate(self, request: pb.RevokeCertificateRequest, context: object) -> pb.RevokeCertificateResponse:
        """Revokes a certificate for good (its issuer only; a reason is required)."""
        row = await self._change(request.name, domain.REVOKED, request.reason)
        return pb.RevokeCertificateResponse(certificate=certificate_pb(row, self.certs.clock()))

    async def ListAccessRecords(self, request: pb.ListAccessRecordsRequest, context: object) -> pb.ListAccessRecordsResponse:
        """Lists who read the holder's certificates, when and why, newest first (the holder
        only; anyone else gets NOT_FOUND). Filter: `certificate=certificates/x`."""
        p = auth.principal()
        f = parse_filter(request.filter, {"certificate"})
        offset, limit = page(request.page_size, request.page_token)
        rows = await self.certs.consents.access_records(
            p, request.parent, offset=offset, limit=limit, certificate=f.get("certificate"))
        return pb.ListAccessRecordsResponse(
            access_records=[access_record_pb(r) for r in rows],
            next_page_token=next_token(offset, limit, len(rows)))

    async def RotateIssuerKey(self, request: pb.RotateIssuerKeyRequest, context: object) -> pb.RotateIssuerKeyResponse:
        """Makes a new active key for an issuer (administrators or the agency's admins); the
        old public keys stay published so what they signed still verifies."""
        p = auth.principal()
        row = await self.certs.keys.rotate(p, request.agency)
        return pb.RotateIssuerKeyResponse(key_id=row.kid, jwk_json=row.public_jwk)

    async def GrantConsent(self, request: pb.GrantConsentRequest, context: object) -> pb.GrantConsentResponse:
        """Grants a party access to one certificate for a purpose until a time (the holder,
        or the worker for one application). Returns the live identical grant if there is one."""
        p = auth.principal()
        req = GrantRequest(
            certificate=request.certificate, holder=request.holder,
            certificate_type=request.certificate_type, party=request.party,
            purpose=request.purpose,
            expire_time=_from_ts(request.expire_time) if request.HasField("expire_time") else None)
        row = await self.certs.consents.grant(p, req)
        return pb.GrantConsentResponse(consent=consent_pb(row, self.certs.clock()))

    async def PullCertificate(self, request: pb.PullCertificateRequest, context: object) -> pb.PullCertificateResponse:
        """Grants the worker access to the holder's newest active certificate of the first
        type held, for one application, and verifies it under that grant (worker only)."""
        consent, result = await self.certs.pulling.pull(
            auth.principal(), request.holder, list(request.certificate_types),
            application=request.application, purpose=request.purpose)
        now = self.certs.clock()
        return pb.PullCertificateResponse(
            consent=consent_pb(consent, now), valid=not result.failures,
            failures=[_FAILURE[f] for f in result.failures],
            certificate=certificate_pb(result.certificate, now))

    async def RevokeConsent(self, request: pb.RevokeConsentRequest, context: object) -> pb.RevokeConsentResponse:
        """Revokes a grant at once (the holder only); a repeat returns it unchanged."""
        p = auth.principal()
        row = await self.certs.consents.revoke(p, request.name)
        return pb.RevokeConsentResponse(consent=consent_pb(row, self.certs.clock()))

    async def ListConsents(self, request: pb.ListConsentsRequest, context: object) -> pb.ListConsentsResponse:
        """Lists the holder's grants, newest first (the holder only). Filters:
        `certificate=certificates/x`, `party=...`, `state=ACTIVE|EXPIRED|REVOKED`."""
        p = auth.principal()
        f = parse_filter(request.filter, {"certificate", "party", "state"})
        state = None
        if "state" in f:
            state = f["state"].upper().removeprefix("CONSENT_STATE_").lower()
            if state not in _CONSENT_STATE:
                raise InvalidArgument(fields={"filter": "state must be ACTIVE, EXPIRED or REVOKED"})
        offset, limit = page(request.page_size, request.page_token)
        rows = await self.certs.consents.list_consents(
            p, request.parent, offset=offset, limit=limit, certificate=f.get("certificate"),
            party=f.get("party"), state=state)
        now = self.certs.clock()
        return pb.ListConsentsResponse(consents=[consent_pb(r, now) for r in rows],
                                       next_page_token=next_token(offset, limit, len(rows)))

    async def ReleaseApplicationGrants(self, request: pb.ReleaseApplicationGrantsRequest, context: object) -> pb.ReleaseApplicationGrantsResponse:
        """Revokes every grant made to an application (the worker only); returns how many."""
        p = auth.principal()
        count = await self.certs.consents.release_application(p, request.application)
        return pb.ReleaseApplicationGrantsResponse(released_count=count)

    async def GetStatusList(self, request: pb.GetStatusListRequest, context: object) -> pb.GetStatusListResponse:
        """The issuer's signed revocation and suspension bitstrings. Public; cache it until
        `valid_until`."""
        if foreign.is_foreign(request.issuer):
            signed = await self.certs.trust.issuer_status_list(request.issuer)
        else:
            signed = await self.certs.keys.status_list(request.issuer)
        return pb.GetStatusListResponse(status_list=status_list_pb(signed))

    async def GetCompactCertificate(self, request: pb.GetCompactCertificateRequest, context: object) -> pb.GetCompactCertificateResponse:
        """A compact JWS of the certificate for offline checks, optionally as a QR PNG (the
        holder, or under a live grant for the stated purpose)."""
        p = auth.principal()
        token, png = await self.certs.verifying.compact(
            p, request.name, purpose=request.purpose, application=request.application,
            include_qr=request.include_qr)
        return pb.GetCompactCertificateResponse(token=token, qr_png=png)

    async def _change(self, name: str, target: str, reason: str) -> Certificate:
        return await self.certs.issuing.change_status(auth.principal(), name, target, reason)

    # ------------------------------------------------------------ cross-border (trust.py)
    async def AddTrustedIssuer(self, request: pb.AddTrustedIssuerRequest, context: object) -> pb.AddTrustedIssuerResponse:
        """Lists an issuer outside the platform, or replaces its entry (platform
        administrators); a new, signed trust-list version, audited."""
        t = request.trusted_issuer
        entry = TrustedIssuer(
            issuer=t.name, display_name=t.display_name, jurisdiction=t.jurisdiction,
            jwks_json=t.jwks_json, status_list_location=t.status_list_location,
            certificate_types=tuple(t.certificate_types),
            not_after=_from_ts(t.not_after) if t.HasField("not_after")
            else dt.datetime.min.replace(tzinfo=dt.UTC))
        saved, version = await self.certs.trust.add(auth.principal(), entry)
        return pb.AddTrustedIssuerResponse(trusted_issuer=trusted_issuer_pb(saved),
                                           trust_list_version=version)

    async def RemoveTrustedIssuer(self, request: pb.RemoveTrustedIssuerRequest, context: object) -> pb.RemoveTrustedIssuerResponse:
        """Removes an issuer from the trust list (platform administrators); its
        certificates stop verifying from the new version on."""
        version = await self.certs.trust.remove(auth.principal(), request.name, request.reason)
        return pb.RemoveTrustedIssuerResponse(trust_list_version=version)

    async def ListTrustedIssuers(self, request: pb.ListTrustedIssuersRequest, context: object) -> pb.ListTrustedIssuersResponse:
        """The trust list's issuers by name, with its current version. Public."""
        offset, limit = page(request.page_size, request.page_token)
        rows, version = await self.certs.trust.list(offset=offset, limit=limit)
        return pb.ListTrustedIssuersResponse(
            trusted_issuers=[trusted_issuer_pb(e) for e in rows],
            next_page_token=next_token(offset, limit, len(rows)), trust_list_version=version)

    async def GetTrustList(self, request: pb.GetTrustListRequest, context: object) -> pb.GetTrustListResponse:
        """The trust list, versioned and signed by the platform's key. Public."""
        signed = await self.certs.trust.signed()
        doc = json.loads(signed.signed_payload)
        return pb.GetTrustListResponse(trust_list=pb.SignedTrustList(
            version=signed.version,
            # mypy, next line: a signed trust list always carries both times
            issued_time=_ts(domain.parse_time(doc["issued_time"])),  # type: ignore[arg-type]
            # mypy, next line: a signed trust list always carries both times
            valid_until=_ts(domain.parse_time(doc["valid_until"])),  # type: ignore[arg-type]
            key_id=signed.kid, signature=signed.signature,
            signed_payload=signed.signed_payload))

    async def PublishIssuerStatusList(self, request: pb.PublishIssuerStatusListRequest, context: object) -> pb.PublishIssuerStatusListResponse:
        """Keeps a trusted issuer's own signed status list (platform administrators)."""
        signed = await self.certs.trust.publish_status_list(
            auth.principal(), request.status_list.signed_payload, request.status_list.signature)
        return pb.PublishIssuerStatusListResponse(status_list=status_list_pb(signed))

    async def ImportCertificate(self, request: pb.ImportCertificateRequest, context: object) -> pb.ImportCertificateResponse:
        """Puts a foreign issuer's certificate into the caller's wallet once it verifies
        against the trust list; refused with the reason otherwise."""
        row = await self.certs.trust.import_certificate(auth.principal(), request.token)
        return pb.ImportCertificateResponse(certificate=certificate_pb(row, self.certs.clock()))
