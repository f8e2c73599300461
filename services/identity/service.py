"""Identity's use cases wired together: one object the servicer and the server hold.

Each use case lives in its own module over the repository of store/ (one module per
aggregate): persons.py (persons and their TOTP factor), organisations.py (organisations
and representations), delegations.py (partners acting for persons and organisations, and
their access records), agencies.py (agencies and officials), partners.py (partners and
Govflow's own service accounts), tokens.py (logins, refresh, logout) and keys.py (token
signing keys). Who may do what is decided in access.py.
"""

from __future__ import annotations

from govflow.db import Database
from services.identity.agencies import Agencies
from services.identity.delegations import Delegations
from services.identity.keys import Keys
from services.identity.organisations import Organisations
from services.identity.partners import Partners
from services.identity.persons import Persons
from services.identity.tokens import FailureLimits, RateLimits, Tokens


class Identity:
    """The service's use cases over one database."""

    def __init__(self, db: Database, *, token_ttl: int, refresh_ttl: int,
                 rate_limits: RateLimits | None = None,
                 failure_limits: FailureLimits | None = None) -> None:
        self.db = db
        self.persons = Persons(db)
        self.organisations = Organisations(db)
        self.agencies = Agencies(db)
        self.partners = Partners(db)
        self.delegations = Delegations(db)
        self.tokens = Tokens(db, token_ttl=token_ttl, refresh_ttl=refresh_ttl,
                             rate_limits=rate_limits or RateLimits(),
                             failure_limits=failure_limits or FailureLimits())
        self.keys = Keys(db)


__all__ = ["FailureLimits", "Identity", "RateLimits"]
