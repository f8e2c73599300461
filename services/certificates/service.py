"""Certificates' use cases wired together: one object the servicer and the server hold.

Each use case lives in its own module over the repository of store/ (one module per
aggregate): issuing.py (types, issue, status changes), verification.py (VerifyCertificate, the
compact form), consent.py (grants and the reads they allow, the access log), pulling.py
(the worker's grant and verified read in one), keys.py
(issuer keys, status lists) and trust.py (the trust list of foreign issuers, imports). Who
may read what is decided in access.py; the caches are in store/caches.py.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from govflow import auth
from govflow.db import Database
from services.certificates.consent import Consents
from services.certificates.issuing import Issuing
from services.certificates.keys import Keys
from services.certificates.pulling import Pulling
from services.certificates.store import utcnow
from services.certificates.store.caches import Verification
from services.certificates.trust import Trust
from services.certificates.verification import Verifying


class Certificates:
    """The service's use cases over one database and one clock. ``clock`` is read on every
    call (tests replace it on the instance)."""

    def __init__(self, db: Database, *, clock: Callable[[], dt.datetime] = utcnow) -> None:
        self.db = db
        self.clock = clock

        def now() -> dt.datetime:
            return self.clock()

        self.issuing = Issuing(db, now)
        self.verifying = Verifying(db, now)
        self.consents = Consents(db, now)
        self.keys = Keys(db, now)
        self.trust = Trust(db, now)
        self.pulling = Pulling(db, self.consents, self.verifying)

    async def verify_read(self, p: auth.Principal, name: str, *, purpose: str,
                          application: str) -> Verification:
        """VerifyCertificate's use case (Verifying.verify); govflow/bench times it here."""
        return await self.verifying.verify(p, name, purpose=purpose, application=application)
