"""Who may read a certificate, a wallet or a holder's records: the one place of these checks.

A holder reads their own (``domain.is_holder``); anyone else reads under a live grant to
the party they act as (``domain.caller_party``) for the stated purpose, and the read is
logged. Answers never reveal what the caller may not see: "absent" and "not yours" get
the same NOT_FOUND.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from sqlalchemy.engine import Connection
from sqlmodel import Session

from govflow import auth
from govflow.errors import InvalidArgument, NotFound, PermissionDenied
from services.certificates import domain
from services.certificates.domain import Certificate, Consent
from services.certificates.store import audit as audit_chain
from services.certificates.store import consents as consent_store


def certificate_not_found(name: str) -> NotFound:
    # One message for "absent" and "not yours", so the answer reveals nothing.
    return NotFound(f"{name or 'certificate'} not found", reason="CERTIFICATE_NOT_FOUND")


def holder_not_found(holder: str) -> NotFound:
    return NotFound(f"{holder} not found", reason="HOLDER_NOT_FOUND")


def certificate_id(name: str) -> str:
    """The id of ``certificates/{id}``; '' for any other name."""
    return name.removeprefix("certificates/") if name.startswith("certificates/") else ""


def is_worker(p: auth.Principal) -> bool:
    """Govflow's worker: reads and grants for one application at a time."""
    return domain.may_pull(p) and p.kind == auth.SERVICE


def require_holder(p: auth.Principal, parent: str) -> None:
    """``parent`` names a holder and the caller is it (or acts for it); else NOT_FOUND."""
    if not domain.is_holder_name(parent):
        raise InvalidArgument(fields={"parent": "must be persons/{id} or organisations/{id}"})
    if not domain.is_holder(p, parent):
        raise holder_not_found(parent)


def check_reader(p: auth.Principal, application: str) -> None:
    """Input checks that depend only on the caller, made before any lookup so that their
    answer reveals nothing about which certificates exist."""
    if application:
        bad = domain.application_problem(application)
        if bad:
            raise InvalidArgument(fields={"application": bad})
    elif is_worker(p):
        raise InvalidArgument(fields={
            "application": "required: Govflow's worker reads for one application"})


def matching(grants: list[Consent], purpose: str, not_found: NotFound) -> list[Consent]:
    """The grants for ``purpose``. No grant at all: NOT_FOUND (the object is not the
    caller's); grants for other purposes only: the caller knows the object exists, so it is
    told its purpose is wrong."""
    if not grants:
        raise not_found
    if not purpose.strip():
        raise InvalidArgument(fields={"purpose": "required when reading someone else's certificate"})
    found = [g for g in grants if g.purpose == purpose]
    if not found:
        raise PermissionDenied("no grant covers this purpose", reason="WRONG_PURPOSE",
                               metadata={"purpose": purpose})
    return found


def grants_for(p: auth.Principal, holder: str, *, purpose: str, application: str,
               live: Callable[[str], list[Consent]], not_found: NotFound) -> list[Consent] | None:
    """None if the caller holds (or acts for) ``holder``; else the live grants for
    ``purpose`` that ``live(party)`` finds for the caller's party, oldest first."""
    if domain.is_holder(p, holder):
        return None
    party = domain.caller_party(p, application)
    if party is None:
        raise not_found
    return matching(live(party), purpose, not_found)


def read_certificate(tx: Session | Connection, p: auth.Principal, name: str,
                     certificate: Certificate | None, *, purpose: str, application: str,
                     action: str, now: dt.datetime) -> Certificate:
    """``certificate`` (looked up by ``name``) if the caller may read it; a read under a
    grant is logged in the access log and the audit chain, in ``tx``."""
    if certificate is None:
        raise certificate_not_found(name)
    conn = tx if isinstance(tx, Connection) else tx.connection()
    grants = grants_for(p, certificate.holder, purpose=purpose, application=application,
                        not_found=certificate_not_found(name),
                        live=lambda party: consent_store.live_grants(
                            conn, party=party, certificate_id=certificate.id, now=now))
    if grants is not None:
        log_read(tx, p, certificate, grants[0], action=action, purpose=purpose,
                 application=application)
    return certificate


def log_read(tx: Session | Connection, p: auth.Principal, certificate: Certificate,
             grant: Consent, *, action: str, purpose: str, application: str) -> None:
    """Logs a read under ``grant``: an access-log row and an audit entry."""
    consent_store.log_access(tx, certificate=certificate, accessor=p.subject, action=action,
                          purpose=purpose, application=application, grant=grant)
    audit_chain.append(tx, actor=p.subject, action="certificate.read",
                            certificate_id=certificate.id, details={
                                "holder": certificate.holder, "read": action,
                                "purpose": purpose, "application": application,
                                "consent": f"consents/{grant.id}", "party": grant.party})
