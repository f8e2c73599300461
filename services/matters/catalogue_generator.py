"""A province's catalogue at scale, generated: 632 matter definitions across 63 agencies
of Guangdong province, two of its cities (Guangzhou, Zhuhai) and four of their
districts, from templates of the kinds a real catalogue holds — permits (new, change,
renewal, cancellation), registrations, certificates, benefits, and life events (一件事)
that bundle a region's matters. Each has a Chinese name (the primary one) and an English
one, and its level (``level``: province, city or county, 行使层级).

Deterministic: the same definitions, in the same order, every time, so publishing them
again makes no new version. ``govflow seed --catalogue province`` (and ``up``) publishes
them through ``PublishMatter`` after the demo (govflow_cli/province_catalogue.py); the
benchmark's catalogue figure times that and the searches over it. The regions and codes
are apart from the demo's (Shenzhen, ``sz-*``, ``ft-*``), so the two never collide.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import yaml

# The YAML emitter in C when PyYAML has it (the same text, several times faster).
_DUMPER: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

@dataclasses.dataclass(frozen=True)
class GeneratedAgency:
    code: str
    display_name: str  # Chinese
    display_name_en: str
    division_code: str  # GB/T 2260
    level: str  # province, city or county
    sector: str
    parent: str = ""  # the agency's code one level up, when there is one


@dataclasses.dataclass(frozen=True)
class Subject:
    """One kind of matter an agency of a sector handles, at the levels in ``levels``
    (p province, c city, x county)."""

    code: str
    zh: str
    en: str
    kind: str  # permit, registration, certificate or benefit
    applicant: str  # person or organisation
    levels: str
    instant: bool = False  # decided by rules in seconds (秒批)


# The regions: (prefix, Chinese, English, division code, level, parent prefix).
REGIONS = [
    ("gd", "广东省", "Guangdong Provincial", "440000", "province", ""),
    ("gz", "广州市", "Guangzhou Municipal", "440100", "city", "gd"),
    ("zh", "珠海市", "Zhuhai Municipal", "440400", "city", "gd"),
    ("th", "广州市天河区", "Tianhe District", "440106", "county", "gz"),
    ("yx", "广州市越秀区", "Yuexiu District", "440104", "county", "gz"),
    ("hz", "广州市海珠区", "Haizhu District", "440105", "county", "gz"),
    ("xz", "珠海市香洲区", "Xiangzhou District", "440402", "county", "zh"),
]

# The sectors: (code, Chinese agency name by level, English agency name, regions it is in).
_ALL, _NO_SMALL_COUNTY = "gd gz zh th yx hz xz", "gd gz zh th yx hz"
SECTORS = [
    ("amr", ("市场监督管理局", "市场监督管理局", "市场监督管理局"),
     "Administration for Market Regulation", _ALL),
    ("psb", ("公安厅", "公安局", "公安分局"), "Public Security Bureau", _ALL),
    ("cab", ("民政厅", "民政局", "民政局"), "Civil Affairs Bureau", _ALL),
    ("hrss", ("人力资源和社会保障厅", "人力资源和社会保障局", "人力资源和社会保障局"),
     "Human Resources and Social Security Bureau", _ALL),
    ("health", ("卫生健康委员会", "卫生健康局", "卫生健康局"), "Health Commission", _ALL),
    ("edu", ("教育厅", "教育局", "教育局"), "Education Bureau", _ALL),
    ("hcb", ("住房和城乡建设厅", "住房和城乡建设局", "住房和城乡建设局"),
     "Housing and Urban-Rural Development Bureau", _NO_SMALL_COUNTY),
    ("transport", ("交通运输厅", "交通运输局", "交通运输局"), "Transport Bureau", "gd gz zh"),
    ("eeb", ("生态环境厅", "生态环境局", "生态环境局"), "Ecology and Environment Bureau",
     "gd gz zh"),
    ("pnr", ("自然资源厅", "规划和自然资源局", "规划和自然资源局"),
     "Planning and Natural Resources Bureau", "gd gz zh"),
    ("sdb", ("政务服务和数据管理局", "政务服务和数据管理局", "政务服务和数据管理局"),
     "Government Services and Data Administration", "gz zh th yx hz xz"),
]

SUBJECTS: dict[str, list[Subject]] = {
    "amr": [
        Subject("food-business", "食品经营许可", "Food business permit", "permit", "organisation", "cx"),
        Subject("food-production", "食品生产许可", "Food production permit", "permit", "organisation", "pc"),
        Subject("drug-wholesale", "药品批发企业许可", "Drug wholesale permit", "permit", "organisation", "p"),
        Subject("drug-retail", "药品零售企业许可", "Drug retail permit", "permit", "organisation", "cx"),
        Subject("company", "企业", "Company", "registration", "organisation", "pcx"),
        Subject("individual-business", "个体工商户", "Individual business", "registration", "person", "cx"),
        Subject("special-equipment", "特种设备使用登记", "Special equipment use registration",
                "certificate", "organisation", "cx"),
        Subject("industrial-product", "重要工业产品生产许可", "Industrial product production permit",
                "permit", "organisation", "p"),
    ],
    "psb": [
        Subject("household-move", "户口迁移", "Household register transfer", "registration", "person", "cx"),
        Subject("residence-permit", "居住证", "Residence permit", "certificate", "person", "cx",
                instant=True),
        Subject("no-criminal-record", "无犯罪记录证明", "Certificate of no criminal record",
                "certificate", "person", "cx", instant=True),
        Subject("security-service", "保安服务公司设立许可", "Security service company permit",
                "permit", "organisation", "p"),
        Subject("seal-engraving", "公章刻制备案", "Official seal engraving record", "certificate",
                "organisation", "cx"),
        Subject("fireworks", "烟花爆竹道路运输许可", "Fireworks road transport permit", "permit",
                "organisation", "c"),
    ],
    "cab": [
        Subject("marriage", "婚姻登记", "Marriage registration", "certificate", "person", "cx"),
        Subject("minimum-living", "最低生活保障", "Minimum living allowance", "benefit", "person", "x"),
        Subject("senior-allowance", "高龄津贴", "Old-age allowance", "benefit", "person", "cx",
                instant=True),
        Subject("disability-allowance", "困难残疾人生活补贴", "Disability living allowance", "benefit",
                "person", "x"),
        Subject("social-organisation", "社会团体", "Social organisation", "registration",
                "organisation", "pc"),
        Subject("elderly-care", "养老机构备案", "Elderly care institution record", "certificate",
                "organisation", "cx"),
    ],
    "hrss": [
        Subject("unemployment-insurance", "失业保险金", "Unemployment insurance benefit", "benefit",
                "person", "cx"),
        Subject("pension", "基本养老保险待遇", "Basic pension", "benefit", "person", "cx"),
        Subject("employment-subsidy", "就业补贴", "Employment subsidy", "benefit", "organisation", "cx"),
        Subject("work-injury", "工伤认定", "Work injury determination", "certificate", "person", "c"),
        Subject("labour-dispatch", "劳务派遣经营许可", "Labour dispatch permit", "permit",
                "organisation", "pc"),
        Subject("vocational-skill", "职业技能等级证书", "Vocational skill certificate", "certificate",
                "person", "p", instant=True),
    ],
    "health": [
        Subject("birth-certificate", "出生医学证明", "Birth medical certificate", "certificate",
                "person", "x"),
        Subject("medical-institution", "医疗机构执业许可", "Medical institution practice permit",
                "permit", "organisation", "pcx"),
        Subject("public-venue-hygiene", "公共场所卫生许可", "Public venue hygiene permit", "permit",
                "organisation", "cx"),
        Subject("physician", "医师执业注册", "Physician practice registration", "registration",
                "person", "pc"),
        Subject("maternity-service", "母婴保健技术服务许可", "Maternal and infant health service permit",
                "permit", "organisation", "c"),
    ],
    "edu": [
        Subject("school-enrolment", "义务教育入学", "Compulsory education enrolment", "benefit",
                "person", "x"),
        Subject("teacher-qualification", "教师资格认定", "Teacher qualification", "certificate",
                "person", "pcx"),
        Subject("private-school", "民办学校办学许可", "Private school permit", "permit",
                "organisation", "pcx"),
        Subject("student-aid", "家庭经济困难学生资助", "Student financial aid", "benefit", "person",
                "cx", instant=True),
        Subject("off-campus-training", "校外培训机构审批", "Off-campus training permit", "permit",
                "organisation", "x"),
    ],
    "hcb": [
        Subject("construction", "建筑工程施工许可", "Construction works permit", "permit",
                "organisation", "cx"),
        Subject("presale", "商品房预售许可", "Commercial housing presale permit", "permit",
                "organisation", "c"),
        Subject("contractor", "建筑业企业资质", "Construction enterprise qualification", "permit",
                "organisation", "pc"),
        Subject("housing-fund", "住房公积金提取", "Housing provident fund withdrawal", "benefit",
                "person", "c", instant=True),
        Subject("rental-subsidy", "住房租赁补贴", "Housing rental subsidy", "benefit", "person", "x"),
    ],
    "transport": [
        Subject("road-transport", "道路运输经营许可", "Road transport business permit", "permit",
                "organisation", "pc"),
        Subject("taxi-driver", "出租汽车驾驶员从业资格证", "Taxi driver qualification", "certificate",
                "person", "c"),
        Subject("oversize-vehicle", "超限运输车辆行驶公路许可", "Oversize vehicle road permit",
                "permit", "organisation", "pc"),
        Subject("port-operation", "港口经营许可", "Port operation permit", "permit", "organisation", "p"),
    ],
    "eeb": [
        Subject("pollutant-discharge", "排污许可", "Pollutant discharge permit", "permit",
                "organisation", "pc"),
        Subject("eia", "建设项目环境影响评价审批", "Environmental impact assessment approval",
                "permit", "organisation", "pc"),
        Subject("hazardous-waste", "危险废物经营许可", "Hazardous waste business permit", "permit",
                "organisation", "p"),
        Subject("radiation-safety", "辐射安全许可", "Radiation safety permit", "permit", "organisation",
                "pc"),
    ],
    "pnr": [
        Subject("land-use-planning", "建设用地规划许可", "Land use planning permit", "permit",
                "organisation", "c"),
        Subject("construction-planning", "建设工程规划许可", "Construction planning permit", "permit",
                "organisation", "c"),
        Subject("real-estate", "不动产登记", "Real estate registration", "registration", "person", "c"),
        Subject("surveying", "测绘资质审批", "Surveying qualification approval", "permit",
                "organisation", "p"),
        Subject("mining-right", "采矿权登记", "Mining right registration", "registration",
                "organisation", "p"),
    ],
    "sdb": [],  # life events only
}

# Actions by kind of matter: (code, Chinese, English).
ACTIONS = {
    "permit": [("new", "新办", "new"), ("change", "变更", "change"), ("renew", "延续", "renewal"),
               ("cancel", "注销", "cancellation")],
    "registration": [("new", "设立登记", "establishment"), ("change", "变更登记", "change"),
                     ("cancel", "注销登记", "cancellation")],
    "certificate": [("apply", "申领", "application"), ("reissue", "补领", "replacement")],
    "benefit": [("apply", "申领", "application"), ("review", "资格复核", "annual review")],
}

# Life events: (code, Chinese, English, applicant kind, the bundled (sector, subject,
# action), each after the one before it).
LIFE_EVENTS = [
    ("newborn", "新生儿出生一件事", "Having a baby", "person",
     [("health", "birth-certificate", "apply"), ("psb", "household-move", "new")]),
    ("start-business", "开办企业一件事", "Starting a business", "organisation",
     [("amr", "company", "new"), ("psb", "seal-engraving", "apply"),
      ("hrss", "employment-subsidy", "apply")]),
    ("open-restaurant", "开办餐饮店一件事", "Opening a restaurant", "organisation",
     [("amr", "food-business", "new"), ("health", "public-venue-hygiene", "new")]),
    ("retirement", "退休一件事", "Retiring", "person",
     [("hrss", "pension", "apply"), ("cab", "senior-allowance", "apply")]),
    ("unemployment", "失业一件事", "Losing a job", "person",
     [("hrss", "unemployment-insurance", "apply"), ("cab", "minimum-living", "apply")]),
]

_LEVEL_INDEX = {"province": 0, "city": 1, "county": 2}
_LEVEL_LETTER = {"province": "p", "city": "c", "county": "x"}


def agencies() -> list[GeneratedAgency]:
    """Every agency of the generated catalogue, province first."""
    out = []
    for prefix, zh, en, division, level, parent in REGIONS:
        for sector, names, sector_en, regions in SECTORS:
            if prefix not in regions.split():
                continue
            # A district's sector agency answers to its city's, a city's to the province's.
            parent_code = f"{parent}-{sector}" if parent and parent in regions.split() else ""
            out.append(GeneratedAgency(
                code=f"{prefix}-{sector}", display_name=zh + names[_LEVEL_INDEX[level]],
                display_name_en=f"{en} {sector_en}", division_code=division, level=level,
                sector=sector, parent=parent_code))
    return out


def _materials(applicant: str) -> list[dict[str, Any]]:
    # Pulled from the applicant's e-certificates (零跑腿): nothing to upload.
    if applicant == "person":
        out: list[dict[str, Any]] = [
            {"code": "id-card", "display_name": "居民身份证", "display_name_en": "Resident ID card",
             "certificate_types": ["certificateTypes/resident-id-card"]},
            {"code": "household", "display_name": "居民户口簿",
             "display_name_en": "Household register",
             "certificate_types": ["certificateTypes/household-register"]}]
    else:
        out = [{"code": "business-licence", "display_name": "营业执照",
                "display_name_en": "Business licence",
                "certificate_types": ["certificateTypes/business-licence"]}]
    return out


def _steps(level: str, kind: str) -> list[dict[str, Any]]:
    review_days = {"permit": 8, "registration": 3, "certificate": 2, "benefit": 5}[kind]
    steps: list[dict[str, Any]] = [
        {"code": "acceptance", "display_name": "受理", "display_name_en": "Acceptance",
         "role": "acceptor", "time_limit_days": 1}]
    if level != "county" or kind == "permit":
        steps.append({"code": "review", "display_name": "审查", "display_name_en": "Review",
                      "role": "reviewer", "time_limit_days": review_days})
    steps.append({"code": "approval", "display_name": "决定", "display_name_en": "Decision",
                  "role": "approver", "time_limit_days": 2})
    return steps


def _rules(subject: Subject, division: str) -> list[dict[str, Any]]:
    # Residents of the region (their household register says so) qualify at once; the
    # old-age allowance also needs the applicant to be 80 or older.
    region = division
    while region.endswith("00"):
        region = region[:-2]  # 440100 (a city) covers 4401xx
    rules: list[dict[str, Any]] = [
        {"id": "resident", "description": f"household registered in {division}",
         "fact": "materials.household.division_code", "op": "startswith", "value": region}]
    if subject.code == "senior-allowance":
        rules.insert(0, {"id": "age", "description": "applicant is at least 80 years old",
                         "fact": "applicant.age", "op": ">=", "value": 80})
    return rules


def _definition(a: GeneratedAgency, region_zh: str, s: Subject,
                action: tuple[str, str, str]) -> dict[str, Any]:
    act, act_zh, act_en = action
    if s.kind == "registration":
        zh, en = f"{s.zh}{act_zh}", f"{s.en} registration ({act_en})"
    else:
        zh, en = f"{s.zh}（{act_zh}）", f"{s.en} ({act_en})"
    legal = {"permit": 20, "registration": 15, "certificate": 10, "benefit": 20}[s.kind]
    instant = s.instant and act in ("apply", "new")
    doc: dict[str, Any] = {
        "code": f"{a.code}-{s.code}-{act}", "display_name": zh, "display_name_en": en,
        "description": f"{a.display_name}办理：{zh}。{en}, by the {a.display_name_en} "
                       f"({region_zh}).",
        "agency": f"agencies/{a.code}", "level": a.level, "applicant_kind": s.applicant,
        "assurance_level": "real_name", "legal_limit_days": legal,
        "promised_limit_days": 1 if instant else max(1, legal // 2),
        "materials": _materials(s.applicant),
    }
    if instant:
        doc["instant_approval"] = {"rules": _rules(s, a.division_code)}
    else:
        doc["steps"] = _steps(a.level, s.kind)
    if s.kind == "benefit" or act == "cancel":
        doc["result"] = {"certificate_type": "certificateTypes/decision-notice", "validity_days": 0,
                         "fields": {"holder_name": "=applicant.display_name",
                                    "decision": en}}
    else:
        doc["result"] = {"certificate_type": f"certificateTypes/{s.code}",
                         "validity_days": 1825 if s.kind == "permit" else 0,
                         "fields": {"holder_name": "=applicant.display_name"}}
    return doc


def definitions() -> list[tuple[str, str]]:
    """(file name, YAML) of every generated definition: each agency's matters, then the
    regions' life events (bundling matters published before them)."""
    region_zh = {r[0]: r[1] for r in REGIONS}
    docs: list[dict[str, Any]] = []
    codes: set[str] = set()
    by_region: dict[str, dict[str, GeneratedAgency]] = {}
    for a in agencies():
        prefix = a.code.split("-", 1)[0]
        by_region.setdefault(prefix, {})[a.sector] = a
        for s in SUBJECTS[a.sector]:
            if _LEVEL_LETTER[a.level] not in s.levels:
                continue
            for action in ACTIONS[s.kind]:
                doc = _definition(a, region_zh[prefix], s, action)
                docs.append(doc)
                codes.add(doc["code"])
    for prefix, sectors in by_region.items():
        host = sectors.get("sdb")
        if host is None:
            continue
        for code, zh, en, kind, parts in LIFE_EVENTS:
            members = [f"{prefix}-{sector}-{subject}-{act}" for sector, subject, act in parts]
            members = [m for m in members if m in codes]
            if len(members) < 2:
                continue  # the region does not handle enough of it
            docs.append({
                "code": f"{prefix}-{code}", "display_name": zh, "display_name_en": en,
                "description": f"{host.display_name}：{zh}，一次申请办结{len(members)}个事项。"
                               f"{en}: {len(members)} matters in one application.",
                "agency": f"agencies/{host.code}", "level": host.level, "applicant_kind": kind,
                "assurance_level": "real_name", "legal_limit_days": 30,
                "promised_limit_days": 10,
                "bundle": [{"matter": m, **({"after": [members[i - 1]]} if i else {})}
                           for i, m in enumerate(members)]})
    return [(f"{d['code']}.yaml", yaml.dump(d, Dumper=_DUMPER, allow_unicode=True,
                                            sort_keys=False)) for d in docs]


__all__ = ["ACTIONS", "LIFE_EVENTS", "REGIONS", "SECTORS", "SUBJECTS", "GeneratedAgency",
           "Subject", "agencies", "definitions"]
