"""Tamper-evident audit chains: append-only, hash-chained, one per service database.

Each entry is a JSON object ``{"chain", "seq", "time", "action", "actor", "subject",
"details", "request_id"}`` stored in its RFC 8785 canonical form, and

    hash(entry) = SHA-256( prev_hash_hex_ascii || canonical_json(entry) )

with ``prev_hash`` of the first entry 64 zeros. Entries are appended in the same
transaction as the change they record. The chain head (``seq`` and ``hash`` of the newest
entry) lives in a one-row-per-chain table whose row is updated *first* by every append:
on PostgreSQL that takes the row lock, on SQLite the write lock, so concurrent writers
queue there and can never both extend the same entry (no fork).

Altering an entry breaks its hash; deleting one leaves a gap in ``seq`` and a broken link;
cutting the tail leaves the head row pointing past the end — and if the head row is
rewound as well, an anchor (a head saved elsewhere: ``govflow audit head`` or the
``GetAuditHead`` RPCs) no longer matches.

Each service defines its own two tables (it owns its database) with the columns of
``EntryColumns``/``HeadColumns``; this module only needs their classes.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import hashlib
import json
from collections.abc import Iterable
from typing import Any, Protocol

import rfc8785
import sqlalchemy as sa
from sqlmodel import Field, Session, SQLModel, select

GENESIS = "0" * 64


class EntryColumns(Protocol):
    seq: int
    time: str
    action: str
    actor: str
    subject: str
    entry_json: str
    prev_hash: str
    hash: str


class HeadColumns(Protocol):
    chain: str
    seq: int
    hash: str


class AuditEntryBase(SQLModel):
    """Columns of one audit-chain entry. Each service declares its own table from this
    (``class X(AuditEntryBase, table=True)`` with its own ``__tablename__``). Append-only:
    written in the transaction of the change it records, never updated."""

    seq: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    time: str  # ISO 8601, as hashed
    action: str = Field(index=True)
    actor: str
    subject: str = Field(index=True)
    entry_json: str  # the RFC 8785 canonical entry that was hashed
    prev_hash: str
    hash: str


class AuditHeadBase(SQLModel):
    """The head of a chain: updated first by every append, which serialises them."""

    chain: str = Field(primary_key=True)
    seq: int = 0
    hash: str


def canonical(entry: dict[str, Any]) -> bytes:
    return rfc8785.dumps(entry)


def chain_hash(prev_hash: str, entry_json: bytes) -> str:
    return hashlib.sha256(prev_hash.encode("ascii") + entry_json).hexdigest()


def append(s: Session | sa.Connection, entry_cls: type, head_cls: type, *, chain: str, action: str,
           actor: str, subject: str, details: dict[str, Any], request_id: str = "",
           time: dt.datetime | None = None) -> int:
    """Appends one entry to ``chain`` inside the caller's transaction (a session's or a
    connection's); returns its seq.

    Core statements, built once per chain table (no ORM unit of work: an append is three
    statements, and the ORM's bookkeeping for them cost several times their work)."""
    bump, insert, set_hash = _statements(entry_cls, head_cls)
    conn = s if isinstance(s, sa.Connection) else s.connection()
    # The UPDATE comes first: it serialises appenders (row lock / SQLite write lock)
    # before anyone reads the head they will extend; RETURNING reads it in the same step.
    bumped = conn.execute(bump, {"chain_name": chain}).first()
    if bumped is None:
        raise RuntimeError(f"audit chain {chain!r} has no head row (tampered, or not migrated)")
    seq, prev = int(bumped[0]), str(bumped[1])
    when = (time or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    entry = {"chain": chain, "seq": seq, "time": when.isoformat(timespec="microseconds"),
             "action": action, "actor": actor, "subject": subject, "details": details,
             "request_id": request_id}
    body = canonical(entry)
    digest = chain_hash(prev, body)
    conn.execute(insert, {"seq": seq, "time": entry["time"], "action": action, "actor": actor,
                          "subject": subject, "entry_json": body.decode(), "prev_hash": prev,
                          "hash": digest})
    conn.execute(set_hash, {"chain_name": chain, "new_hash": digest})
    return seq


@functools.cache
def _statements(entry_cls: type, head_cls: type) -> tuple[Any, Any, Any]:
    """An append's three statements for one pair of chain tables: bump the head (and read
    it back), insert the entry, set the head's hash."""
    head: sa.Table = head_cls.__table__  # type: ignore[attr-defined]  # sqlmodel sets __table__ at class creation
    entries: sa.Table = entry_cls.__table__  # type: ignore[attr-defined]  # sqlmodel sets __table__ at class creation
    at_head = head.c.chain == sa.bindparam("chain_name")
    return (sa.update(head).where(at_head).values(seq=head.c.seq + 1).returning(
                head.c.seq, head.c.hash),
            sa.insert(entries),
            sa.update(head).where(at_head).values(hash=sa.bindparam("new_hash")))


@dataclasses.dataclass
class Report:
    chain: str
    entries: int = 0
    head_seq: int = 0
    head_hash: str = GENESIS
    problem: str = ""  # empty when the chain verifies
    broken_seq: int | None = None  # the first entry found broken (or missing)

    @property
    def ok(self) -> bool:
        return not self.problem


def verify(chain: str, rows: Iterable[EntryColumns], head: HeadColumns | None,
           anchor: dict[str, Any] | None = None) -> Report:
    """Checks a chain's entries (in ``seq`` order) against each other, its head row and an
    optional anchor ``{"seq", "hash"}``; reports the first broken entry."""
    report = Report(chain)
    prev, expected_seq = GENESIS, 1
    anchor_seen = anchor is None or int(anchor.get("seq", 0)) == 0

    def fail(seq: int, why: str) -> Report:
        report.problem, report.broken_seq = why, seq
        return report

    for row in rows:
        if row.seq != expected_seq:
            return fail(expected_seq, f"entry {expected_seq} is missing (next present is "
                                      f"{row.seq}): deleted")
        try:
            entry = json.loads(row.entry_json)
        except ValueError:
            return fail(row.seq, f"entry {row.seq} is not JSON")
        if canonical(entry).decode() != row.entry_json:
            return fail(row.seq, f"entry {row.seq} is not in canonical form: altered")
        if row.prev_hash != prev:
            return fail(row.seq, f"entry {row.seq} does not link to entry {row.seq - 1}")
        if chain_hash(prev, row.entry_json.encode()) != row.hash:
            return fail(row.seq, f"entry {row.seq}: hash mismatch, its content was altered")
        for column in ("seq", "action", "actor", "subject", "time"):
            if entry.get(column) != getattr(row, column) or entry.get("chain") != chain:
                return fail(row.seq, f"entry {row.seq}: column {column} differs from the "
                                     "hashed entry: altered")
        if anchor is not None and row.seq == int(anchor["seq"]):
            if row.hash != anchor["hash"]:
                return fail(row.seq, f"entry {row.seq} differs from the anchored head: "
                                     "the chain was rewritten")
            anchor_seen = True
        prev, expected_seq = row.hash, row.seq + 1
        report.entries += 1
    last = expected_seq - 1
    report.head_seq, report.head_hash = last, prev
    if head is None:
        return fail(last + 1, "the chain's head row is missing")
    if head.seq != last or head.hash != prev:
        return fail(last + 1, f"the head says {head.seq} entries ending {head.hash[:12]}…, the "
                              f"log has {last} ending {prev[:12]}…: entries after {last} were "
                              "removed (tail truncated)")
    if not anchor_seen and anchor is not None:
        return fail(last + 1, f"the anchored head (entry {anchor['seq']}) is past the end of the "
                              f"log ({last} entries): the tail was truncated")
    return report


def read_and_verify(s: Session, chain: str, entry_cls: type, head_cls: type,
                    anchor: dict[str, Any] | None = None) -> Report:
    """Streams a chain from the database and verifies it."""
    # mypy, next line: the chain's tables are passed in as types
    head = s.exec(select(head_cls).where(head_cls.chain == chain)).first()  # type: ignore[attr-defined]
    # entry_cls/head_cls are the service's own tables (AuditEntryBase/AuditHeadBase
    # subclasses), known here only as types: their columns are not visible to mypy.
    # mypy, next line: the chain's tables are passed in as types
    rows: Any = s.exec(select(entry_cls).order_by(entry_cls.seq).execution_options(  # type: ignore[attr-defined]
        yield_per=1000))
    return verify(chain, rows, head, anchor)


def read_head(s: Session, chain: str, head_cls: type) -> tuple[int, str]:
    # mypy, next line: the chain's tables are passed in as types
    head = s.exec(select(head_cls).where(head_cls.chain == chain)).first()  # type: ignore[attr-defined]
    return (int(head.seq), str(head.hash)) if head is not None else (0, GENESIS)
