"""The certificates service's audit chain (tables ``certificate_audit_log`` and
``certificate_audit_heads``, govflow/audit.py): issues, status changes, and every read by
someone other than the holder."""

from __future__ import annotations

from sqlalchemy.engine import Connection
from sqlmodel import Session

from govflow import audit, log
from services.certificates.store.tables import AuditEntryRow, AuditHeadRow

# The certificates service's audit chain (govflow/audit.py): issues, status changes, and
# every read by someone other than the holder.
AUDIT_CHAIN = "certificates"


def append(tx: Session | Connection, *, actor: str, action: str, certificate_id: str,
                 details: dict[str, object]) -> None:
    """Appends to the audit chain in the caller's transaction (see govflow/audit.py)."""
    audit.append(tx, AuditEntryRow, AuditHeadRow, chain=AUDIT_CHAIN, action=action,
                 actor=actor, subject=f"certificates/{certificate_id}", details=details,
                 request_id=log.request_id_var.get())


def append_about(tx: Session | Connection, *, actor: str, action: str, subject: str,
                 details: dict[str, object]) -> None:
    """Appends an entry about something other than one certificate (e.g. the trust list:
    subject ``issuers/{id}``) to the same chain, in the caller's transaction."""
    audit.append(tx, AuditEntryRow, AuditHeadRow, chain=AUDIT_CHAIN, action=action,
                 actor=actor, subject=subject, details=details,
                 request_id=log.request_id_var.get())
