"""Identity's audit chain (tables ``identity_audit_log`` and ``identity_audit_heads``,
govflow/audit.py): delegations granted, revoked and used."""

from __future__ import annotations

from sqlmodel import Session

from govflow import audit, log
from services.identity.store.tables import AuditEntryRow, AuditHeadRow

AUDIT_CHAIN = "identity"


def append(s: Session, *, actor: str, action: str, subject: str,
           details: dict[str, object]) -> None:
    """Appends to the audit chain in the caller's transaction (see govflow/audit.py)."""
    audit.append(s, AuditEntryRow, AuditHeadRow, chain=AUDIT_CHAIN, action=action,
                 actor=actor, subject=subject, details=details,
                 request_id=log.request_id_var.get())
