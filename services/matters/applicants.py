"""An applicant's actions on their application: withdraw and supply materials (workflow
Updates) and rate it once it has ended (a rating of 1 or 2 starts a follow-up)."""

from __future__ import annotations

from sqlmodel import Session

from govflow import auth
from govflow.db import Database
from govflow.errors import NotFound
from services.matters import domain
from services.matters.calendars import Calendars
from services.matters.delegations import (
    DelegationCheck,
    NoDelegationCheck,
    acts_under_delegation,
)
from services.matters.domain.applications import Application
from services.matters.store import applications, tasks
from services.matters.store.tables import utcnow
from services.matters.workflow_client import TemporalLink
from workflows.models import ApplicantAction, FollowUpInput, workflow_id


def visible(s: Session, p: auth.Principal, name: str) -> Application:
    """The application ``name`` if ``p`` may see it; NOT_FOUND otherwise."""
    app = applications.get(s, name.removeprefix("applications/")) \
        if name.startswith("applications/") else None
    if app is None or not domain.may_see(p, app, lambda: tasks.agency_has_task(
            s.connection(), app.id, p.agency)):
        raise NotFound(f"{name} not found", reason="APPLICATION_NOT_FOUND")
    return app


class Applicants:
    def __init__(self, db: Database, temporal: TemporalLink, calendars: Calendars,
                 delegations: DelegationCheck | NoDelegationCheck | None = None) -> None:
        self.db, self.temporal, self.calendars = db, temporal, calendars
        self.delegations = delegations or NoDelegationCheck()

    async def under_delegation(self, p: auth.Principal, token: str, app: Application,
                               action: str) -> None:
        """A partner acts on an application only while the applicant's delegation to it
        covers the matter (the use is recorded at identity); PERMISSION_DENIED otherwise."""
        if acts_under_delegation(p):
            await self.delegations.use(token, applicant=app.applicant,
                                       matter_code=app.matter_code, action=action,
                                       target=f"applications/{app.id}")

    async def act(self, p: auth.Principal, name: str, update: str,
                  action: ApplicantAction, *, token: str = "", rpc: str = "") -> Application:
        """Sends the applicant's action to the workflow as ``update``; the application as
        it stands after. ``token`` and ``rpc``: for a partner's delegation check."""
        app = await self.db.run(lambda s: visible(s, p, name))
        domain.require_party(p, app, name)
        domain.check_not_in_life_event(app)
        await self.under_delegation(p, token, app, rpc or update)
        await self.temporal.update(workflow_id(app.id), update, action, str)
        return await self.db.run(lambda s: visible(s, p, name))

    async def rate(self, p: auth.Principal, name: str, score: int, comment: str, *,
                   token: str = "") -> Application:
        """RateApplication: once, after the end; 1 or 2 starts a supervisor follow-up."""
        domain.check_rating(score, comment)
        if acts_under_delegation(p):
            found = await self.db.run(lambda s: visible(s, p, name))
            domain.require_party(p, found, name)
            await self.under_delegation(p, token, found, "RateApplication")

        def work(s: Session) -> Application:
            app = visible(s, p, name)
            domain.require_party(p, app, name)
            domain.check_may_rate(app)
            return applications.rate(s, app.id, score=score, comment=comment, actor=p.subject)

        app = await self.db.run(work)
        if domain.needs_follow_up(score):
            # The follow-up's limit: 5 working days (a recorded input, as for applications).
            (due,) = await self.calendars.due_times("CN", [(utcnow(), 5)])
            await self.temporal.start_follow_up(FollowUpInput(
                application_id=app.id, matter=f"matters/{app.matter_code}", agency=app.agency,
                score=score, comment=comment, applicant=app.applicant,
                due_time=due.time.isoformat(), due_provisional=due.provisional))
        return app
