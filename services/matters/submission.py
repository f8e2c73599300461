"""SubmitApplication: who may apply for whom, one request per request_id, one result per
holder, the application and its timeline stored, then its workflow started with the
promised due time counted on the published calendar."""

from __future__ import annotations

import functools

import sqlalchemy as sa
from sqlmodel import Session

from govflow import auth, faults, ratelimit
from govflow.db import Database
from services.matters import domain
from services.matters.calendars import Calendars
from services.matters.delegations import (
    DelegationCheck,
    NoDelegationCheck,
    acts_under_delegation,
)
from services.matters.domain.applications import Application
from services.matters.domain.definition import MatterSpec
from services.matters.store import applications, matters
from services.matters.store.tables import SubmissionRateRow
from services.matters.workflow_client import TemporalLink
from workflows.models import ApplicationInput, ChildApplication, workflow_id


class Submissions:
    def __init__(self, db: Database, temporal: TemporalLink, calendars: Calendars, *,
                 rate_limit: int = 0, rate_window_seconds: int = 60,
                 delegations: DelegationCheck | NoDelegationCheck | None = None) -> None:
        self.db, self.temporal, self.calendars = db, temporal, calendars
        self.delegations = delegations or NoDelegationCheck()
        # SubmitApplication calls per caller per window (0: no limit), across replicas.
        self.rate_limit = rate_limit
        self.rate_window_seconds = rate_window_seconds

    async def submit(self, p: auth.Principal, *, matter: str, applicant: str,
                     request_id: str, pledges: list[str] | None = None,
                     token: str = "") -> Application:
        """SubmitApplication; ``token``: the caller's bearer token, with which a partner's
        delegation is checked (and its use recorded) at identity before anything is
        written here."""
        code, applicant = domain.submission_request(p, matter=matter, applicant=applicant,
                                                    request_id=request_id)
        if self.rate_limit > 0:
            # In a transaction of its own, so that submissions which then fail count too.
            await self.db.write(lambda conn: ratelimit.hit(
                conn, SubmissionRateRow, f"submit:{p.subject}", limit=self.rate_limit,
                window_seconds=self.rate_window_seconds, what="submissions"))
        delegation = ""
        if acts_under_delegation(p):
            delegation = await self.delegations.use(
                token, applicant=applicant, matter_code=code, action="SubmitApplication",
                target=f"request_id:{request_id}")
        wanted = sorted(set(pledges or []))

        def earlier_request(s: Session) -> Application | None:
            existing = applications.by_request(s, p.subject, request_id)
            if existing is not None:
                domain.same_request(existing, request_id, matter_code=code,
                                    applicant=applicant, pledges=wanted)
            return existing

        def insert(s: Session) -> tuple[Application, MatterSpec]:
            existing = earlier_request(s)
            if existing is not None:
                return existing, matters.spec(s, existing.matter_code, existing.matter_version)
            mv = matters.get(s, code)
            spec = mv.spec
            domain.check_applicant_kind(spec, applicant)
            children = [matters.spec(s, b.matter) for b in spec.bundle]
            domain.check_pledges([spec, *children], wanted)
            for child in children:
                domain.check_applicant_kind(child, applicant, in_life_event=True)
            held = [c for c in [spec, *children] if c.one_per_holder]
            if held:
                # Submissions that could take the same result take turns from here to the
                # commit, so two at once cannot both pass the check.
                applications.lock_holdings(s, [domain.holding_key(c, applicant) for c in held])
                existing = earlier_request(s)  # the same request may have had its turn first
                if existing is not None:
                    return existing, matters.spec(s, existing.matter_code,
                                                  existing.matter_version)
                for c in held:
                    domain.refuse_if_held(p, c, applicant,
                                          applications.holding(s, c.code, applicant))
            app = applications.add(s, spec, version=mv.version, applicant=applicant,
                                   submitter=p.subject, request_id=request_id, pledges=wanted,
                                   delegation=delegation)
            for child in children:
                applications.add(s, child, version=child.version, applicant=applicant,
                                 submitter=p.subject, request_id=f"{request_id}/{child.code}",
                                 pledges=wanted, parent_id=app.id)
            return app, spec

        try:
            app, spec = await self.db.run(insert)
        except sa.exc.IntegrityError:
            # A concurrent duplicate won the insert: return the one that exists.
            app, spec = await self.db.run(insert)
        if not app.workflow_started:
            faults.crash_point("matters.submit.after_insert")  # test-only; inert by default
            await self.start_workflow(app, spec)
        return app

    async def start_workflow(self, app: Application, spec: MatterSpec) -> None:
        """Starts the application's workflow and notes it started."""
        children = await self.db.run(lambda s: self._children(s, app, spec)) if spec.bundle else []
        submitted = domain.aware(app.create_time)
        assert submitted is not None
        # The promised due time, counted here and handed to the workflow as input: a
        # recorded value, so a later change of the calendar never changes its replay.
        (due,) = await self.calendars.due_times(spec.calendar,
                                                [(submitted, spec.promised_limit_days)])
        await self.temporal.start_application(workflow_id(app.id), ApplicationInput(
            application_id=app.id, matter=spec, applicant=app.applicant,
            submitted_by=app.submitted_by, request_id=app.request_id,
            submitted_at=submitted.isoformat(),
            pledges=[c for c in app.pledges.split(",") if c],
            children=children, due_time=due.time.isoformat(), due_provisional=due.provisional))
        await self.db.write(lambda conn: applications.mark_started(conn, app.id))

    @staticmethod
    def _children(s: Session, app: Application, spec: MatterSpec) -> list[ChildApplication]:
        kids = {c.matter_code: c for c in applications.children(s, app.id)}
        return [ChildApplication(application_id=kids[b.matter].id,
                                 matter=matters.spec(s, b.matter, kids[b.matter].matter_version),
                                 after=b.after)
                for b in spec.bundle]

    async def resume_unstarted(self) -> int:
        """Starts workflows for applications persisted before a crash stopped their start."""
        unstarted = await self.db.run(applications.unstarted)
        for app in unstarted:
            spec = await self.db.run(functools.partial(
                matters.spec, code=app.matter_code, version=app.matter_version))
            await self.start_workflow(app, spec)
        return len(unstarted)
