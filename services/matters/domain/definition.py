"""The matter definition: YAML in, a validated ``MatterSpec`` out, every problem named;
its fingerprint (what makes a new version) and its stored JSON form; the English names it
gives beside its display names.

Display names are Chinese, the primary language; ``display_name_en`` (optional, on the
matter, each material and each step) carries the English one. English names are for
front ends only, so they are read from the published YAML (``english_names``) rather than
added to ``MatterSpec``: the workflow's input, and its saved histories, stay as they are.

The definition's types (``MatterSpec``, ``MaterialSpec``, ``StepSpec``, ``RuleSpec``,
``BundleItem``) are the workflow's input, so they stay in ``workflows/models.py`` — the
small dependency-free contract the Temporal sandbox passes through, whose field names
saved histories depend on — and are re-exported here: matters code imports them from the
domain. Each publish of a changed definition makes a new version (``PublishMatter``).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

import yaml

from govflow.errors import InvalidArgument
from workflows.models import BundleItem, MaterialSpec, MatterSpec, RuleSpec, StepSpec
from workflows.rules import OPS

ROLES = ("acceptor", "reviewer", "approver", "supervisor", "admin")
ASSURANCE = ("account", "real_name", "face")
# The administrative level that exercises a matter (行使层级), for the catalogue's filters.
LEVELS = ("province", "city", "county")
_CODE = re.compile(r"^[a-z][a-z0-9-]{1,62}$")
MAX_DEFINITION_BYTES = 64 * 1024
# Definitions nest a few levels (steps, materials, rules); deeper input is refused before
# parsing, so a hostile document cannot exhaust the parser's recursion.
MAX_DEFINITION_DEPTH = 16
# PyYAML's safe loader with its C parser (libyaml) when PyYAML was built with it: the same
# documents (the constructor and resolver are the same Python ones) several times faster,
# which is most of a publish's time.
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _int(d: dict[str, Any], key: str, path: str, problems: dict[str, str], *, minimum: int = 0) -> int:
    v = d.get(key)
    if not isinstance(v, int) or isinstance(v, bool) or v < minimum:
        problems[f"{path}{key}"] = f"must be an integer >= {minimum}"
        return minimum
    return v


def _str(d: dict[str, Any], key: str, path: str, problems: dict[str, str], *,
         required: bool = True, pattern: re.Pattern[str] | None = None) -> str:
    v = d.get(key, "")
    if not isinstance(v, str) or (required and not v.strip()):
        problems[f"{path}{key}"] = "required text" if required else "must be text"
        return ""
    if v and pattern and not pattern.match(v):
        problems[f"{path}{key}"] = f"must match {pattern.pattern}"
    return v


def _ref(v: Any, prefix: str) -> bool:
    return isinstance(v, str) and v.startswith(prefix) and len(v) > len(prefix)


def _check_depth(text: str) -> None:
    """Refuses nesting deeper than any definition needs, before the (recursive) composer
    sees it: the event stream is read iteratively."""
    depth = 0
    for event in yaml.parse(text, Loader=_LOADER):
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            if depth > MAX_DEFINITION_DEPTH:
                raise InvalidArgument(fields={"definition_yaml": (
                    f"nested deeper than {MAX_DEFINITION_DEPTH} levels")})
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1


def parse(text: str) -> MatterSpec:
    """Parses and validates a definition; raises InvalidArgument naming every problem."""
    if len(text.encode()) > MAX_DEFINITION_BYTES:
        raise InvalidArgument(fields={"definition_yaml": f"larger than {MAX_DEFINITION_BYTES} bytes"})
    try:
        _check_depth(text)
        doc = yaml.load(text, Loader=_LOADER)  # noqa: S506 (a safe loader, in C when built)
    except yaml.YAMLError as exc:
        raise InvalidArgument(fields={"definition_yaml": f"not valid YAML: {exc}"}) from exc
    if not isinstance(doc, dict):
        raise InvalidArgument(fields={"definition_yaml": "must be a mapping"})
    p: dict[str, str] = {}
    code = _str(doc, "code", "", p, pattern=_CODE)
    name = _str(doc, "display_name", "", p)
    name_en = _str(doc, "display_name_en", "", p, required=False)
    agency = doc.get("agency")
    if not _ref(agency, "agencies/"):
        p["agency"] = "must be agencies/{code}"
    kind = doc.get("applicant_kind")
    if kind not in ("person", "organisation"):
        p["applicant_kind"] = "must be person or organisation"
    legal = _int(doc, "legal_limit_days", "", p, minimum=1)
    promised = _int(doc, "promised_limit_days", "", p, minimum=0)
    if "legal_limit_days" not in p and "promised_limit_days" not in p and promised > legal:
        p["promised_limit_days"] = "must not exceed legal_limit_days"
    assurance = doc.get("assurance_level", "real_name")
    if assurance not in ASSURANCE:
        p["assurance_level"] = f"must be one of {', '.join(ASSURANCE)}"

    materials: list[MaterialSpec] = []
    seen: set[str] = set()
    for i, m in enumerate(doc.get("materials") or []):
        path = f"materials[{i}]."
        if not isinstance(m, dict):
            p[f"materials[{i}]"] = "must be a mapping"
            continue
        mcode = _str(m, "code", path, p, pattern=_CODE)
        if mcode in seen:
            p[f"{path}code"] = f"duplicate material code {mcode}"
        seen.add(mcode)
        types = m.get("certificate_types") or []
        if not isinstance(types, list) or not all(_ref(t, "certificateTypes/") for t in types):
            p[f"{path}certificate_types"] = "must be a list of certificateTypes/{code}"
            types = []
        upload = bool(m.get("upload_allowed", False))
        pledge = bool(m.get("pledge_allowed", False))
        if not types and not upload and not pledge:
            p[f"{path}certificate_types"] = "name a certificate type, or allow an upload or pledge"
        materials.append(MaterialSpec(code=mcode, display_name=_str(m, "display_name", path, p),
                                      display_name_en=_str(m, "display_name_en", path, p,
                                                           required=False),
                                      certificate_types=list(types),
                                      required=bool(m.get("required", True)),
                                      upload_allowed=upload, pledge_allowed=pledge))

    steps: list[StepSpec] = []
    step_codes: set[str] = set()
    for i, s in enumerate(doc.get("steps") or []):
        path = f"steps[{i}]."
        if not isinstance(s, dict):
            p[f"steps[{i}]"] = "must be a mapping"
            continue
        scode = _str(s, "code", path, p, pattern=_CODE)
        if scode in step_codes:
            p[f"{path}code"] = f"duplicate step code {scode}"
        step_codes.add(scode)
        role = s.get("role")
        if role not in ROLES:
            p[f"{path}role"] = f"must be one of {', '.join(ROLES)}"
        agencies = s.get("agencies") or ([agency] if isinstance(agency, str) else [])
        if not isinstance(agencies, list) or not agencies or not all(_ref(a, "agencies/") for a in agencies):
            p[f"{path}agencies"] = "must be a non-empty list of agencies/{code}"
            agencies = []
        step_en = _str(s, "display_name_en", path, p, required=False)
        quorum = s.get("quorum", "all")
        if quorum not in ("all", "any"):
            p[f"{path}quorum"] = "must be all or any"
        steps.append(StepSpec(code=scode, display_name=_str(s, "display_name", path, p),
                              role=str(role), agencies=list(agencies),
                              time_limit_days=_int(s, "time_limit_days", path, p, minimum=1),
                              quorum=str(quorum), display_name_en=step_en))

    instant = doc.get("instant_approval") or {}
    rules: list[RuleSpec] = []
    if instant and not isinstance(instant, dict):
        p["instant_approval"] = "must be a mapping with rules"
        instant = {}
    for i, r in enumerate(instant.get("rules") or []):
        path = f"instant_approval.rules[{i}]."
        if not isinstance(r, dict):
            p[f"instant_approval.rules[{i}]"] = "must be a mapping"
            continue
        op = r.get("op")
        if op not in OPS:
            p[f"{path}op"] = f"must be one of {' '.join(OPS)}"
        fact = _str(r, "fact", path, p)
        if fact and not fact.startswith(("applicant.", "materials.")):
            p[f"{path}fact"] = "must start with applicant. or materials."
        if op in ("in", "not_in") and not isinstance(r.get("value"), list):
            p[f"{path}value"] = "must be a list for in / not_in"
        rules.append(RuleSpec(id=_str(r, "id", path, p), description=str(r.get("description", "")),
                              fact=fact, op=str(op), value=r.get("value")))
    if instant and not rules:
        p["instant_approval.rules"] = "instant approval needs at least one rule"

    bundle: list[BundleItem] = []
    raw_bundle = doc.get("bundle") or []
    if not isinstance(raw_bundle, list):
        p["bundle"] = "must be a list of {matter, after}"
        raw_bundle = []
    codes_so_far: list[str] = []
    for i, b in enumerate(raw_bundle):
        path = f"bundle[{i}]."
        if not isinstance(b, dict):
            p[f"bundle[{i}]"] = "must be a mapping"
            continue
        bcode = _str(b, "matter", path, p, pattern=_CODE)
        after = b.get("after") or []
        if not isinstance(after, list) or any(a not in codes_so_far for a in after):
            p[f"{path}after"] = "must list matters named earlier in the bundle"
            after = []
        if bcode == code:
            p[f"{path}matter"] = "a life event cannot include itself"
        codes_so_far.append(bcode)
        bundle.append(BundleItem(matter=bcode, after=list(after)))
    if raw_bundle and len(bundle) < 2:
        p["bundle"] = "a life event bundles at least two matters"
    if bundle and (steps or rules):
        p["bundle"] = "a life event has no steps or rules of its own"
    if not rules and not steps and not bundle:
        p["steps"] = "a matter needs approval steps, instant-approval rules or a bundle"

    result = doc.get("result") or {}
    result_type = result.get("certificate_type", "") if isinstance(result, dict) else ""
    if not bundle and not _ref(result_type, "certificateTypes/"):
        p["result.certificate_type"] = "must be certificateTypes/{code}"
    result_fields = result.get("fields") or {} if isinstance(result, dict) else {}
    if not isinstance(result_fields, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in result_fields.items()):
        p["result.fields"] = "must map field names to text or =fact.path"
        result_fields = {}
    validity = result.get("validity_days", 0) if isinstance(result, dict) else 0
    if not isinstance(validity, int) or validity < 0:
        p["result.validity_days"] = "must be an integer >= 0"
        validity = 0
    known = {"code", "display_name", "display_name_en", "agency", "applicant_kind", "legal_limit_days",
             "promised_limit_days", "assurance_level", "materials", "steps", "instant_approval",
             "result", "calendar", "description", "supplement_limit_days", "pledge",
             "bundle", "one_per_holder", "level"}
    if doc.get("level") is not None and doc.get("level") not in LEVELS:
        p["level"] = f"must be one of {', '.join(LEVELS)}"
    # A holder has one result at a time (a card, not a permit per premises): a second
    # application is refused while an earlier one is open or its result stands.
    one_per_holder = doc.get("one_per_holder", False)
    if not isinstance(one_per_holder, bool):
        p["one_per_holder"] = "must be true or false"
    supplement_days = doc.get("supplement_limit_days", 5)
    if not isinstance(supplement_days, int) or supplement_days < 1:
        p["supplement_limit_days"] = "must be an integer >= 1"
        supplement_days = 5
    pledge_doc = doc.get("pledge") or {}
    if not isinstance(pledge_doc, dict):
        p["pledge"] = "must be a mapping {check_after_days, on_failure}"
        pledge_doc = {}
    check_days = pledge_doc.get("check_after_days", 20)
    if not isinstance(check_days, int) or check_days < 1:
        p["pledge.check_after_days"] = "must be an integer >= 1"
        check_days = 20
    on_failure = pledge_doc.get("on_failure", "revoke")
    if on_failure not in ("revoke", "suspend"):
        p["pledge.on_failure"] = "must be revoke or suspend"
    if pledge_doc and not any(m.pledge_allowed for m in materials):
        p["pledge"] = "no material allows a pledge"
    for extra in sorted(set(doc) - known):
        p[str(extra)] = "unknown key"
    if p:
        raise InvalidArgument(f"matter definition has {len(p)} problem(s)", fields=p,
                              reason="BAD_MATTER_DEFINITION")
    return MatterSpec(
        code=code, version=0, display_name=name, agency=str(agency), applicant_kind=str(kind),
        legal_limit_days=legal, promised_limit_days=promised, assurance_level=str(assurance),
        materials=materials, steps=steps, instant_approval=bool(rules), instant_rules=rules,
        result_certificate_type=str(result_type), result_fields=dict(result_fields),
        result_validity_days=int(validity), calendar=str(doc.get("calendar", "CN")),
        supplement_limit_days=int(supplement_days), pledge_check_days=int(check_days),
        pledge_failure=str(on_failure), bundle=bundle, one_per_holder=one_per_holder is True,
        display_name_en=name_en)


@dataclasses.dataclass(frozen=True)
class EnglishNames:
    """The English names a definition gives beside its (Chinese) display names; "" or
    absent where it gives none."""

    matter: str = ""
    materials: Mapping[str, str] = dataclasses.field(default_factory=dict)  # by material code
    steps: Mapping[str, str] = dataclasses.field(default_factory=dict)  # by step code


@functools.lru_cache(maxsize=512)
def english_names(text: str) -> EnglishNames:
    """The English names of a published definition (``parse`` accepted it), read once per
    definition text and kept: every Matter message built from it asks."""
    doc = yaml.load(text, Loader=_LOADER)  # noqa: S506 (a safe loader, in C when built)
    if not isinstance(doc, dict):
        return EnglishNames()

    def by_code(items: Any) -> dict[str, str]:
        return {str(i["code"]): str(i["display_name_en"]) for i in items or []
                if isinstance(i, dict) and i.get("code") and isinstance(i.get("display_name_en"), str)}

    matter = doc.get("display_name_en")
    return EnglishNames(matter=matter if isinstance(matter, str) else "",
                        materials=by_code(doc.get("materials")), steps=by_code(doc.get("steps")))


def fingerprint(text: str) -> str:
    """Identity of a definition's meaning (so republishing the same file is a no-op)."""
    doc = yaml.load(text, Loader=_LOADER)  # noqa: S506 (a safe loader, in C when built)
    return hashlib.sha256(json.dumps(doc, sort_keys=True, ensure_ascii=False).encode()).hexdigest()



def spec_to_json(spec: MatterSpec) -> str:
    """The stored form of a parsed definition (``matter_versions.spec_json``)."""
    return json.dumps(dataclasses.asdict(spec), ensure_ascii=False)


def spec_from_json(text: str) -> MatterSpec:
    """The definition as stored by ``spec_to_json``."""
    d = json.loads(text)
    d["materials"] = [MaterialSpec(**m) for m in d.get("materials", [])]
    d["steps"] = [StepSpec(**s) for s in d.get("steps", [])]
    d["instant_rules"] = [RuleSpec(**r) for r in d.get("instant_rules", [])]
    d["bundle"] = [BundleItem(**b) for b in d.get("bundle", [])]
    return MatterSpec(**d)


__all__ = ["ASSURANCE", "LEVELS", "ROLES", "BundleItem", "EnglishNames", "MaterialSpec", "MatterSpec",
           "RuleSpec", "StepSpec", "english_names", "fingerprint", "parse", "spec_from_json",
           "spec_to_json"]
