"""The generated province catalogue and the catalogue's search, without a server: the
generator's definitions all parse and are the same every time; a query's positions are
exactly the entries a plain scan selects (hypothesis over filters); bad filters name
``filter``."""

from __future__ import annotations

import collections

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from govflow.errors import InvalidArgument
from services.matters import catalogue_generator
from services.matters.catalogue import bundled_definitions
from services.matters.domain import definition
from services.matters.domain.catalogue_search import (
    CatalogueEntry,
    CatalogueQuery,
    catalogue_entry,
    index_entries,
    parse_query,
)

GENERATED = catalogue_generator.definitions()


def _entries() -> list[CatalogueEntry]:
    out = []
    for _, text in bundled_definitions() + GENERATED:
        out.append(catalogue_entry(definition.parse(text), 1, text))
    return out


ENTRIES = _entries()
INDEX = index_entries(ENTRIES)


def test_the_generator_makes_600_matters_across_40_agencies_at_three_levels() -> None:
    assert len(GENERATED) >= 600
    assert GENERATED == catalogue_generator.definitions()  # deterministic
    agencies = catalogue_generator.agencies()
    assert len(agencies) >= 40 and len({a.code for a in agencies}) == len(agencies)
    assert {a.level for a in agencies} == {"province", "city", "county"}
    codes = {yaml.safe_load(t)["code"] for _, t in GENERATED}
    assert len(codes) == len(GENERATED)
    assert not codes & {yaml.safe_load(t)["code"] for _, t in bundled_definitions()}
    known = {f"agencies/{a.code}" for a in agencies}
    kinds: collections.Counter[str] = collections.Counter()
    for _, text in GENERATED:
        spec = definition.parse(text)  # every one is a valid definition
        doc = yaml.safe_load(text)
        assert spec.agency in known and doc["level"] in definition.LEVELS
        assert doc["display_name_en"] and any("\u4e00" <= c <= "\u9fff" for c in spec.display_name)
        assert all(b.matter in codes for b in spec.bundle)
        kinds["life event" if spec.bundle else "instant" if spec.instant_approval else "steps"] += 1
    assert min(kinds.values()) >= 10, kinds
    # A parent agency comes before the agencies under it (CreateAgency needs it to exist).
    seen: set[str] = set()
    for a in agencies:
        assert not a.parent or a.parent in seen
        seen.add(a.code)


def test_level_must_be_one_of_three() -> None:
    text = GENERATED[0][1].replace("level: province", "level: township")
    with pytest.raises(InvalidArgument) as err:
        definition.parse(text)
    assert "level" in err.value.fields


def _scan(q: CatalogueQuery) -> list[int]:
    bundles = {e.code: e.bundled for e in INDEX.entries}
    return [i for i, e in enumerate(INDEX.entries)
            if (q.agency is None or e.agency == q.agency)
            and (q.level is None or e.level == q.level)
            and (q.applicant_kind is None or e.applicant_kind == q.applicant_kind)
            and (q.instant_approval is None or e.instant_approval == q.instant_approval)
            and (q.life_event is None or bool(e.bundled) == q.life_event)
            and (q.bundled_in is None or e.code in bundles.get(q.bundled_in, ()))
            and all(w in e.text for w in q.keywords)]


_WORDS = st.sampled_from(["许可", "天河区", "permit", "RENEWAL", "gz-", "一件事", "food", "x",
                          "登记", "agencies/th", "no-such-word", "(new)", "证"])
_TERMS = {
    "keyword": st.lists(_WORDS, min_size=1, max_size=3).map(" ".join),
    "agency": st.sampled_from(["agencies/gz-amr", "agencies/th-health", "agencies/sz-amr",
                               "agencies/none"]),
    "level": st.sampled_from(["province", "city", "county", "CITY"]),
    "applicant_kind": st.sampled_from(["person", "organisation"]),
    "life_event": st.sampled_from(["true", "false", "matters/th-newborn", "matters/gz-retirement",
                                   "matters/open-a-restaurant", "matters/none"]),
    "instant_approval": st.sampled_from(["true", "false", "TRUE"]),
}


@settings(max_examples=300, deadline=None)
@given(terms=st.dictionaries(st.sampled_from(sorted(_TERMS)), st.just(None), max_size=6),
       data=st.data())
def test_a_query_selects_what_a_plain_scan_selects(terms: dict[str, None],
                                                   data: st.DataObject) -> None:
    text = " AND ".join(f"{k}={data.draw(_TERMS[k])}" for k in terms)
    q = parse_query(text)
    assert list(q.positions(INDEX)) == _scan(q)
    assert list(q.positions(INDEX)) == _scan(q)  # again, with its keywords remembered


@pytest.mark.parametrize("text", [
    "level=town", "applicant_kind=robot", "instant_approval=yes", "life_event=maybe",
    "agency=gz-amr", "agency=agencies/", "colour=red", "keyword", "level=city AND level=city",
    "life_event=matters/",
])
def test_bad_filters_name_the_filter(text: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        parse_query(text)
    assert list(err.value.fields) == ["filter"]


def test_an_empty_filter_selects_everything_in_code_order() -> None:
    assert list(parse_query("").positions(INDEX)) == list(range(len(ENTRIES)))
    assert [e.code for e in INDEX.entries] == sorted(e.code for e in ENTRIES)


_TRICKY_YAML = [
    "a: yes\nb: no\nc: on\nd: 0o17\ne: 017\nf: 0x1F\ng: 1_000\nh: .5\ni: -.inf\nj: ~\n",
    "t: 2026-12-07\nu: 2026-12-07T08:00:00Z\nv: '2026-12-07'\n",
    "x: &anchor {k: [1, 2, {z: 食品}]}\ny: *anchor\n",
    "s: |\n  two\n  lines\nf: >\n  folded\n  text\nq: \"esc\\u00e9\\t\"\n",
    "- 1\n- [a, b]\n- {c: d}\n", "just text", "", "{a: 1, a: 2}\n", "k: 1e3\nl: 1.0e+3\n",
]


@pytest.mark.parametrize("text", [t for _, t in bundled_definitions() + GENERATED] + _TRICKY_YAML)
def test_the_c_yaml_loader_reads_what_safe_load_reads(text: str) -> None:
    """definition.py reads definitions with PyYAML's C parser when it is built (most of a
    publish's time otherwise): the same documents as yaml.safe_load, so the same specs and
    fingerprints."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    assert yaml.load(text, Loader=loader) == yaml.safe_load(text)  # noqa: S506 (a safe loader)


@pytest.mark.parametrize("text", ["a: [1, 2\n", "a: b: c\n", "\t- x\n", "a: 'open\n",
                                  "[" * 40 + "]" * 40])
def test_bad_yaml_is_refused_by_either_loader(text: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        definition.parse(text)
    assert "definition_yaml" in err.value.fields
