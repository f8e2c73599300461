"""Delegations (table ``delegations``) and their uses, the grantors' access records
(table ``delegation_uses``)."""

from __future__ import annotations

import datetime as dt
import json

from sqlmodel import Session, col, select

from services.identity.domain import Delegation, DelegationUse
from services.identity.store.tables import DelegationRow, DelegationUseRow


def _delegation(row: DelegationRow) -> Delegation:
    return Delegation(id=row.id, grantor=row.grantor, delegate=row.delegate,
                      matters=tuple(m for m in row.matters.split(",") if m),
                      purposes=tuple(json.loads(row.purposes or "[]")),
                      expire_time=row.expire_time, create_time=row.create_time,
                      revoke_time=row.revoke_time, granted_by=row.granted_by)


def _use(row: DelegationUseRow) -> DelegationUse:
    assert row.id is not None
    return DelegationUse(id=row.id, delegation=f"{row.grantor}/delegations/{row.delegation_id}",
                         partner=row.partner, action=row.action, matter=row.matter,
                         purpose=row.purpose, target=row.target, time=row.time,
                         request_id=row.request_id)


def add(s: Session, *, delegation_id: str, grantor: str, delegate: str,
        matters: tuple[str, ...], purposes: tuple[str, ...], expire_time: dt.datetime,
        granted_by: str, request_key: str | None) -> Delegation:
    row = DelegationRow(id=delegation_id, grantor=grantor, delegate=delegate,
                        matters="".join(f",{m}" for m in matters) + ("," if matters else ""),
                        purposes=json.dumps(list(purposes)), expire_time=expire_time,
                        granted_by=granted_by, request_id=request_key)
    s.add(row)
    s.flush()
    return _delegation(row)


def get(s: Session, grantor: str, delegation_id: str) -> Delegation | None:
    row = s.get(DelegationRow, delegation_id)
    return _delegation(row) if row is not None and row.grantor == grantor else None


def by_request(s: Session, request_key: str) -> Delegation | None:
    row = s.exec(select(DelegationRow).where(DelegationRow.request_id == request_key)).first()
    return _delegation(row) if row is not None else None


def revoke(s: Session, delegation_id: str, when: dt.datetime) -> Delegation:
    """Marks the delegation revoked (once: a second revoke keeps the first time)."""
    row = s.get(DelegationRow, delegation_id)
    assert row is not None
    if row.revoke_time is None:
        row.revoke_time = when
        s.add(row)
        s.flush()
    return _delegation(row)


def listing(s: Session, *, grantor: str | None = None, delegate: str | None = None,
            live_at: dt.datetime | None, offset: int, limit: int) -> list[Delegation]:
    """A grantor's delegations, or a partner's; only live ones with ``live_at``; newest first."""
    q = select(DelegationRow)
    if grantor is not None:
        q = q.where(DelegationRow.grantor == grantor)
    if delegate is not None:
        q = q.where(DelegationRow.delegate == delegate)
    if live_at is not None:
        q = q.where(col(DelegationRow.revoke_time).is_(None),
                    col(DelegationRow.expire_time) > live_at)
    q = q.order_by(col(DelegationRow.create_time).desc(), col(DelegationRow.id)).offset(
        offset).limit(limit)
    return [_delegation(r) for r in s.exec(q)]


def live_covering(s: Session, *, grantor: str, delegate: str, matter: str, purpose: str,
                  now: dt.datetime) -> Delegation | None:
    """The live delegation from ``grantor`` to ``delegate`` covering the matter (a code) or
    purpose that expires last; None if there is none."""
    q = select(DelegationRow).where(
        DelegationRow.grantor == grantor, DelegationRow.delegate == delegate,
        col(DelegationRow.revoke_time).is_(None), col(DelegationRow.expire_time) > now)
    if matter and not purpose:  # narrows the rows; covers() below decides
        q = q.where(col(DelegationRow.matters).contains(f",{matter},"))
    found = [d for d in map(_delegation, s.exec(q)) if d.covers(matter=matter, purpose=purpose)]
    return max(found, key=lambda d: d.expire_time) if found else None


def add_use(s: Session, d: Delegation, *, partner: str, action: str, matter: str,
            purpose: str, target: str, request_id: str) -> DelegationUse:
    row = DelegationUseRow(delegation_id=d.id, grantor=d.grantor, partner=partner,
                           action=action, matter=matter, purpose=purpose, target=target,
                           request_id=request_id)
    s.add(row)
    s.flush()
    return _use(row)


def uses(s: Session, *, grantor: str, delegation_id: str | None, offset: int,
         limit: int) -> list[DelegationUse]:
    """The grantor's access records (of one delegation, or all), newest first."""
    q = select(DelegationUseRow).where(DelegationUseRow.grantor == grantor)
    if delegation_id is not None:
        q = q.where(DelegationUseRow.delegation_id == delegation_id)
    q = q.order_by(col(DelegationUseRow.id).desc()).offset(offset).limit(limit)
    return [_use(r) for r in s.exec(q)]
