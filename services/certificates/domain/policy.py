"""Who may do what with certificates, and the rules of a holder's consent grants: who may
receive one, for what purpose and how long, and where a grant stands."""

from __future__ import annotations

import datetime as dt
import json

from govflow import auth
from services.certificates.domain.fields import ID_PART
from services.certificates.domain.times import aware

# ---------------------------------------------------------------- who may do what


def may_issue(p: auth.Principal, issuing_agency: str) -> bool:
    """The type's own agency issues (its approvers and admins, or its partner systems);
    Govflow's worker issues the result certificates of approved applications of any type."""
    if p.kind == auth.OFFICIAL:
        return p.agency == issuing_agency and bool({"approver", "admin"} & set(p.roles))
    if p.kind == auth.PARTNER:
        return p.has_scope(auth.SCOPE_CERT_ISSUE) and p.agency == issuing_agency
    if p.kind == auth.SERVICE:
        return p.has_scope(auth.SCOPE_CERT_ISSUE)
    return False


def is_holder(p: auth.Principal, holder: str) -> bool:
    """The holder itself, or a person acting for the holding organisation."""
    if p.subject == holder:
        return True
    return p.kind == auth.PERSON and bool(p.acting_for) and p.acting_for == holder


def may_pull(p: auth.Principal) -> bool:
    """Govflow's worker, which reads (under grants to applications) and grants on an
    applicant's behalf for one application."""
    return p.kind == auth.SERVICE and p.has_scope(auth.SCOPE_CERT_PULL)


def may_manage_trust(p: auth.Principal) -> bool:
    """Platform administrators only: the trust list decides what every verifier accepts, so
    no agency's admin changes it."""
    return p.kind in (auth.SERVICE, auth.PARTNER) and auth.SCOPE_ADMIN in p.scopes


def may_rotate_key(p: auth.Principal, agency: str) -> bool:
    """Govflow's administrators, or an admin official of the agency itself."""
    if p.kind in (auth.SERVICE, auth.PARTNER):
        return auth.SCOPE_ADMIN in p.scopes
    return p.kind == auth.OFFICIAL and "admin" in p.roles and p.agency == agency


# ---------------------------------------------------------------- consent

PARTY_PREFIXES = ("agencies/", "partners/", "applications/")
DEFAULT_CONSENT_DAYS = 30
MAX_CONSENT_DAYS = 366
MAX_PURPOSE = 200

# Where a grant stands (computed: only the revoke time is stored).
CONSENT_ACTIVE = "active"
CONSENT_EXPIRED = "expired"
CONSENT_REVOKED = "revoked"


def party_problem(party: str) -> str | None:
    """Why ``party`` cannot receive a grant, or None."""
    if not party:
        return "required"
    for prefix in PARTY_PREFIXES:
        if party.startswith(prefix) and ID_PART.fullmatch(party.removeprefix(prefix)):
            return None
    return "must be agencies/{code}, partners/{client_id} or applications/{id}"


def application_problem(application: str) -> str | None:
    if application.startswith("applications/") and ID_PART.fullmatch(
            application.removeprefix("applications/")):
        return None
    return "must be applications/{id}"


def purpose_problem(purpose: str) -> str | None:
    if not purpose.strip():
        return "required"
    if len(purpose) > MAX_PURPOSE:
        return f"longer than {MAX_PURPOSE} characters"
    return None


def expire_problem(expire: dt.datetime, now: dt.datetime) -> str | None:
    if expire <= now:
        return "must be in the future"
    if expire > now + dt.timedelta(days=MAX_CONSENT_DAYS):
        return f"at most {MAX_CONSENT_DAYS} days ahead"
    return None


def caller_party(p: auth.Principal, application: str) -> str | None:
    """The party a non-holder caller reads as: an official's agency, a partner itself, or,
    for Govflow's worker, the application it names. None: the caller can hold no grant."""
    if p.kind == auth.OFFICIAL:
        return p.agency or None
    if p.kind == auth.PARTNER:
        return p.subject if p.subject.startswith("partners/") else None
    if may_pull(p):
        return application or None
    return None


def consent_state(revoke_time: dt.datetime | None, expire_time: dt.datetime,
                  now: dt.datetime) -> str:
    if revoke_time is not None:
        return CONSENT_REVOKED
    return CONSENT_EXPIRED if aware(expire_time) <= now else CONSENT_ACTIVE


def consent_live_key(certificate_id: str, party: str, purpose: str) -> str:
    """One string naming (certificate, party, purpose): unique among live grants."""
    return json.dumps([certificate_id, party, purpose], ensure_ascii=False, separators=(",", ":"))
