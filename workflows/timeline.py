"""The application's timeline as its workflow keeps it.

Events are numbered and timed when they happen, kept as pending, and recorded in the read
model with the next call the path makes (gather, issue, finish) or in one call before any
wait (``ApplicationWorkflow.flush``): in order, and idempotent by their sequence id, so a
repeated workflow task records nothing twice. The status follows the events: ``status``
at once, ``recorded_status`` once its event is in the read model (Updates wait on it, so a
caller reads back what it caused), and the GovflowStatus search attribute at the moments
the events are recorded.
"""

from __future__ import annotations

from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.models import Event
    from workflows.search_keys import STATUS_KEY


class Timeline:
    def __init__(self, application_id: str) -> None:
        self.application_id = application_id
        self.seq = 0
        self.status = "SUBMITTED"
        self.recorded_status = "SUBMITTED"
        # What the GovflowStatus search attribute shows.
        self.published_status = "SUBMITTED"
        self.pending: list[Event] = []

    def add(self, kind: str, message: str, message_en: str, **fields: Any) -> None:
        """A timeline event, recorded with the next call or before the next wait.
        ``message`` is in Simplified Chinese (the primary language), ``message_en`` the
        same in English; ``fields`` are Event's other fields (status, actor, reasons...)."""
        self.pending.append(self.new(kind, message, message_en, **fields))

    def new(self, kind: str, message: str, message_en: str, **fields: Any) -> Event:
        """The next timeline event: its place in the sequence and its time are taken now;
        a ``status`` in ``fields`` is the application's from now on."""
        self.seq += 1
        if status := fields.get("status"):
            self.status = status
        return Event(application_id=self.application_id, event_id=f"{self.seq:04d}-{kind}",
                     kind=kind, message=message, time=workflow.now().isoformat(),
                     message_en=message_en, **fields)

    def take(self) -> list[Event]:
        """The pending events, handed to the call that records them."""
        events, self.pending = self.pending, []
        return events

    def recorded(self, events: list[Event]) -> None:
        """``events`` are in the read model: Updates may read back the status they lead to."""
        for ev in events:
            if ev.status:
                self.recorded_status = ev.status

    def publish_status(self) -> None:
        """The status on the GovflowStatus search attribute (operators filter and see it
        in the Temporal UI), when it has moved since it was last set. The memo keeps what
        never changes (matter, applicant), so a status change is one history event."""
        if self.status != self.published_status:
            self.published_status = self.status
            workflow.upsert_search_attributes([STATUS_KEY.value_set(self.status)])
