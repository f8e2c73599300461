"""PullCertificate: the worker's grant and verified read of one material, in one
transaction (consent.py grants, verification.py reads under a grant)."""

from __future__ import annotations

from sqlalchemy.engine import Connection

from govflow import auth
from govflow.db import Database
from govflow.errors import NotFound, PermissionDenied, collect
from services.certificates import access, domain
from services.certificates.consent import Consents, GrantRequest
from services.certificates.domain import Consent
from services.certificates.issuing import type_code
from services.certificates.store import transactions
from services.certificates.store.caches import Verification
from services.certificates.verification import Verifying

MAX_TYPES = 10


class Pulling:
    def __init__(self, db: Database, consents: Consents, verifying: Verifying) -> None:
        self.db = db
        self.consents = consents
        self.verifying = verifying

    async def pull(self, p: auth.Principal, holder: str, certificate_types: list[str], *,
                   application: str, purpose: str) -> tuple[Consent, Verification]:
        """The grant on the holder's newest active certificate of the first type held,
        and the certificate verified under it: what GrantConsent then VerifyCertificate
        would do, with one transaction instead of two calls."""
        if not access.is_worker(p):
            raise PermissionDenied("only Govflow's worker pulls certificates for applications",
                                   reason="WORKER_ONLY")
        problems: dict[str, str] = {}
        if not domain.is_holder_name(holder):
            problems["holder"] = "required: persons/{id} or organisations/{id}"
        if not certificate_types or len(certificate_types) > MAX_TYPES:
            problems["certificate_types"] = f"1 to {MAX_TYPES} certificateTypes/{{code}}"
        for i, ctype in enumerate(certificate_types[:MAX_TYPES]):
            if not type_code(ctype):
                problems[f"certificate_types[{i}]"] = "must be certificateTypes/{code}"
        if bad := domain.application_problem(application):
            problems["application"] = bad
        if bad := domain.purpose_problem(purpose):
            problems["purpose"] = bad
        collect(problems)

        def once(conn: Connection) -> tuple[Consent, Verification]:
            not_active: NotFound | None = None
            for ctype in certificate_types:
                try:
                    consent = self.consents.grant_in(conn, p, GrantRequest(
                        certificate="", holder=holder, certificate_type=ctype,
                        party=application, purpose=purpose, expire_time=None))
                except NotFound as err:
                    if err.reason == "CERTIFICATE_NOT_ACTIVE" and not_active is None:
                        not_active = err
                    continue
                return consent, self.verifying.verify_under_grant(
                    conn, p, f"certificates/{consent.certificate_id}", purpose=purpose,
                    application=application)
            if not_active is not None:
                raise not_active
            raise NotFound(f"{holder} holds no active certificate of "
                           f"{', '.join(certificate_types)}", reason="CERTIFICATE_NOT_FOUND")

        return await transactions.with_retries(self.db.write, once)
