"""The catalogue at scale (issue 27, items 1 and 2) on a stack of its own per backend,
seeded like ``govflow seed --catalogue province``: the demo's matters and the
generated province catalogue (632 matters, 63 agencies), all through PublishMatter.

ListMatters: keywords in Chinese and English, each filter, pages that add up to the
whole; bad filters refused with INVALID_ARGUMENT naming ``filter``. Versions: publishing
a changed definition of one matter among them makes exactly one new version, and an
application running on the old version stays on it (its next step is the old one's)."""

from __future__ import annotations

import contextlib
import pathlib
from collections.abc import AsyncIterator

import grpc
import pytest
import yaml
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from temporalio.testing import WorkflowEnvironment

from govflow.identity.v1 import identity_pb2 as ipb
from govflow.matters.v1 import matters_pb2 as mpb
from govflow.matters.v1 import matters_pb2_grpc
from govflow_cli.province_catalogue import seed_province
from services.matters import catalogue_generator
from services.matters.catalogue import bundled_definitions
from services.matters.server import create_server as matters_server
from tests.e2e.helpers import approve, citizen, official, submit, task_for, wait_for
from tests.stack import Stack, postgres_databases, running_stack

GENERATED = len(catalogue_generator.definitions())
DEMO = len(bundled_definitions())


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def province(request: pytest.FixtureRequest, temporal_env: WorkflowEnvironment,
                   tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    tmp: pathlib.Path = tmp_path_factory.mktemp(f"province-{request.param}")
    with contextlib.ExitStack() as dbs:
        urls = dbs.enter_context(postgres_databases()) if request.param == "postgres" else None
        async with running_stack(tmp, temporal_env.client, database_urls=urls) as s:
            load = await seed_province(s.channels["identity"], s.channels["matters"],
                                       s.settings.admin_client_id, s.settings.admin_client_secret)
            assert load.agencies >= 40 and load.matters == GENERATED >= 600
            # Loading it again changes nothing: every matter stays at version 1 (checked by
            # the version test below).
            await seed_province(s.channels["identity"], s.channels["matters"],
                                s.settings.admin_client_id, s.settings.admin_client_secret)
            yield s


async def every(stack: Stack, flt: str = "", page_size: int = 100) -> list[mpb.Matter]:
    """Every page of ListMatters with ``flt``."""
    out: list[mpb.Matter] = []
    token = ""
    while True:
        page = await stack.matters.ListMatters(mpb.ListMattersRequest(
            filter=flt, page_size=page_size, page_token=token))
        out += page.matters
        token = page.next_page_token
        if not token:
            return out


def level(m: mpb.Matter) -> str:
    return str((yaml.safe_load(m.definition_yaml) or {}).get("level", ""))


async def test_the_whole_catalogue_pages_by_code(province: Stack) -> None:
    everything = await every(province)
    assert len(everything) == GENERATED + DEMO
    codes = [m.code for m in everything]
    assert codes == sorted(codes) and len(set(codes)) == len(codes)
    # Pages of 7 add up to the same, and the last page says there is no next one.
    assert [m.code for m in await every(province, page_size=7)] == codes
    agencies = {m.agency for m in everything}
    assert len(agencies) >= 40
    assert {level(m) for m in everything} >= {"province", "city", "county"}
    # Every matter has a Chinese name and an English one.
    assert all(m.display_name_en and any("\u4e00" <= c <= "\u9fff" for c in m.display_name)
               for m in everything)


@pytest.mark.parametrize(("keyword", "must_hold"), [
    ("食品经营许可", "食品经营许可"),  # Chinese, in the name
    ("天河区", "天河区"),  # Chinese, the agency's name in the description
    ("Food Business", "food business"),  # English, any case
    ("permit renewal", None),  # English, two words: both found, anywhere
])
async def test_keywords_in_chinese_and_english(province: Stack, keyword: str,
                                               must_hold: str | None) -> None:
    found = await every(province, f"keyword={keyword}")
    assert found
    for m in found:
        text = "\n".join([m.code, m.display_name, m.display_name_en, m.agency,
                          str(yaml.safe_load(m.definition_yaml).get("description", ""))]).lower()
        for word in keyword.lower().split():
            assert word in text
        if must_hold:
            assert must_hold in text
    assert await every(province, 'keyword="no such matter anywhere"') == []


async def test_filters_select_what_they_say(province: Stack) -> None:
    everything = await every(province)
    by = {
        "agency=agencies/gz-amr": lambda m: m.agency == "agencies/gz-amr",
        "level=county": lambda m: level(m) == "county",
        "applicant_kind=organisation": lambda m: m.applicant_kind == mpb.APPLICANT_KIND_ORGANISATION,
        "instant_approval=true": lambda m: m.instant_approval,
        "life_event=true": lambda m: bool(m.bundled_matters),
        "life_event=false": lambda m: not m.bundled_matters,
        "level=city AND applicant_kind=person AND instant_approval=true":
            lambda m: level(m) == "city" and m.applicant_kind == mpb.APPLICANT_KIND_PERSON
            and m.instant_approval,
        "keyword=许可 AND agency=agencies/th-health":
            lambda m: m.agency == "agencies/th-health" and "许可" in m.display_name,
    }
    for flt, holds in by.items():
        want = [m.code for m in everything if holds(m)]
        got = [m.code for m in await every(province, flt, page_size=13)]
        assert got == want and got, flt
    # A life event's matters: the ones it bundles.
    event = next(m for m in everything if m.code == "th-newborn")
    got = await every(province, "life_event=matters/th-newborn")
    assert sorted(f"matters/{m.code}" for m in got) == sorted(event.bundled_matters)
    # The demo's matters name their levels too.
    assert "open-a-restaurant" in {m.code for m in await every(
        province, "life_event=true AND level=province")}
    assert "senior-citizen-card" in {m.code for m in await every(
        province, "level=city AND instant_approval=true")}


@pytest.mark.parametrize(("flt", "says"), [
    ("level=town", "level"),
    ("applicant_kind=robot", "applicant_kind"),
    ("instant_approval=maybe", "instant_approval"),
    ("life_event=perhaps", "life_event"),
    ("agency=gz-amr", "agency"),
    ("colour=red", "unknown key"),
    ("keyword", "not key=value"),
    ("level=city AND level=county", "twice"),
])
async def test_bad_filters_are_invalid_argument_naming_the_filter(province: Stack, flt: str,
                                                                  says: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await province.matters.ListMatters(mpb.ListMattersRequest(filter=flt))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    status = rpc_status.from_call(err.value)
    assert status is not None
    bad = error_details_pb2.BadRequest()
    assert any(d.Unpack(bad) for d in status.details)
    assert [v.field for v in bad.field_violations] == ["filter"]
    assert says in bad.field_violations[0].description


async def test_a_changed_definition_makes_one_new_version_and_running_applications_stay(
        province: Stack) -> None:
    code = "gz-psb-household-move-new"
    before = {m.code: m.version for m in await every(province)}
    assert set(before.values()) == {1} and code in before  # loaded twice, one version each
    v1 = (await province.matters.GetMatter(mpb.GetMatterRequest(name=f"matters/{code}"))).matter
    assert [s.code for s in v1.steps] == ["acceptance", "review", "approval"]

    # An official of the generated agency, and an application running on version 1.
    admin = await province.service_md()
    await province.identity.SetOfficialRoles(ipb.SetOfficialRolesRequest(official=ipb.Official(
        person=province.seeded.persons["zhou-min"],  # type: ignore[attr-defined]
        agency="agencies/gz-psb", roles=[ipb.ROLE_ACCEPTOR, ipb.ROLE_REVIEWER])), metadata=admin)
    applicant = await citizen(province, "li-wei")
    running = await submit(province, applicant, f"matters/{code}")
    officer = await official(province, "zhou-min", "agencies/gz-psb")
    acceptance = await task_for(province, officer, running, "acceptance")

    # Version 2 drops the review step (and promises less time).
    doc = yaml.safe_load(v1.definition_yaml)
    doc["steps"] = [s for s in doc["steps"] if s["code"] != "review"]
    doc["promised_limit_days"] = 3
    published = (await province.matters.PublishMatter(mpb.PublishMatterRequest(
        definition_yaml=yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)),
        metadata=admin)).matter
    assert published.version == 2
    after = {m.code: m.version for m in await every(province)}
    assert after == {**before, code: 2}  # exactly one new version among them all
    assert [s.code for s in (await province.matters.ListMatters(mpb.ListMattersRequest(
        filter=f"keyword={code}"))).matters[0].steps] == ["acceptance", "approval"]
    old = (await province.matters.GetMatter(mpb.GetMatterRequest(
        name=f"matters/{code}", version=1))).matter
    assert old.definition_yaml == v1.definition_yaml

    # The running application stays on version 1: after acceptance its next step is
    # version 1's review, which version 2 no longer has.
    await approve(province, officer, acceptance.name)
    app = await wait_for(province, applicant, running, lambda a: list(a.current_steps) == ["review"])
    assert app.matter_version == 1
    # A new application takes version 2.
    fresh = await submit(province, applicant, f"matters/{code}")
    got = await wait_for(province, applicant, fresh, lambda a: a.matter_version > 0)
    assert got.matter_version == 2


async def test_every_replica_lists_a_publish_at_once(province: Stack) -> None:
    """Each replica keeps its own snapshot of the catalogue; a publish through one is in
    the next ListMatters of every one (the mark is the database's, not the process's)."""
    code = "zh-amr-food-business-new"
    other, port = await matters_server(province.settings, port=0)  # same database
    await other.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
            a, b = province.matters, matters_pb2_grpc.MattersServiceStub(ch)
            ask = mpb.ListMattersRequest(filter=f"keyword={code}")
            for replica in (a, b):  # each builds its snapshot
                assert [m.version for m in (await replica.ListMatters(ask)).matters] == [1]
            doc = yaml.safe_load((await a.GetMatter(mpb.GetMatterRequest(
                name=f"matters/{code}"))).matter.definition_yaml)
            doc["promised_limit_days"] = 2
            await a.PublishMatter(mpb.PublishMatterRequest(definition_yaml=yaml.safe_dump(
                doc, allow_unicode=True)), metadata=await province.service_md())
            for replica in (b, a):
                (got,) = (await replica.ListMatters(ask)).matters
                assert (got.version, got.promised_limit_days) == (2, 2)
    finally:
        await other.stop(0)
