"""``govflow audit verify`` and ``govflow audit head``: check each service's audit chain
straight from its database (the settings' URLs), and save heads to anchor them elsewhere."""

from __future__ import annotations

import datetime as dt
import json
import pathlib
import sys
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from govflow import audit
from govflow.db import make_engine, normalise_url
from govflow.settings import Settings
from services.certificates import store as certificates_store
from services.identity.store import tables as identity_tables
from services.matters import store as matters_store

# service -> (chain, entry table, head table)
CHAINS: dict[str, tuple[str, type, type]] = {
    "identity": ("identity", identity_tables.AuditEntryRow, identity_tables.AuditHeadRow),
    "certificates": ("certificates", certificates_store.AuditEntryRow,
                     certificates_store.AuditHeadRow),
    "matters": ("decisions", matters_store.AuditEntryRow, matters_store.AuditHeadRow),
}


def _engine(settings: Settings, service: str) -> sa.Engine | None:
    url = normalise_url(settings.database_url(service))
    if url.startswith("sqlite") and not pathlib.Path(url.split("///", 1)[-1]).exists():
        return None  # never create an empty database by looking for one
    return make_engine(url)


def verify_chains(settings: Settings, anchors: dict[str, Any] | None = None
                  ) -> dict[str, audit.Report]:
    out: dict[str, audit.Report] = {}
    for service, (chain, entry_cls, head_cls) in CHAINS.items():
        engine = _engine(settings, service)
        if engine is None:
            out[service] = audit.Report(chain, problem="no database")
            continue
        try:
            with Session(engine) as s:
                out[service] = audit.read_and_verify(s, chain, entry_cls, head_cls,
                                                     (anchors or {}).get(service))
        except sa.exc.SQLAlchemyError as exc:
            out[service] = audit.Report(chain, problem=f"cannot read: {exc.__class__.__name__}: "
                                                       f"{str(exc).splitlines()[0]}")
        finally:
            engine.dispose()
    return out


def heads(settings: Settings) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for service, (chain, _, head_cls) in CHAINS.items():
        engine = _engine(settings, service)
        if engine is None:
            continue
        try:
            with Session(engine) as s:
                seq, digest = audit.read_head(s, chain, head_cls)
        finally:
            engine.dispose()
        out[service] = {"chain": chain, "seq": seq, "hash": digest,
                        "taken": dt.datetime.now(dt.UTC).isoformat()}
    return out


def verify_command(settings: Settings, anchors_file: pathlib.Path | None) -> int:
    """Prints one line per chain; exit 0 when every chain verifies, 1 otherwise."""
    anchors = json.loads(anchors_file.read_text()) if anchors_file else None
    ok = True
    for service, r in verify_chains(settings, anchors).items():
        if r.ok:
            print(f"{service}/{r.chain}: ok, {r.entries} entries, head {r.head_seq} "
                  f"{r.head_hash[:16]}…")
        else:
            ok = False
            where = f" at entry {r.broken_seq}" if r.broken_seq is not None else ""
            print(f"{service}/{r.chain}: BROKEN{where}: {r.problem}")
    return 0 if ok else 1


def head_command(settings: Settings, out: pathlib.Path | None) -> int:
    """Prints (and saves) the chain heads: keep them elsewhere as anchors."""
    text = json.dumps(heads(settings), indent=2)
    if out is not None:
        out.write_text(text + "\n")
    sys.stdout.write(text + "\n")
    return 0
