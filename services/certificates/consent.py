"""Consent and access: a holder's grants (grant, revoke, list, release an application's),
reading certificates and wallets as the holder or under a grant, and the access log."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Callable

from sqlalchemy.engine import Connection
from sqlmodel import Session

from govflow import auth
from govflow.db import Database
from govflow.errors import InvalidArgument, NotFound, PermissionDenied, collect
from services.certificates import access, domain, trust
from services.certificates.domain import AccessRecord, Certificate, Consent
from services.certificates.issuing import type_code
from services.certificates.store import certificates as certificate_store
from services.certificates.store import consents as consent_store
from services.certificates.store import transactions


@dataclasses.dataclass(frozen=True)
class GrantRequest:
    certificate: str  # certificates/{id}, or '' with holder and certificate_type
    holder: str
    certificate_type: str  # certificateTypes/{code}
    party: str
    purpose: str
    expire_time: dt.datetime | None


class Consents:
    """GrantConsent, RevokeConsent, ListConsents, ReleaseApplicationGrants, and the reads
    that grants allow: GetCertificate, ListCertificates, ListAccessRecords."""

    def __init__(self, db: Database, clock: Callable[[], dt.datetime]) -> None:
        self.db = db
        self.clock = clock

    # ------------------------------------------------------------ grants
    async def grant(self, p: auth.Principal, req: GrantRequest) -> Consent:
        """Grants once per live (certificate, party, purpose): a concurrent duplicate loses
        the insert on the live key and, on retry, returns the winner's grant."""
        return await transactions.with_retries(self.db.write,
                                              lambda conn: self.grant_in(conn, p, req))

    def grant_in(self, conn: Connection, p: auth.Principal, req: GrantRequest) -> Consent:
        """The grant, in the transaction of ``conn`` (PullCertificate makes it with its read)."""
        now = domain.whole_seconds(self.clock())
        worker = access.is_worker(p)
        problems: dict[str, str] = {}
        by_type = not req.certificate
        if by_type:
            if not req.holder or not req.certificate_type:
                problems["certificate"] = "required, or holder and certificate_type"
            elif not domain.is_holder_name(req.holder):
                problems["holder"] = "must be persons/{id} or organisations/{id}"
            elif not type_code(req.certificate_type):
                problems["certificate_type"] = "must be certificateTypes/{code}"
        elif not access.certificate_id(req.certificate):
            problems["certificate"] = "must be certificates/{id}"
        bad = domain.party_problem(req.party)
        if bad:
            problems["party"] = bad
        bad = domain.purpose_problem(req.purpose)
        if bad:
            problems["purpose"] = bad
        expire = (domain.whole_seconds(req.expire_time) if req.expire_time
                  else now + dt.timedelta(days=domain.DEFAULT_CONSENT_DAYS))
        bad = domain.expire_problem(expire, now)
        if bad:
            problems["expire_time"] = bad
        collect(problems)
        if worker and not req.party.startswith("applications/"):
            raise PermissionDenied("Govflow's worker grants to one application only",
                                   reason="WORKER_GRANTS_TO_APPLICATIONS_ONLY")

        if by_type:
            if not (worker or domain.is_holder(p, req.holder)):
                raise access.holder_not_found(req.holder)
            holder = req.holder
            code = type_code(req.certificate_type)
            found = certificate_store.newest_active(conn, holder, code, now)
            if found is None:
                # Holder and worker may learn which certificate there is and why it does
                # not serve (the holder's own; the worker acts on the holder's submission).
                newest = certificate_store.newest_of_type(conn, holder, code)
                if newest is not None:
                    newest_id, status, valid_until = newest
                    state = domain.effective_status(status, valid_until, now)
                    raise NotFound(f"{holder} holds no active {req.certificate_type}: "
                                   f"certificates/{newest_id} is {state}",
                                   reason="CERTIFICATE_NOT_ACTIVE",
                                   metadata={"certificate": f"certificates/{newest_id}",
                                             "certificate_type": req.certificate_type,
                                             "state": state.upper()})
                raise NotFound(f"{holder} holds no active {req.certificate_type}",
                               reason="CERTIFICATE_NOT_FOUND")
            cid = found
        else:
            cid = access.certificate_id(req.certificate)
            found_holder = certificate_store.certificate_holder(conn, cid)
            if found_holder is None or not (worker or domain.is_holder(p, found_holder)):
                raise access.certificate_not_found(req.certificate)
            holder = found_holder

        existing = consent_store.grant_by_live_key(
            conn, domain.consent_live_key(cid, req.party, req.purpose))
        if existing is not None:
            if domain.consent_state(existing.revoke_time, existing.expire_time,
                                    now) == domain.CONSENT_ACTIVE:
                return existing
            # Expired: it no longer stands in the way of a new one.
            consent_store.release_live_key(conn, existing.id)
        return consent_store.add_grant(conn, Consent(
            id=uuid.uuid4().hex, certificate_id=cid, holder=holder, party=req.party,
            purpose=req.purpose, expire_time=expire, granted_by=p.subject, create_time=now,
            revoke_time=None))

    async def revoke(self, p: auth.Principal, name: str) -> Consent:
        """The holder ends a grant at once; repeating it is harmless."""
        return await self.db.run(lambda s: self._revoke(s, p, name))

    def _revoke(self, s: Session, p: auth.Principal, name: str) -> Consent:
        cid = name.removeprefix("consents/") if name.startswith("consents/") else ""
        found = consent_store.get_consent(s, cid)
        if found is None or not domain.is_holder(p, found.holder):
            raise NotFound(f"{name or 'consent'} not found", reason="CONSENT_NOT_FOUND")
        return consent_store.revoke_consent(s, found.id, self.clock())

    async def list_consents(self, p: auth.Principal, parent: str, *, offset: int, limit: int,
                            certificate: str | None, party: str | None,
                            state: str | None) -> list[Consent]:
        """The holder's grants, newest first: theirs alone to read."""
        access.require_holder(p, parent)
        return await self.db.run(lambda s: consent_store.list_consents(
            s, parent, certificate_id=access.certificate_id(certificate) if certificate
            else None, party=party, state=state, now=self.clock(), offset=offset, limit=limit))

    async def release_application(self, p: auth.Principal, application: str) -> int:
        """Ends every grant made to ``application``: its grants end when it ends."""
        if not access.is_worker(p):
            raise PermissionDenied("only Govflow's worker releases application grants",
                                   reason="WORKER_ONLY")
        bad = domain.application_problem(application)
        if bad:
            raise InvalidArgument(fields={"application": bad})
        return await self.db.write(lambda conn: consent_store.release_application(
            conn, application, self.clock()))

    # ------------------------------------------------------------ reads under grants
    async def get(self, p: auth.Principal, name: str, *, purpose: str,
                  application: str) -> Certificate:
        """The holder reads their own; anyone else under a live grant, logged."""
        access.check_reader(p, application)
        now = self.clock()
        return await self.db.run(lambda s: trust.as_its_issuer_says(s, access.read_certificate(
            s, p, name, certificate_store.get_certificate(s, access.certificate_id(name)),
            purpose=purpose, application=application, action="get", now=now), now))

    async def list_wallet(self, p: auth.Principal, parent: str, *, offset: int, limit: int,
                          type_code: str | None, status: str | None, purpose: str,
                          application: str) -> list[Certificate]:
        """A holder's wallet, newest first; others see only what they hold grants on."""
        if not domain.is_holder_name(parent):
            raise InvalidArgument(fields={"parent": "must be persons/{id} or organisations/{id}"})
        access.check_reader(p, application)
        return await self.db.run(lambda s: self._list_wallet(
            s, p, parent, offset=offset, limit=limit, type_code=type_code, status=status,
            purpose=purpose, application=application))

    def _list_wallet(self, s: Session, p: auth.Principal, parent: str, *, offset: int,
                     limit: int, type_code: str | None, status: str | None, purpose: str,
                     application: str) -> list[Certificate]:
        now = self.clock()
        grants = access.grants_for(p, parent, purpose=purpose, application=application,
                                   not_found=access.holder_not_found(parent),
                                   live=lambda party: consent_store.live_grants_of_holder(
                                       s, party=party, holder=parent, now=now))
        by_cert: dict[str, Consent] = {}
        for g in grants or ():
            by_cert.setdefault(g.certificate_id, g)
        certs = certificate_store.list_wallet(
            s, parent, certificate_ids=None if grants is None else list(by_cert),
            type_code=type_code, status=status, now=now, offset=offset, limit=limit)
        if grants is not None:
            for cert in certs:
                access.log_read(s, p, cert, by_cert[cert.id], action="list", purpose=purpose,
                                application=application)
        return [trust.as_its_issuer_says(s, cert, now) for cert in certs]

    async def access_records(self, p: auth.Principal, parent: str, *, offset: int,
                             limit: int, certificate: str | None) -> list[AccessRecord]:
        """The usage log of a holder's certificates: theirs alone to read."""
        access.require_holder(p, parent)
        return await self.db.run(lambda s: consent_store.list_access(
            s, parent, certificate_id=access.certificate_id(certificate) if certificate
            else None, offset=offset, limit=limit))
