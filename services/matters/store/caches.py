"""Every cache of the matters service, in one place, each with the rule that keeps it
correct. The one rule for cached responses: database triggers bump a version on every
write (``applications.version`` for an application, its timeline and its children,
migration a3c1e07d5b21; ``inbox_versions.version`` for an agency's tasks, migration
d41b7e2c9a60); every read queries the version first and serves a cached value only when
it was built at that version. The database decides, not this process, so the caches are
correct across replicas whatever path a write took.

The catalogue is the exception to the triggers: ``matter_versions`` is append-only, so
its row count and highest id (``store/matters.catalogue_mark``) change with every publish
whichever process commits it; ListMatters reads that mark first and searches its snapshot
only when it was built at that mark.

Besides these, ``Prepared`` statements (govflow/db.py) keep what they built from a row's
raw values (a fact of those values) and the store keeps its statements compiled per
filter shape (facts of the code)."""

from __future__ import annotations

import dataclasses
from typing import Any, Generic, TypeVar

from govflow.lru import Lru
from services.matters.domain.applications import MatterVersion
from services.matters.domain.catalogue_search import CatalogueEntry, CatalogueIndex, index_entries

V = TypeVar("V")


class VersionedCache(Generic[V]):
    """At most ``size`` values by key, each with the version it was built from; least
    recently used first out. Safe to use from the loop and worker threads at once."""

    def __init__(self, size: int) -> None:
        self._items: Lru[str, tuple[int, V]] = Lru(size)

    def get(self, key: str, version: int) -> V | None:
        item = self._items.get(key)
        return item[1] if item is not None and item[0] == version else None

    def put(self, key: str, version: int, value: V) -> None:
        # A newer one already held stays (versions only grow).
        self._items.put(key, (version, value), replace=lambda held: held[0] <= version)

    def __len__(self) -> int:
        return len(self._items)


@dataclasses.dataclass(frozen=True)
class CatalogueSnapshot:
    """Each matter's latest version, by code, as read at ``mark``."""

    mark: tuple[int, int]
    index: CatalogueIndex
    versions: tuple[MatterVersion, ...]  # in the order of index.entries


EMPTY_CATALOGUE = CatalogueSnapshot((-1, -1), index_entries(()), ())


@dataclasses.dataclass
class CatalogueCache:
    """The catalogue snapshot ListMatters searches, and what it was built from: each latest
    version's entry by its row id, kept while it is the latest (a published version never
    changes)."""

    snapshot: CatalogueSnapshot = EMPTY_CATALOGUE
    entries: dict[int, tuple[CatalogueEntry, MatterVersion]] = dataclasses.field(
        default_factory=dict)


@dataclasses.dataclass
class Caches:
    """The service's caches (one set per process)."""

    # GetApplication responses by application id: served while the application's version
    # is the one the response was built at.
    applications: VersionedCache[Any] = dataclasses.field(
        default_factory=lambda: VersionedCache(4096))
    # ListTasks responses by filter and caller: served while the agency's inbox version is
    # the one the page was read at (pages that depend on the clock are never cached).
    inbox_pages: VersionedCache[Any] = dataclasses.field(
        default_factory=lambda: VersionedCache(4096))
    # A task's workflow id and agency, by task name: never invalidated, since neither ever
    # changes once the task exists (a miss just reads the task).
    task_routes: Lru[str, tuple[str, str]] = dataclasses.field(
        default_factory=lambda: Lru(10_000))
    # The catalogue ListMatters searches: served while the catalogue mark is the one it was
    # read at (see the module's docstring).
    catalogue: CatalogueCache = dataclasses.field(default_factory=CatalogueCache)
    # Matter messages by (code, version): never invalidated, since a published version
    # never changes.
    matter_messages: Lru[tuple[str, int], Any] = dataclasses.field(
        default_factory=lambda: Lru(4096))
