"""The catalogue's use cases: PublishMatter (a changed definition makes a new version),
GetMatter and ListMatters."""

from __future__ import annotations

from sqlmodel import Session

from govflow import auth
from govflow.errors import PermissionDenied
from services.matters.domain import definition
from services.matters.domain.applications import MatterVersion
from services.matters.store import matters


def publish(s: Session, text: str, p: auth.Principal | None = None) -> MatterVersion:
    """Parses and stores a definition as the matter's next version; the same definition
    published again makes no new version. An agency's admin publishes its own agency's
    matters only."""
    spec = definition.parse(text)
    fp = definition.fingerprint(text)
    latest = matters.find(s, spec.code)
    if p is not None and p.kind == auth.OFFICIAL and (
            spec.agency != p.agency or (latest is not None and latest.agency != p.agency)):
        raise PermissionDenied("an agency's admin publishes its own agency's matters only",
                               reason="OTHER_AGENCY")
    if latest is not None and latest.fingerprint == fp:
        return latest  # unchanged: publishing again makes no new version
    spec.version = (latest.version if latest else 0) + 1
    return matters.add(s, spec, text=text, fingerprint=fp)


get = matters.get
listing = matters.listing
