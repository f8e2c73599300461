"""Instant-approval rules: declarative conditions over facts, evaluated deterministically.

A rule is ``{fact, op, value}``; facts are a flat mapping such as ``applicant.age`` or
``materials.id-card.birth_date``. Evaluation never raises on data: a missing fact makes
the rule fail with an explanation, so the decision receipt always says why.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

from workflows.models import ApplicantFacts, PulledCertificate, RuleSpec

OPS = ("==", "!=", ">=", "<=", ">", "<", "in", "not_in", "startswith", "exists", "not_exists")


def age_on(birth: str, today: dt.date) -> int | None:
    try:
        b = dt.date.fromisoformat(birth)
    except ValueError:
        return None
    return today.year - b.year - ((today.month, today.day) < (b.month, b.day))


def build_facts(
    applicant: ApplicantFacts, materials: Mapping[str, PulledCertificate | None], today: dt.date
) -> dict[str, Any]:
    facts: dict[str, Any] = {
        "applicant.kind": applicant.kind,
        "applicant.display_name": applicant.display_name,
        "applicant.assurance_level": applicant.assurance_level,
        "applicant.subject": applicant.subject,
    }
    if applicant.birth_date:
        facts["applicant.birth_date"] = applicant.birth_date
        facts["applicant.age"] = age_on(applicant.birth_date, today)
    if applicant.credit_code:
        facts["applicant.credit_code"] = applicant.credit_code
    for code, cert in materials.items():
        facts[f"materials.{code}.present"] = cert is not None and cert.valid
        if cert is not None:
            facts[f"materials.{code}.certificate"] = cert.name
            for k, v in cert.fields.items():
                facts[f"materials.{code}.{k}"] = v
    return facts


def _coerce(a: Any, b: Any) -> tuple[Any, Any]:
    if isinstance(b, bool) or isinstance(a, bool):
        return a, b
    if isinstance(b, (int, float)) and isinstance(a, str):
        try:
            return float(a), b
        except ValueError:
            return a, b
    return a, b


def evaluate(rule: RuleSpec, facts: Mapping[str, Any]) -> tuple[bool, str]:
    """(passed, explanation) for one rule."""
    present = rule.fact in facts and facts[rule.fact] is not None
    if rule.op == "exists":
        return present, f"{rule.id}: {rule.fact} {'is' if present else 'is not'} present"
    if rule.op == "not_exists":
        return not present, f"{rule.id}: {rule.fact} {'is' if present else 'is not'} present"
    if not present:
        return False, f"{rule.id}: {rule.description} - no value for {rule.fact}"
    actual, want = _coerce(facts[rule.fact], rule.value)
    checks: dict[str, Callable[[], object]] = {
            "==": lambda: actual == want,
            "!=": lambda: actual != want,
            ">=": lambda: actual >= want,
            "<=": lambda: actual <= want,
            ">": lambda: actual > want,
            "<": lambda: actual < want,
            "in": lambda: actual in want,
            "not_in": lambda: actual not in want,
            "startswith": lambda: str(actual).startswith(str(want)),
    }
    try:
        ok = checks[rule.op]()
    except (TypeError, KeyError):
        ok = False
    verdict = "passed" if ok else "failed"
    return bool(ok), (f"{rule.id}: {rule.description} ({rule.fact}={facts[rule.fact]!r} "
                      f"{rule.op} {rule.value!r}) {verdict}")


def evaluate_all(rules: list[RuleSpec], facts: Mapping[str, Any]) -> tuple[bool, list[str]]:
    results = [evaluate(r, facts) for r in rules]
    return all(ok for ok, _ in results), [text for _, text in results]


def render_fields(template: Mapping[str, str], facts: Mapping[str, Any]) -> dict[str, str]:
    """Result certificate fields: ``=fact.path`` takes a fact; anything else is literal."""
    out: dict[str, str] = {}
    for key, spec in template.items():
        if spec.startswith("="):
            value = facts.get(spec[1:])
            if value is None:
                continue
            out[key] = str(value)
        else:
            out[key] = spec
    return out
