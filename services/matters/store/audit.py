"""Matters' audit chain (govflow/audit.py): every decision, by rule or by an officer, and
every calendar publication, appended in the writer's transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Connection
from sqlmodel import Session

from govflow import audit, log
from services.matters.store.tables import AuditEntryRow, AuditHeadRow

AUDIT_CHAIN = "decisions"


def append(s: Session | Connection, *, action: str, actor: str, subject: str,
           details: dict[str, Any]) -> None:
    """Appends to matters' audit chain in the caller's transaction."""
    audit.append(s, AuditEntryRow, AuditHeadRow, chain=AUDIT_CHAIN, action=action, actor=actor,
                 subject=subject, details=details, request_id=log.request_id_var.get())
