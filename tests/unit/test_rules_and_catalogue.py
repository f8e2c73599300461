import datetime as dt

import pytest

from govflow.errors import InvalidArgument
from services.matters import catalogue
from services.matters.domain import definition
from services.matters.domain.applications import MatterVersion
from services.matters.messages import build_matter
from workflows import rules
from workflows.models import ApplicantFacts, PulledCertificate, RuleSpec


def facts(birth: str = "1958-03-15", division: str = "440304") -> dict[str, object]:
    applicant = ApplicantFacts(subject="persons/x", kind="person", display_name="Wang Fang",
                               assurance_level="face", birth_date=birth)
    household = PulledCertificate(name="certificates/h", type="certificateTypes/household-register",
                                  fields={"division_code": division}, valid=True)
    return rules.build_facts(applicant, {"household": household, "id-card": None},
                             dt.date(2026, 11, 22))


def test_age_is_counted_on_the_decision_day() -> None:
    assert facts()["applicant.age"] == 68
    assert rules.age_on("2008-11-23", dt.date(2026, 11, 22)) == 17
    assert rules.age_on("2008-11-22", dt.date(2026, 11, 22)) == 18


def test_bundled_rules_pass_and_fail_with_explanations() -> None:
    spec = definition.parse(dict(catalogue.bundled_definitions())["senior-citizen-card.yaml"])
    ok, why = rules.evaluate_all(spec.instant_rules, facts())
    assert ok and len(why) == 2
    ok, why = rules.evaluate_all(spec.instant_rules, facts(birth="1990-01-01", division="110105"))
    assert not ok
    assert all("failed" in line for line in why)


def test_missing_fact_fails_rather_than_raises() -> None:
    ok, why = rules.evaluate(RuleSpec(id="x", description="d", fact="materials.nope.f", op="==",
                                      value="1"), facts())
    assert not ok and "no value" in why


def test_result_fields_render_from_facts() -> None:
    out = rules.render_fields({"name": "=applicant.display_name", "region": "440300",
                               "gone": "=applicant.nothing"}, facts())
    assert out == {"name": "Wang Fang", "region": "440300"}


def test_every_bundled_definition_is_valid() -> None:
    defs = catalogue.bundled_definitions()
    assert len(defs) >= 2
    for _, text in defs:
        definition.parse(text)


def test_one_per_holder_is_read_from_the_definition() -> None:
    defs = {name: definition.parse(text) for name, text in catalogue.bundled_definitions()}
    # A resident holds one senior card; permits and licences go per premises or project.
    assert {n for n, spec in defs.items() if spec.one_per_holder} == {"senior-citizen-card.yaml"}
    text = dict(catalogue.bundled_definitions())["senior-citizen-card.yaml"]
    with pytest.raises(InvalidArgument) as err:
        definition.parse(text.replace("one_per_holder: true", "one_per_holder: sometimes"))
    assert set(err.value.fields) == {"one_per_holder"}
    assert not definition.parse(text.replace("one_per_holder: true\n", "")).one_per_holder


def test_bundled_names_are_chinese_with_english_beside() -> None:
    """Issue 21, item 4: every bundled matter, material and step is named in Chinese first
    (display_name) and in English beside it (display_name_en), which the Matter message
    carries without it entering MatterSpec, the workflow's input."""
    for name, text in catalogue.bundled_definitions():
        spec, en = definition.parse(text), definition.english_names(text)
        names = [(spec.display_name, en.matter)]
        names += [(m.display_name, en.materials.get(m.code, "")) for m in spec.materials]
        names += [(s.display_name, en.steps.get(s.code, "")) for s in spec.steps]
        for zh, english in names:
            assert any("\u4e00" <= ch <= "\u9fff" for ch in zh), (name, zh)
            assert english.isascii() and english.strip(), (name, zh, english)
    text = dict(catalogue.bundled_definitions())["senior-citizen-card.yaml"]
    en = definition.english_names(text)
    assert en.matter == "Senior citizen preferential card"
    assert en.materials == {"id-card": "Resident ID card", "household": "Household register"}
    assert definition.parse(text).display_name == "老年人优待证"
    spec = definition.parse(text)
    msg = build_matter(MatterVersion(code=spec.code, version=1, agency=spec.agency,
                                     display_name=spec.display_name, definition_yaml=text,
                                     spec=spec, fingerprint=definition.fingerprint(text)))
    assert (msg.display_name, msg.display_name_en) == ("老年人优待证", "Senior citizen preferential card")
    assert [(m.display_name, m.display_name_en) for m in msg.materials] == [
        ("居民身份证", "Resident ID card"), ("居民户口簿", "Household register")]
    # Optional, and text when given.
    assert definition.english_names(text.replace("display_name_en", "other_note")).matter == ""
    with pytest.raises(InvalidArgument) as err:
        definition.parse(text.replace("display_name_en: Resident ID card", "display_name_en: [1]"))
    assert set(err.value.fields) == {"materials[0].display_name_en"}


def test_bad_definition_names_every_problem() -> None:
    text = """
code: Bad Code
display_name: ""
agency: sz-amr
applicant_kind: alien
legal_limit_days: 2
promised_limit_days: 5
materials:
  - code: m
    display_name: M
steps:
  - code: s
    display_name: S
    role: janitor
    time_limit_days: 0
result:
  certificate_type: nothing
colour: blue
"""
    with pytest.raises(InvalidArgument) as err:
        definition.parse(text)
    assert {"code", "display_name", "agency", "applicant_kind", "promised_limit_days",
            "materials[0].certificate_types", "steps[0].role", "steps[0].time_limit_days",
            "result.certificate_type", "colour"} <= set(err.value.fields)


def test_not_yaml_is_refused() -> None:
    with pytest.raises(InvalidArgument) as err:
        definition.parse("code: [unclosed")
    assert "definition_yaml" in err.value.fields


def test_deeply_nested_definition_is_refused_not_crashing() -> None:
    # Found by the fuzzer: 5,000 nested lists used to exhaust the YAML composer's recursion
    # (INTERNAL). Now a clear INVALID_ARGUMENT, whether the nesting is small or huge.
    for depth in (definition.MAX_DEFINITION_DEPTH + 1, 5000):
        with pytest.raises(InvalidArgument) as err:
            definition.parse("definition: " + "[" * depth + "]" * depth)
        assert "nested deeper" in err.value.fields["definition_yaml"]
    # Every bundled definition is well within the limit.
    for _, text in catalogue.bundled_definitions():
        definition.parse(text)
