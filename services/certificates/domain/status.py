"""A certificate's status: the stored states, the changes an issuer may make between them,
and the status a holder sees once the clock is counted."""

from __future__ import annotations

import datetime as dt

from services.certificates.domain.times import aware

# Stored states. EXPIRED is never stored: it follows from the clock and valid_until.
ACTIVE = "active"
SUSPENDED = "suspended"
REVOKED = "revoked"
EXPIRED = "expired"

# Status changes an issuer may make: from -> allowed targets. Revoked is final.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    ACTIVE: (SUSPENDED, REVOKED),
    SUSPENDED: (ACTIVE, REVOKED),
    REVOKED: (),
}


def transition_allowed(current: str, target: str) -> bool:
    return target in TRANSITIONS.get(current, ())


def effective_status(stored: str, valid_until: dt.datetime | None, now: dt.datetime) -> str:
    """The status a holder sees: an active certificate past its end is expired."""
    if stored == ACTIVE and valid_until is not None and aware(valid_until) <= now:
        return EXPIRED
    return stored
