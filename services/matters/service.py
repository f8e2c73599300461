"""Matters' use cases, composed once per process: the catalogue (``publishing``),
calendars (``calendars``), submissions (``submission``), an applicant's actions
(``applicants``), officers' actions (``officers``), the workflow's writes and the
statistics (``read_model``), and the reads that answer most calls (``reads``). The caches
they share are in ``store/caches.py``."""

from __future__ import annotations

from govflow.db import Database
from services.matters.applicants import Applicants
from services.matters.calendars import Calendars
from services.matters.delegations import DelegationCheck, NoDelegationCheck
from services.matters.officers import Officers
from services.matters.publishing import Catalogue
from services.matters.store.caches import Caches
from services.matters.submission import Submissions
from services.matters.workflow_client import TemporalLink


class Matters:
    def __init__(self, db: Database, temporal: TemporalLink, *, submit_rate_limit: int = 0,
                 rate_window_seconds: int = 60,
                 delegations: DelegationCheck | NoDelegationCheck | None = None) -> None:
        self.db = db
        # A partner acts for an applicant only under the applicant's delegation (identity).
        self.delegations = delegations or NoDelegationCheck()
        self.temporal = temporal
        self.caches = Caches()
        self.catalogue = Catalogue(db, self.caches.catalogue)
        self.calendars = Calendars(db, temporal)
        self.submissions = Submissions(db, temporal, self.calendars,
                                       rate_limit=submit_rate_limit,
                                       rate_window_seconds=rate_window_seconds,
                                       delegations=self.delegations)
        self.applicants = Applicants(db, temporal, self.calendars, self.delegations)
        self.officers = Officers(db, temporal, self.caches.task_routes)

    async def resume_unstarted(self) -> int:
        """Starts workflows a crash left unstarted (between the insert and the start)."""
        return await self.submissions.resume_unstarted()


__all__ = ["Matters", "TemporalLink"]
