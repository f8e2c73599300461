"""Delegations: a person (or an organisation, through its legal representative) lets a
partner act for it in named matters or for named purposes until a time, and sees every
action the partner took under it. CreateDelegation, RevokeDelegation, ListDelegations,
UseDelegation (the check Govflow's services make, with the partner's own token, before a
partner acts for someone) and ListDelegationUses (the grantor's access records).

Every grant, revocation and use is appended to identity's audit chain in the transaction
that makes it; a refused use writes nothing."""

from __future__ import annotations

import datetime as dt
import re

from sqlmodel import Session

from govflow import auth, log
from govflow.db import Database
from govflow.errors import InvalidArgument, NotFound, PermissionDenied
from services.identity import access, domain
from services.identity.domain import Delegation, DelegationUse
from services.identity.persons import new_id
from services.identity.store import audit
from services.identity.store import delegations as store
from services.identity.store import partners as partner_store
from services.identity.store.tables import utcnow

_ACTION = re.compile(r"^[A-Za-z][A-Za-z0-9]{0,63}$")
MAX_REQUEST_ID = 128
MAX_TARGET = 200


def delegation_not_found(name: str) -> NotFound:
    return NotFound(f"{name} not found", reason="DELEGATION_NOT_FOUND")


def _grantor_of(name: str, field: str) -> str:
    """``persons/{id}`` or ``organisations/{id}``; INVALID_ARGUMENT otherwise."""
    kind, _, rest = name.partition("/")
    if kind not in ("persons", "organisations") or not rest or "/" in rest:
        raise InvalidArgument(fields={field: "must be persons/{person} or "
                                             "organisations/{organisation}"})
    return name


def _split_name(name: str, field: str = "name") -> tuple[str, str]:
    """(grantor, delegation id) of ``{grantor}/delegations/{id}``."""
    grantor, sep, delegation_id = name.rpartition("/delegations/")
    if not sep or not delegation_id or "/" in delegation_id:
        raise InvalidArgument(fields={field: "must be {grantor}/delegations/{delegation}"})
    return _grantor_of(grantor, field), delegation_id


def _may_grant(s: Session, p: auth.Principal, grantor: str) -> str:
    """``grantor`` when the caller may grant and revoke for it: the person themself, or an
    organisation's legal representative. Nobody else, platform admins included: the
    permission must come from the grantor. NOT_FOUND for those who may not see the
    grantor, PERMISSION_DENIED for those who may."""
    if grantor.startswith("persons/"):
        if p.kind == auth.PERSON and p.subject == grantor:
            access.get_person(s, grantor)
            return grantor
        if not access.sees_persons(p):
            raise access.person_not_found(grantor)
        access.get_person(s, grantor)
        raise PermissionDenied("only the person themself may delegate", reason="OWNER_ONLY")
    org = access.get_organisation(s, grantor)
    if p.kind == auth.PERSON and p.subject == f"persons/{org.legal_representative}":
        return grantor
    if not access.sees_organisation(s, p, org):
        raise access.organisation_not_found(grantor)
    raise PermissionDenied("only the legal representative may delegate for an organisation",
                           reason="NOT_LEGAL_REPRESENTATIVE")


def _may_read(s: Session, p: auth.Principal, grantor: str) -> str:
    """``grantor`` when the caller may read its delegations and access records: whoever
    may grant, a person whose token acts for the organisation, and platform admins."""
    if access.is_platform_admin(p):
        if grantor.startswith("persons/"):
            access.get_person(s, grantor)
        else:
            access.get_organisation(s, grantor)
        return grantor
    if (grantor.startswith("organisations/") and p.kind == auth.PERSON
            and p.acting_for == grantor):
        org = access.get_organisation(s, grantor)
        if access.represents(s, p.subject.removeprefix("persons/"), org.id):
            return grantor
    return _may_grant(s, p, grantor)


class Delegations:
    """CreateDelegation, RevokeDelegation, ListDelegations, UseDelegation and
    ListDelegationUses."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, p: auth.Principal, parent: str, *, delegate: str,
                     matters: list[str], purposes: list[str],
                     expire_time: dt.datetime | None, request_id: str) -> Delegation:
        """CreateDelegation: the grantor's permission for a partner; audited."""
        grantor = _grantor_of(parent, "parent")
        if len(request_id) > MAX_REQUEST_ID:
            raise InvalidArgument(fields={"request_id": f"at most {MAX_REQUEST_ID} characters"})

        def work(s: Session) -> Delegation:
            _may_grant(s, p, grantor)
            key = f"{p.subject}:{grantor}:{request_id}" if request_id else None
            if key is not None:
                existing = store.by_request(s, key)
                if existing is not None:
                    return existing
            now = utcnow()
            client_id, codes, aims, until = domain.validate_delegation(
                delegate=delegate, matters=matters, purposes=purposes, expire_time=expire_time,
                now=now)
            partner = partner_store.get(s, client_id)
            if partner is None or partner.kind != auth.PARTNER or partner.disabled:
                raise InvalidArgument(fields={"delegation.delegate":
                                              "must name an enabled partner"})
            d = store.add(s, delegation_id=new_id(), grantor=grantor,
                          delegate=f"partners/{client_id}", matters=codes, purposes=aims,
                          expire_time=until, granted_by=p.subject, request_key=key)
            audit.append(s, actor=p.subject, action="delegation.created", subject=d.name,
                         details={"delegate": d.delegate, "matters": list(d.matters),
                                  "purposes": list(d.purposes),
                                  "expire_time": until.isoformat()})
            return d

        return await self.db.run(work)

    async def revoke(self, p: auth.Principal, name: str) -> Delegation:
        """RevokeDelegation: from now on the partner may not act under it."""
        grantor, delegation_id = _split_name(name)

        def work(s: Session) -> Delegation:
            _may_grant(s, p, grantor)
            d = store.get(s, grantor, delegation_id)
            if d is None:
                raise delegation_not_found(name)
            if d.revoke_time is not None:
                return d  # revoking twice changes nothing
            d = store.revoke(s, delegation_id, utcnow())
            audit.append(s, actor=p.subject, action="delegation.revoked", subject=d.name,
                         details={"delegate": d.delegate})
            return d

        return await self.db.run(work)

    async def list_delegations(self, p: auth.Principal, parent: str, *, show_inactive: bool,
                               offset: int, limit: int) -> list[Delegation]:
        """ListDelegations: a grantor's, or a partner's own."""
        live_at = None if show_inactive else utcnow()
        if parent.startswith("partners/"):
            if not (p.subject == parent and p.kind == auth.PARTNER) \
                    and not access.is_platform_admin(p):
                raise PermissionDenied("a partner lists only its own delegations",
                                       reason="PARTNER_ONLY")
            return await self.db.run(lambda s: store.listing(
                s, delegate=parent, live_at=live_at, offset=offset, limit=limit))
        grantor = _grantor_of(parent, "parent")

        def work(s: Session) -> list[Delegation]:
            _may_read(s, p, grantor)
            return store.listing(s, grantor=grantor, live_at=live_at, offset=offset,
                                 limit=limit)

        return await self.db.run(work)

    async def use(self, p: auth.Principal, *, grantor: str, matter: str, purpose: str,
                  action: str, target: str) -> DelegationUse:
        """Records a partner's action for ``grantor`` under a live delegation covering it;
        PERMISSION_DENIED (NO_DELEGATION) and nothing written if there is none."""
        if p.kind != auth.PARTNER:
            raise PermissionDenied("only partners act under delegations",
                                   reason="PARTNERS_ONLY")
        problems: dict[str, str] = {}
        try:
            _grantor_of(grantor, "grantor")
        except InvalidArgument as e:
            problems.update(e.fields)
        code = matter.removeprefix("matters/")
        if matter and (not matter.startswith("matters/") or not code):
            problems["matter"] = "must be matters/{code}"
        if len(purpose) > domain.MAX_PURPOSE_CHARS:
            problems["purpose"] = f"at most {domain.MAX_PURPOSE_CHARS} characters"
        if not matter and not purpose.strip():
            problems["matter"] = "name the matter or the purpose"
        if not _ACTION.match(action):
            problems["action"] = "required: the RPC's name"
        if len(target) > MAX_TARGET:
            problems["target"] = f"at most {MAX_TARGET} characters"
        if problems:
            raise InvalidArgument(fields=problems)

        def work(s: Session) -> DelegationUse:
            partner = partner_store.get(s, p.subject.removeprefix("partners/"))
            d = None
            if partner is not None and not partner.disabled:
                d = store.live_covering(s, grantor=grantor, delegate=p.subject, matter=code,
                                        purpose=purpose, now=utcnow())
            if d is None:
                # The same answer whether the grantor exists or not: nothing to learn.
                raise PermissionDenied(
                    f"{p.subject} holds no live delegation from {grantor} for this",
                    reason="NO_DELEGATION", metadata={"grantor": grantor, "matter": matter})
            use = store.add_use(s, d, partner=p.subject, action=action, matter=code,
                                purpose=purpose, target=target,
                                request_id=log.request_id_var.get())
            audit.append(s, actor=p.subject, action="delegation.used", subject=d.name,
                         details={"action": action, "matter": code, "purpose": purpose,
                                  "target": target})
            return use

        return await self.db.run(work)

    async def uses(self, p: auth.Principal, parent: str, *, offset: int,
                   limit: int) -> list[DelegationUse]:
        """The grantor's access records: of one delegation, or of all (``.../delegations/-``)."""
        grantor, delegation_id = _split_name(parent, "parent")

        def work(s: Session) -> list[DelegationUse]:
            _may_read(s, p, grantor)
            if delegation_id != "-" and store.get(s, grantor, delegation_id) is None:
                raise delegation_not_found(parent)
            return store.uses(s, grantor=grantor,
                              delegation_id=None if delegation_id == "-" else delegation_id,
                              offset=offset, limit=limit)

        return await self.db.run(work)
