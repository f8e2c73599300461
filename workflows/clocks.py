"""An application's time limits in working days: the promised limit, the open step's, a
supplement request's and a pledge check's.

Every due time is counted by the matters service on the holiday calendar as published
when it is counted (the ``due_times`` local activity, a recorded result, so a calendar
published later never changes a replay). A limit reaching into a year with no published
calendar is provisional; when that year is published the workflow recounts it
(``Clocks.recount``) and its waits re-arm (``version``). The due-time search attributes
follow the clocks.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any

from temporalio import workflow
from temporalio.common import SearchAttributeUpdate

with workflow.unsafe.imports_passed_through():
    from workflows.activity_policy import ACTIVITY_TIMEOUT, RETRY
    from workflows.models import ApplicationInput, DueAnswer, DueQuery, DueRequest
    from workflows.search_keys import DUE_KEY, PROVISIONAL_KEY
    from workflows.timeline_wording import CLOCK_ZH, PROVISIONAL_EN, PROVISIONAL_ZH, named, zh_time


@dataclasses.dataclass
class Clock:
    """A time limit of the application: ``days`` working days from ``start`` (plus the
    time the clock stood still), as the due_times activity counted it."""

    start: dt.datetime
    days: int
    due: dt.datetime
    provisional: bool
    paused: dt.timedelta = dt.timedelta(0)
    label: str = ""


def provisional_note(clock: Clock, *, inline: bool = False) -> tuple[str, str]:
    """What a message adds when ``clock`` is provisional: (Chinese, English)."""
    if not clock.provisional:
        return "", ""
    if inline:
        return f"，{PROVISIONAL_ZH}", f", {PROVISIONAL_EN}"
    return (f"（办理时限 {zh_time(clock.due)}，{PROVISIONAL_ZH}）",
            f" (due {clock.due.isoformat()}, {PROVISIONAL_EN})")


async def due_times(region: str, queries: list[tuple[dt.datetime, int]]) -> list[DueAnswer]:
    """Due times counted by the matters service on the calendar as published now."""
    answers: list[DueAnswer] = await workflow.execute_local_activity(
        "due_times", DueRequest(region=region, queries=[
            DueQuery(start=start.isoformat(), days=days) for start, days in queries]),
        result_type=list[DueAnswer], start_to_close_timeout=ACTIVITY_TIMEOUT,
        retry_policy=RETRY)
    return answers


class Clocks:
    """The time limits now running, by purpose: "application" (the promised limit),
    "step", "supplement", "pledge"."""

    def __init__(self, inp: ApplicationInput) -> None:
        self.inp = inp
        self.running: dict[str, Clock] = {}
        # Bumped when a clock's due time moves (a calendar published): waits re-arm.
        self.version = 0
        self.recomputing = False
        self.calendars_published = 0  # calendar_published signals seen

    def get(self, key: str) -> Clock | None:
        return self.running.get(key)

    def any_provisional(self) -> bool:
        return any(c.provisional for c in self.running.values())

    async def promised(self) -> Clock:
        """The promised limit: counted at submission (the input), or here for a bundled
        matter started without one."""
        submitted = dt.datetime.fromisoformat(self.inp.submitted_at)
        days = self.inp.matter.promised_limit_days
        if self.inp.due_time:
            clock = Clock(start=submitted, days=days, label="promised",
                          due=dt.datetime.fromisoformat(self.inp.due_time),
                          provisional=self.inp.due_provisional)
        else:
            (answer,) = await due_times(self.inp.matter.calendar, [(submitted, days)])
            clock = Clock(start=submitted, days=days, label="promised",
                          due=dt.datetime.fromisoformat(answer.time),
                          provisional=answer.provisional)
        self.running["application"] = clock
        self.changed()
        return clock

    async def start(self, key: str, start: dt.datetime, days: int, label: str) -> Clock:
        seen = self.calendars_published
        (answer,) = await due_times(self.inp.matter.calendar, [(start, days)])
        if answer.provisional and self.calendars_published != seen:
            # A year was published while this was counted: count again on it.
            (answer,) = await due_times(self.inp.matter.calendar, [(start, days)])
        clock = Clock(start=start, days=days, due=dt.datetime.fromisoformat(answer.time),
                      provisional=answer.provisional, label=label)
        self.running[key] = clock
        if clock.provisional:
            self.changed()
        return clock

    def stop(self, key: str) -> None:
        clock = self.running.pop(key, None)
        if clock is not None and clock.provisional:
            self.changed()

    def changed(self) -> None:
        """Keeps the due-time search attributes in step with the clocks."""
        promised = self.running.get("application")
        attrs: list[SearchAttributeUpdate[Any]] = [PROVISIONAL_KEY.value_set(self.any_provisional())]
        if promised is not None:
            attrs.append(DUE_KEY.value_set(promised.due))
        workflow.upsert_search_attributes(attrs)

    async def recount(self, step_moved: Callable[[dt.datetime, bool], Awaitable[None]]
                      ) -> tuple[list[str], list[str]]:
        """Counts every provisional limit again on the calendar as published now and moves
        those whose due time changed (``step_moved`` moves the open step's tasks). The
        changes, in English and in Chinese; none when nothing moved."""
        provisional = [(k, c) for k, c in self.running.items() if c.provisional]
        if not provisional:
            return [], []
        answers = await due_times(self.inp.matter.calendar,
                                  [(c.start, c.days) for _, c in provisional])
        changes: list[str] = []
        changes_zh: list[str] = []
        for (key, clock), answer in zip(provisional, answers, strict=True):
            if self.running.get(key) is not clock:
                continue  # ended while the count was made
            due = dt.datetime.fromisoformat(answer.time) + clock.paused
            if due == clock.due and answer.provisional == clock.provisional:
                continue
            changes.append(f"{clock.label} {clock.due.isoformat()} -> {due.isoformat()}"
                           + (" (still provisional)" if answer.provisional else ""))
            changes_zh.append(f"{named(CLOCK_ZH, clock.label)} 由 {zh_time(clock.due)} "
                              f"调整为 {zh_time(due)}"
                              + ("（仍为暂定）" if answer.provisional else ""))
            clock.due, clock.provisional = due, answer.provisional
            if key == "step":
                await step_moved(due, answer.provisional)
        if changes:
            self.version += 1
            self.changed()
        return changes, changes_zh
