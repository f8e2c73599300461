"""Demo data for the embedded mode: agencies, officials, citizens, an enterprise,
certificate types, the certificates citizens already hold, and the matter catalogue.

Seeding goes through the public gRPC APIs as Govflow's admin service identity and is
idempotent (fixed request ids; types and matters are replaced only when changed), so a
second ``govflow up`` on the same data changes nothing.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random

import grpc
from google.protobuf import timestamp_pb2

from govflow.certificates.v1 import certificates_pb2 as cpb
from govflow.certificates.v1 import certificates_pb2_grpc
from govflow.identity.v1 import identity_pb2 as ipb
from govflow.identity.v1 import identity_pb2_grpc
from govflow.matters.v1 import matters_pb2 as mpb
from govflow.matters.v1 import matters_pb2_grpc
from govflow.service_client import ServiceToken
from govflow_cli.foreign_issuer import ForeignIssuer
from services.identity.domain import id_check_char
from services.matters.catalogue import bundled_definitions

DEMO_PASSWORD = "govflow-demo"

AGENCIES = [
    # code, name (Chinese, the primary name), English name, division, level, parent
    ("gd-sdb", "广东省政务服务和数据管理局", "Guangdong Government Services and Data Administration",
     "440000", "PROVINCE", ""),
    ("sz-psb", "深圳市公安局", "Shenzhen Public Security Bureau", "440300", "CITY", ""),
    ("sz-cab", "深圳市民政局", "Shenzhen Civil Affairs Bureau", "440300", "CITY", ""),
    ("sz-amr", "深圳市市场监督管理局", "Shenzhen Administration for Market Regulation",
     "440300", "CITY", ""),
    ("sz-hcb", "深圳市住房和建设局", "Shenzhen Housing and Construction Bureau", "440300", "CITY", ""),
    ("sz-pnr", "深圳市规划和自然资源局", "Shenzhen Planning and Natural Resources Bureau",
     "440300", "CITY", ""),
    ("sz-fire", "深圳市消防救援支队", "Shenzhen Fire and Rescue Detachment", "440300", "CITY", ""),
    ("sz-eeb", "深圳市生态环境局", "Shenzhen Ecology and Environment Bureau", "440300", "CITY", ""),
    ("sz-uma", "深圳市城市管理和综合执法局", "Shenzhen Urban Management and Law Enforcement Bureau",
     "440300", "CITY", ""),
    ("ft-hb", "福田区卫生健康局", "Futian District Health Bureau", "440304", "COUNTY", ""),
    ("ft-uma", "福田区城市管理和综合执法局", "Futian District Urban Management Bureau", "440304",
     "COUNTY", "sz-uma"),
]


@dataclasses.dataclass(frozen=True)
class DemoPerson:
    key: str
    id_number: str
    name: str
    assurance: str
    posts: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (agency, roles)


PERSONS = [
    DemoPerson("wang-fang", "440304195803150026", "Wang Fang", "FACE"),
    DemoPerson("li-wei", "440304199007010039", "Li Wei", "REAL_NAME"),
    DemoPerson("chen-jing", "440304198502120046", "Chen Jing", "FACE",
               (("sz-amr", ("acceptor",)),)),
    DemoPerson("zhao-lei", "440304198709230058", "Zhao Lei", "FACE",
               (("sz-amr", ("reviewer", "approver")),)),
    DemoPerson("qian-hao", "440304200008080085", "Qian Hao", "FACE",
               (("sz-amr", ("reviewer", "approver")),)),
    DemoPerson("sun-li", "440304197905300063", "Sun Li", "FACE",
               (("sz-amr", ("supervisor", "admin")),)),
    DemoPerson("lin-tao", "440304198304050112", "Lin Tao", "FACE",
               (("sz-hcb", ("acceptor", "approver", "supervisor")),)),
    DemoPerson("he-yun", "440304198606150127", "He Yun", "FACE", (("sz-pnr", ("reviewer",)),)),
    DemoPerson("guo-qiang", "440304197802280135", "Guo Qiang", "FACE",
               (("sz-fire", ("reviewer", "approver", "supervisor")),)),
    DemoPerson("ma-lan", "440304199111110144", "Ma Lan", "FACE", (("sz-eeb", ("reviewer",)),)),
    DemoPerson("xu-ning", "440304198407070159", "Xu Ning", "FACE", (("sz-uma", ("reviewer",)),)),
    DemoPerson("luo-bin", "440304198909090168", "Luo Bin", "FACE", (("ft-uma", ("reviewer",)),)),
    DemoPerson("zhou-min", "440304199201180074", "Zhou Min", "FACE",
               (("sz-cab", ("acceptor", "reviewer", "approver", "supervisor", "admin")),)),
]
ORGANISATIONS = [
    # key, credit code, name, legal representative key
    ("lotus-catering", "91440300MA5FLT8K25", "Shenzhen Lotus Catering Co., Ltd.", "li-wei"),
]


def _f(name: str, type_: str = "string", required: bool = True) -> cpb.FieldSpec:
    return cpb.FieldSpec(name=name, type=type_, required=required)


PERSON, ORG = cpb.HOLDER_KIND_PERSON, cpb.HOLDER_KIND_ORGANISATION
# code, name (Chinese, the primary one), English name, issuer, holder kind, validity days,
# fields
CERTIFICATE_TYPES = [
    ("resident-id-card", "居民身份证", "Resident ID card", "sz-psb", PERSON, 7300,
     [_f("id_number"), _f("name"), _f("birth_date", "date"), _f("gender"), _f("address", required=False)]),
    ("household-register", "居民户口簿", "Household register", "sz-psb", PERSON, 0,
     [_f("id_number"), _f("name"), _f("division_code"), _f("address", required=False)]),
    ("drivers-licence", "机动车驾驶证", "Driver's licence", "sz-psb", PERSON, 2190,
     [_f("id_number"), _f("name"), _f("licence_class"), _f("first_issue_date", "date")]),
    ("birth-certificate", "出生医学证明", "Birth medical certificate", "ft-hb", PERSON, 0,
     [_f("child_name"), _f("birth_date", "date"), _f("mother_name"), _f("father_name", required=False),
      _f("place_of_birth")]),
    ("marriage-certificate", "结婚证", "Marriage certificate", "sz-cab", PERSON, 0,
     [_f("holder_name"), _f("spouse_name"), _f("spouse_id_number"), _f("registration_date", "date")]),
    ("business-licence", "营业执照", "Business licence", "sz-amr", ORG, 0,
     [_f("credit_code"), _f("name"), _f("legal_representative"), _f("business_scope"),
      _f("registered_capital_cny", "int", required=False)]),
    ("senior-citizen-card", "老年人优待证", "Senior citizen preferential card", "sz-cab", PERSON,
     1825,
     [_f("holder_name"), _f("birth_date", "date"), _f("region")]),
    ("food-business-permit", "食品经营许可证", "Food business permit", "sz-amr", ORG, 1825,
     [_f("operator_name"), _f("credit_code"), _f("business_scope")]),
    ("individual-business-licence", "个体工商户营业执照", "Individual business licence", "sz-amr",
     PERSON, 0,
     [_f("operator_name"), _f("id_number"), _f("trade_name"), _f("business_scope")]),
    ("construction-permit", "建筑工程施工许可证", "Construction works permit", "sz-hcb", ORG, 1095,
     [_f("builder_name"), _f("credit_code"), _f("project")]),
    ("fire-safety-inspection-certificate", "公众聚集场所投入使用、营业前消防安全检查合格证",
     "Fire safety inspection certificate", "sz-fire", ORG, 1095,
     [_f("holder_name"), _f("credit_code"), _f("premises")]),
    ("outdoor-signage-permit", "户外招牌设置许可证", "Outdoor signage permit", "ft-uma", ORG, 730,
     [_f("holder_name"), _f("credit_code"), _f("sign")]),
]

# Certificates the demo holders already have: (holder key, type, fields).
HELD = [
    ("wang-fang", "resident-id-card", {"id_number": "440304195803150026", "name": "Wang Fang",
                                       "birth_date": "1958-03-15", "gender": "F",
                                       "address": "Futian District, Shenzhen"}),
    ("wang-fang", "household-register", {"id_number": "440304195803150026", "name": "Wang Fang",
                                         "division_code": "440304"}),
    ("li-wei", "resident-id-card", {"id_number": "440304199007010039", "name": "Li Wei",
                                    "birth_date": "1990-07-01", "gender": "M"}),
    ("li-wei", "household-register", {"id_number": "440304199007010039", "name": "Li Wei",
                                      "division_code": "440305"}),
    ("li-wei", "drivers-licence", {"id_number": "440304199007010039", "name": "Li Wei",
                                   "licence_class": "C1", "first_issue_date": "2012-05-20"}),
    ("lotus-catering", "business-licence", {"credit_code": "91440300MA5FLT8K25",
                                            "name": "Shenzhen Lotus Catering Co., Ltd.",
                                            "legal_representative": "Li Wei",
                                            "business_scope": "catering services",
                                            "registered_capital_cny": "1000000"}),
]


@dataclasses.dataclass
class Seeded:
    persons: dict[str, str]  # key -> persons/{id}
    organisations: dict[str, str]
    certificates: list[str]
    matters: list[str]
    # The demo's Hong Kong issuer, with the key made at this seeding (None: listed by an
    # earlier seeding, whose key is gone): tests sign more of its certificates with it.
    hk_issuer: ForeignIssuer | None = None


async def seed(identity_ch: grpc.aio.Channel, certificates_ch: grpc.aio.Channel,
               matters_ch: grpc.aio.Channel, admin_client_id: str, admin_secret: str) -> Seeded:
    identity = identity_pb2_grpc.IdentityServiceStub(identity_ch)
    certs = certificates_pb2_grpc.CertificatesServiceStub(certificates_ch)
    matters = matters_pb2_grpc.MattersServiceStub(matters_ch)
    token = ServiceToken(identity, admin_client_id, admin_secret)
    md = await token.metadata()

    for code, name, name_en, division, level, parent in AGENCIES:
        await identity.CreateAgency(ipb.CreateAgencyRequest(agency=ipb.Agency(
            code=code, display_name=name, display_name_en=name_en, division_code=division,
            level=ipb.AgencyLevel.Value(f"AGENCY_LEVEL_{level}"), parent=parent)), metadata=md)

    persons: dict[str, str] = {}
    for p in PERSONS:
        resp = await identity.CreatePerson(ipb.CreatePersonRequest(
            person=ipb.Person(id_number=p.id_number, display_name=p.name,
                              assurance_level=ipb.AssuranceLevel.Value(f"ASSURANCE_LEVEL_{p.assurance}")),
            password=DEMO_PASSWORD, request_id=f"seed/{p.id_number}"), metadata=md)
        persons[p.key] = resp.person.name
        for agency, roles in p.posts:
            await identity.SetOfficialRoles(ipb.SetOfficialRolesRequest(official=ipb.Official(
                person=resp.person.name, agency=f"agencies/{agency}",
                roles=[ipb.Role.Value(f"ROLE_{r.upper()}") for r in roles])), metadata=md)

    orgs: dict[str, str] = {}
    for key, code, name, rep in ORGANISATIONS:
        resp = await identity.CreateOrganisation(ipb.CreateOrganisationRequest(
            organisation=ipb.Organisation(credit_code=code, display_name=name,
                                          legal_representative=persons[rep]),
            request_id=f"seed/{code}"), metadata=md)
        orgs[key] = resp.organisation.name

    for code, name, name_en, agency, kind, days, fields in CERTIFICATE_TYPES:
        await certs.CreateCertificateType(cpb.CreateCertificateTypeRequest(
            certificate_type=cpb.CertificateType(
                code=code, display_name=name, display_name_en=name_en,
                issuing_agency=f"agencies/{agency}",
                holder_kind=kind, fields=fields, default_validity_days=days)), metadata=md)

    holders = {**persons, **orgs}
    issued = []
    for holder_key, ctype, held_fields in HELD:
        resp = await certs.IssueCertificate(cpb.IssueCertificateRequest(
            certificate=cpb.Certificate(type=f"certificateTypes/{ctype}",
                                        holder=holders[holder_key], fields=held_fields),
            request_id=f"seed/{holder_key}/{ctype}"), metadata=md)
        issued.append(resp.certificate.name)

    published = []
    for _, text in bundled_definitions():
        resp = await matters.PublishMatter(mpb.PublishMatterRequest(definition_yaml=text), metadata=md)
        published.append(f"{resp.matter.name}@v{resp.matter.version}")
    hk_issuer = await seed_cross_border(identity, certs, md, persons, issued)
    return Seeded(persons=persons, organisations=orgs, certificates=issued, matters=published,
                  hk_issuer=hk_issuer)


def person(key: str) -> DemoPerson:
    return next(p for p in PERSONS if p.key == key)


@dataclasses.dataclass(frozen=True)
class AddedPerson:
    name: str  # persons/{id}
    id_number: str
    display_name: str
    birth_date: str  # YYYY-MM-DD


async def add_senior(identity: identity_pb2_grpc.IdentityServiceStub,
                     certs: certificates_pb2_grpc.CertificatesServiceStub,
                     admin_md: tuple[tuple[str, str], ...], *,
                     display_name: str = "") -> AddedPerson:
    """One more senior citizen like Wang Fang (aged 60 to 85, household in Futian,
    face-verified, password DEMO_PASSWORD) holding the resident ID card and household
    register the senior card's rules read, under a new random ID number. The senior card
    is one per holder, so a demo or a load that applies for it more than once needs a
    new senior for each application."""
    rng = random.SystemRandom()
    today = dt.date.today()
    while True:
        born = dt.date(today.year - 85, 1, 1) + dt.timedelta(days=rng.randrange(365 * 24))
        first17 = f"440304{born:%Y%m%d}{rng.randrange(1000):03d}"
        id_number = first17 + id_check_char(first17)
        name = display_name or f"Senior {id_number[-6:]}"
        try:
            made = await identity.CreatePerson(ipb.CreatePersonRequest(
                person=ipb.Person(id_number=id_number, display_name=name,
                                  assurance_level=ipb.ASSURANCE_LEVEL_FACE),
                password=DEMO_PASSWORD, request_id=f"senior/{id_number}"), metadata=admin_md)
        except grpc.aio.AioRpcError as err:
            if err.code() == grpc.StatusCode.ALREADY_EXISTS:
                continue  # that number is taken: draw another
            raise
        break
    holder = made.person.name
    for ctype, fields in (
            ("resident-id-card", {"id_number": id_number, "name": name,
                                  "birth_date": born.isoformat(),
                                  "gender": "M" if int(first17[16]) % 2 else "F"}),
            ("household-register", {"id_number": id_number, "name": name,
                                    "division_code": "440304"})):
        await certs.IssueCertificate(cpb.IssueCertificateRequest(
            certificate=cpb.Certificate(type=f"certificateTypes/{ctype}", holder=holder,
                                        fields=fields),
            request_id=f"senior/{id_number}/{ctype}"), metadata=admin_md)
    return AddedPerson(name=holder, id_number=id_number, display_name=name,
                       birth_date=born.isoformat())


# ---------------------------------------------------------------- cross-border (湾区通)
# One issuer outside the platform, Hong Kong's Immigration Department, in the trust list;
# a Hong Kong resident living in Shenzhen holding its identity card; the residence permit
# matter (catalogue/hk-macao-residence-permit.yaml) accepts that card.
HK_ISSUER = "issuers/hk-immd"
HK_RESIDENT = DemoPerson("chan-tai-man", "810000198807070032", "陈大文", "FACE")
HK_CARD_TYPE = "hk-identity-card"
HK_CARD_FIELDS = {"name": "CHAN Tai Man 陈大文", "id_number": "A123456(3)",
                  "birth_date": "1988-07-07", "permanent_resident": "true"}
PERMIT_TYPE = ("hk-macao-residence-permit", "港澳居民居住证",
               "Residence permit for Hong Kong and Macao residents", "sz-psb", PERSON, 1825,
               [_f("holder_name"), _f("home_id_number"), _f("issued_in")])


def _hk_entry(issuer: ForeignIssuer) -> cpb.TrustedIssuer:
    not_after = timestamp_pb2.Timestamp()
    not_after.FromDatetime(dt.datetime.now(dt.UTC) + dt.timedelta(days=3650))
    return cpb.TrustedIssuer(
        name=issuer.issuer, display_name="香港特别行政区入境事务处", jurisdiction="HK",
        jwks_json=issuer.jwks_json(),
        status_list_location="https://www.immd.gov.hk/govflow/status-list (demo: published "
                             "into Govflow at seeding)",
        certificate_types=[f"certificateTypes/{HK_CARD_TYPE}"], not_after=not_after)


async def seed_cross_border(identity: identity_pb2_grpc.IdentityServiceStub,
                            certs: certificates_pb2_grpc.CertificatesServiceStub,
                            md: tuple[tuple[str, str], ...], persons: dict[str, str],
                            issued: list[str]) -> ForeignIssuer | None:
    """The cross-border demo: the residence permit's certificate type, the Hong Kong
    resident, and — the first time only, since its key is made here and kept nowhere — the
    Hong Kong issuer in the trust list with its signed status list, and the resident's
    identity card imported into their wallet. Returns that issuer (None when an earlier
    seeding listed it)."""
    code, name, name_en, agency, kind, days, fields = PERMIT_TYPE
    await certs.CreateCertificateType(cpb.CreateCertificateTypeRequest(
        certificate_type=cpb.CertificateType(
            code=code, display_name=name, display_name_en=name_en,
            issuing_agency=f"agencies/{agency}", holder_kind=kind, fields=fields,
            default_validity_days=days)), metadata=md)
    p = HK_RESIDENT
    made = await identity.CreatePerson(ipb.CreatePersonRequest(
        person=ipb.Person(id_number=p.id_number, display_name=p.name,
                          assurance_level=ipb.AssuranceLevel.Value(f"ASSURANCE_LEVEL_{p.assurance}")),
        password=DEMO_PASSWORD, request_id=f"seed/{p.id_number}"), metadata=md)
    persons[p.key] = made.person.name
    listed = await certs.ListTrustedIssuers(cpb.ListTrustedIssuersRequest(page_size=100))
    if any(t.name == HK_ISSUER for t in listed.trusted_issuers):
        return None
    issuer = ForeignIssuer(HK_ISSUER)
    await certs.AddTrustedIssuer(cpb.AddTrustedIssuerRequest(trusted_issuer=_hk_entry(issuer)),
                                 metadata=md)
    token, _ = issuer.certificate(type_code=HK_CARD_TYPE, holder=made.person.name,
                                  fields=HK_CARD_FIELDS)
    payload, signature = issuer.status_list(ttl=dt.timedelta(days=365))
    await certs.PublishIssuerStatusList(cpb.PublishIssuerStatusListRequest(
        status_list=cpb.StatusList(signed_payload=payload, signature=signature)), metadata=md)
    tokens = await identity.Login(ipb.LoginRequest(id_number=p.id_number, password=DEMO_PASSWORD))
    held = await certs.ImportCertificate(cpb.ImportCertificateRequest(token=token), metadata=(
        ("authorization", f"Bearer {tokens.tokens.access_token}"),))
    issued.append(held.certificate.name)
    return issuer
