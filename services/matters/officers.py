"""Officers' actions on tasks — ClaimTask, DecideTask, ReassignTask — sent to the
application's workflow as Updates, whose validators check role, agency and state."""

from __future__ import annotations

from sqlmodel import Session

from govflow import auth
from govflow.db import Database
from govflow.errors import NotFound
from govflow.lru import Lru
from services.matters import domain
from services.matters.domain.applications import Task, task_from_record
from services.matters.store import tasks
from services.matters.workflow_client import TemporalLink
from workflows.models import OfficerAction, TaskRecord, workflow_id


def task_of_agency(s: Session, p: auth.Principal, name: str) -> Task:
    """The task ``name`` of the official's agency; NOT_FOUND otherwise."""
    domain.check_official(p)
    task = tasks.get(s, name) if name.startswith("tasks/") else None
    if task is None or task.agency != p.agency:
        raise NotFound(f"{name} not found", reason="TASK_NOT_FOUND")
    return task


class Officers:
    def __init__(self, db: Database, temporal: TemporalLink,
                 routes: Lru[str, tuple[str, str]]) -> None:
        self.db, self.temporal = db, temporal
        # A task's workflow and agency (store/caches.py: they never change), so a
        # claim-then-decide looks the task up once.
        self.routes = routes

    async def act(self, p: auth.Principal, name: str, update: str, decision: str = "",
                  reasons: list[str] | None = None, missing: list[str] | None = None,
                  assignee: str = "") -> Task:
        """Sends the officer's action to the workflow as ``update``; the task as the
        workflow now has it."""
        wid, agency = self.routes.get(name) or (None, None)
        if wid is None or agency != p.agency or p.kind != auth.OFFICIAL:
            task = await self.db.run(lambda s: task_of_agency(s, p, name))
            wid = task.workflow_id or workflow_id(task.application_id)
            self.routes.put(name, (wid, task.agency))
        action = OfficerAction(task=name, officer=p.subject, agency=p.agency, roles=list(p.roles),
                               decision=decision, reasons=list(reasons or []),
                               missing_materials=list(missing or []), assignee=assignee)
        # The workflow answers as soon as its state has changed (the answer is the task as
        # it now stands); its read-model writes land right after (workflows/application.py,
        # OFFICER_ANSWER_FIRST).
        record: TaskRecord = await self.temporal.update(wid, update, action, TaskRecord)
        return task_from_record(record)
