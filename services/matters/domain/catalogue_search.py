"""Searching the catalogue: what ListMatters' filter may say, and which published matters
it selects. Plain Python: an entry is built once per published version (a version never
changes), an index of the latest ones once per change of the catalogue, and a query reads
the positions its equality terms select and the texts its keywords must be found in.

A filter is ``key=value`` terms joined by `` AND `` (``govflow.paging.parse_filter``):

- ``keyword``: words (split on spaces), every one found, case-insensitively, in the code,
  the Chinese or English name, the description or the agency's reference;
- ``agency``: ``agencies/{code}``;
- ``level``: ``province``, ``city`` or ``county`` (the definition's ``level``, 行使层级);
- ``applicant_kind``: ``person`` or ``organisation``;
- ``life_event``: ``true`` (life events, 一件事, only), ``false`` (single matters only) or
  ``matters/{code}`` (the matters that life event bundles);
- ``instant_approval``: ``true`` or ``false``.
"""

from __future__ import annotations

import bisect
import dataclasses
from collections.abc import Iterable, Iterator
from typing import Any

import yaml

from govflow.errors import InvalidArgument
from govflow.paging import parse_filter
from services.matters.domain.definition import LEVELS, MatterSpec

KINDS = ("person", "organisation")
KEYS = {"keyword", "agency", "level", "applicant_kind", "life_event", "instant_approval"}
_BOOLS = {"true": True, "false": False}
# Keywords whose positions an index keeps (then it forgets them all and starts again).
MAX_WORDS_KEPT = 1024
# The YAML loader in C when PyYAML has it (it parses a definition several times faster).
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclasses.dataclass(frozen=True)
class CatalogueEntry:
    """What a search reads of one published version."""

    code: str
    version: int
    agency: str
    level: str  # "" when the definition gives none
    applicant_kind: str
    instant_approval: bool
    bundled: frozenset[str]  # codes of the matters a life event bundles; empty otherwise
    text: str  # lower-cased: code, names, description and agency, for keywords


@dataclasses.dataclass(frozen=True)
class CatalogueQuery:
    """A parsed, checked filter; None (or empty) where a term was not given."""

    keywords: tuple[str, ...] = ()
    agency: str | None = None
    level: str | None = None
    applicant_kind: str | None = None
    life_event: bool | None = None
    bundled_in: str | None = None  # a life event's code
    instant_approval: bool | None = None

    def terms(self) -> list[tuple[str, object]]:
        """The equality terms, as keys of a ``CatalogueIndex``."""
        given: list[tuple[str, object]] = [
            ("agency", self.agency), ("level", self.level), ("kind", self.applicant_kind),
            ("instant", self.instant_approval), ("life_event", self.life_event),
            ("bundled_in", self.bundled_in)]
        return [(k, v) for k, v in given if v is not None]

    def positions(self, index: CatalogueIndex) -> Iterator[int]:
        """The positions of the selected entries in ``index.entries``, in order: the
        shortest list among the equality terms' and the keywords', kept where it is in
        all the others."""
        lists = [index.by_term.get(term, ()) for term in self.terms()]
        lists += [index.with_word(w) for w in self.keywords]
        if not lists:
            return iter(range(len(index.entries)))
        lists.sort(key=len)
        first, rest = lists[0], [frozenset(other) for other in lists[1:]]
        return (i for i in first if all(i in other for other in rest))


@dataclasses.dataclass(frozen=True)
class CatalogueIndex:
    """Entries by code; the positions each equality term selects; and the entries' texts
    in one string, where a keyword is found by ``str.find`` rather than entry by entry
    (its positions kept for the next query with it)."""

    entries: tuple[CatalogueEntry, ...]
    by_term: dict[tuple[str, object], tuple[int, ...]]
    blob: str  # every entry's text, each followed by NUL
    starts: tuple[int, ...]  # where each entry's text starts in ``blob``
    words: dict[str, tuple[int, ...]] = dataclasses.field(default_factory=dict)

    def with_word(self, word: str) -> tuple[int, ...]:
        """The positions of the entries whose text holds ``word``."""
        held = self.words.get(word)
        if held is not None:
            return held
        found: list[int] = []
        at = self.blob.find(word) if "\0" not in word else -1
        while at != -1:
            i = bisect.bisect_right(self.starts, at) - 1
            found.append(i)
            # On from the next entry's start: one position per entry.
            at = self.blob.find(word, self.starts[i + 1]) if i + 1 < len(self.starts) else -1
        if len(self.words) >= MAX_WORDS_KEPT:
            self.words.clear()
        self.words[word] = out = tuple(found)
        return out


def index_entries(entries: Iterable[CatalogueEntry]) -> CatalogueIndex:
    """The index of ``entries`` (sorted here by code)."""
    ordered = tuple(sorted(entries, key=lambda e: e.code))
    at = {e.code: i for i, e in enumerate(ordered)}
    by_term: dict[tuple[str, object], list[int]] = {}
    for i, e in enumerate(ordered):
        for term in (("agency", e.agency), ("level", e.level), ("kind", e.applicant_kind),
                     ("instant", e.instant_approval), ("life_event", bool(e.bundled))):
            by_term.setdefault(term, []).append(i)
        for member in sorted(at[m] for m in e.bundled if m in at):
            by_term.setdefault(("bundled_in", e.code), []).append(member)
    starts, offset = [], 0
    for e in ordered:
        starts.append(offset)
        offset += len(e.text) + 1
    return CatalogueIndex(entries=ordered, by_term={k: tuple(v) for k, v in by_term.items()},
                          blob="".join(e.text + "\0" for e in ordered), starts=tuple(starts))


def _flag(f: dict[str, str], key: str) -> bool | None:
    if key not in f:
        return None
    value = _BOOLS.get(f[key].lower())
    if value is None:
        raise InvalidArgument(fields={"filter": f"{key} must be true or false"})
    return value


def parse_query(text: str) -> CatalogueQuery:
    """Parses ListMatters' filter; INVALID_ARGUMENT naming ``filter`` and the term for an
    unknown key or a value out of range."""
    f = parse_filter(text, KEYS)
    agency = f.get("agency")
    if agency is not None and (not agency.startswith("agencies/") or agency == "agencies/"):
        raise InvalidArgument(fields={"filter": "agency must be agencies/{code}"})
    level = f.get("level")
    if level is not None:
        level = level.lower()
        if level not in LEVELS:
            raise InvalidArgument(fields={"filter": f"level must be one of {', '.join(LEVELS)}"})
    kind = f.get("applicant_kind")
    if kind is not None:
        kind = kind.lower()
        if kind not in KINDS:
            raise InvalidArgument(
                fields={"filter": f"applicant_kind must be one of {', '.join(KINDS)}"})
    life_event: bool | None = None
    bundled_in: str | None = None
    if (raw := f.get("life_event")) is not None:
        if raw.startswith("matters/") and len(raw) > len("matters/"):
            bundled_in = raw.removeprefix("matters/")
        elif raw.lower() in _BOOLS:
            life_event = _BOOLS[raw.lower()]
        else:
            raise InvalidArgument(
                fields={"filter": "life_event must be true, false or matters/{code}"})
    keywords = tuple(f.get("keyword", "").lower().split())
    return CatalogueQuery(keywords=keywords, agency=agency, level=level,
                          applicant_kind=kind, life_event=life_event, bundled_in=bundled_in,
                          instant_approval=_flag(f, "instant_approval"))


def catalogue_entry(spec: MatterSpec, version: int, definition_yaml: str) -> CatalogueEntry:
    """The entry of one published version (its definition was accepted by ``parse``)."""
    doc = yaml.load(definition_yaml, Loader=_LOADER)  # noqa: S506 (a safe loader: C or Python)
    doc = doc if isinstance(doc, dict) else {}
    words = [spec.code, spec.display_name, spec.agency,
             *(str(doc.get(k) or "") for k in ("display_name_en", "description"))]
    level = doc.get("level")
    return CatalogueEntry(
        code=spec.code, version=version, agency=spec.agency,
        level=level if isinstance(level, str) else "", applicant_kind=spec.applicant_kind,
        instant_approval=spec.instant_approval,
        bundled=frozenset(b.matter for b in spec.bundle),
        text="\n".join(w for w in words if w).lower())


__all__ = ["KEYS", "LEVELS", "CatalogueEntry", "CatalogueIndex", "CatalogueQuery",
           "catalogue_entry", "index_entries", "parse_query"]
