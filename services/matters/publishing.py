"""The catalogue's use cases: PublishMatter (a changed definition makes a new version),
GetMatter and ListMatters (search, filters and pages over each matter's latest version)."""

from __future__ import annotations

import itertools

from sqlalchemy.engine import Connection
from sqlmodel import Session

from govflow import auth
from govflow.db import Database
from govflow.errors import PermissionDenied
from services.matters.domain import definition
from services.matters.domain.applications import MatterVersion
from services.matters.domain.catalogue_search import CatalogueQuery, catalogue_entry, index_entries
from services.matters.store import matters
from services.matters.store.caches import CatalogueCache, CatalogueSnapshot


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


# New versions a ListMatters reads and parses inline (on SQLite, on the event loop); more
# go to a worker thread (about 0.25 ms each).
INLINE_NEW_VERSIONS = 32


class Catalogue:
    """ListMatters: a search of the snapshot in ``cache``, read again from the database
    when the catalogue's mark has moved (a publish by any process)."""

    def __init__(self, db: Database, cache: CatalogueCache) -> None:
        self.db = db
        self.cache = cache

    async def search(self, query: CatalogueQuery, *, offset: int, limit: int
                     ) -> tuple[list[MatterVersion], bool]:
        """The page of matching matters (by code) from ``offset``, and whether more follow."""
        snap = await self._current()
        found = query.positions(snap.index)
        page = [snap.versions[i] for i in itertools.islice(found, offset, offset + limit)]
        return page, next(found, None) is not None

    async def _current(self) -> CatalogueSnapshot:
        """The snapshot at the catalogue's current mark: the held one, or one made of the
        held entries and the versions published since. Many new versions (the first call
        after a start, or after a bulk load) are read and parsed in a worker thread, not
        inline on the event loop where SQLite reads run."""
        got = await self.db.read(self._look)
        if isinstance(got, CatalogueSnapshot):
            return got
        mark, ids = got
        if sum(i not in self.cache.entries for i in ids) > INLINE_NEW_VERSIONS:
            return await self.db.run(lambda s: self._build(s.connection(), mark, ids))
        return await self.db.read(lambda conn: self._build(conn, mark, ids))

    def _look(self, conn: Connection) -> CatalogueSnapshot | tuple[tuple[int, int], list[int]]:
        mark = matters.catalogue_mark(conn)
        if self.cache.snapshot.mark == mark:
            return self.cache.snapshot
        return mark, matters.newest_ids(conn)

    def _build(self, conn: Connection, mark: tuple[int, int], ids: list[int]) -> CatalogueSnapshot:
        # A new dict each time (never changed in place): reads on PostgreSQL run in worker
        # threads, and two may make a snapshot at once (either one is right; the next call
        # checks the mark again).
        held = self.cache.entries
        entries = {i: held[i] for i in ids if i in held}
        for i, mv in matters.versions_by_id(conn, [i for i in ids if i not in held]):
            entries[i] = (catalogue_entry(mv.spec, mv.version, mv.definition_yaml), mv)
        self.cache.entries = entries
        index = index_entries(e for e, _ in entries.values())
        by_code = {e.code: mv for e, mv in entries.values()}
        snap = CatalogueSnapshot(mark=mark, index=index,
                                 versions=tuple(by_code[e.code] for e in index.entries))
        self.cache.snapshot = snap
        return snap
