"""Certificate types and what fits them: a type's schema (its fields and their kinds), who
may hold it (persons or organisations), and the checks of a definition, of a certificate's
field values and of a holder's name."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Mapping, Sequence

FIELD_TYPES = ("string", "date", "int", "bool")
HOLDER_KINDS = ("person", "organisation")
HOLDER_PREFIX = {"person": "persons/", "organisation": "organisations/"}
# The platform's own issuer-key agency: its key signs the trust list (foreign.py).
PLATFORM_AGENCY = "govflow"

_CODE = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
_FIELD_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")
# The id part of a resource name (``persons/{id}``, ``agencies/{code}``, ...).
ID_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_INT = re.compile(r"-?\d{1,18}")
MAX_FIELD_VALUE = 2000


@dataclasses.dataclass(frozen=True)
class FieldSpec:
    """One field of a certificate type's schema."""

    name: str
    type: str
    required: bool = False


# ---------------------------------------------------------------- certificate types


def type_problems(
    *,
    code: str,
    display_name: str,
    issuing_agency: str,
    holder_kind: str,
    fields: Sequence[FieldSpec],
    default_validity_days: int,
    prefix: str = "certificate_type",
) -> dict[str, str]:
    """Every problem with a certificate type definition, keyed by field path."""
    out: dict[str, str] = {}
    if not _CODE.fullmatch(code):
        out[f"{prefix}.code"] = "required; lower-case letters, digits and dashes (max 63)"
    if not display_name.strip():
        out[f"{prefix}.display_name"] = "required"
    if not agency_code(issuing_agency):
        out[f"{prefix}.issuing_agency"] = "required; agencies/{code}"
    elif agency_code(issuing_agency) == PLATFORM_AGENCY:
        # Its key signs the trust list (foreign.py); it must never sign a certificate too.
        out[f"{prefix}.issuing_agency"] = "agencies/govflow is the platform itself, not an issuer"
    if holder_kind not in HOLDER_KINDS:
        out[f"{prefix}.holder_kind"] = "must be PERSON or ORGANISATION"
    if not fields:
        out[f"{prefix}.fields"] = "at least one field is required"
    seen: set[str] = set()
    for i, spec in enumerate(fields):
        if not _FIELD_NAME.fullmatch(spec.name):
            out[f"{prefix}.fields[{i}].name"] = "lower-case letters, digits and underscores"
        elif spec.name in seen:
            out[f"{prefix}.fields[{i}].name"] = f"duplicate field {spec.name!r}"
        seen.add(spec.name)
        if spec.type not in FIELD_TYPES:
            out[f"{prefix}.fields[{i}].type"] = f"must be one of {', '.join(FIELD_TYPES)}"
    if default_validity_days < 0:
        out[f"{prefix}.default_validity_days"] = "must not be negative"
    return out


def agency_code(name: str) -> str:
    """The code in ``agencies/{code}``, or '' when ``name`` is not such a name."""
    if not name.startswith("agencies/"):
        return ""
    code = name.removeprefix("agencies/")
    return code if ID_PART.fullmatch(code) else ""


# ---------------------------------------------------------------- certificates


def field_value_problem(spec: FieldSpec, value: str) -> str | None:
    """Why ``value`` does not fit ``spec``, or None."""
    if len(value) > MAX_FIELD_VALUE:
        return f"longer than {MAX_FIELD_VALUE} characters"
    if spec.type == "string":
        return None
    if spec.type == "date":
        if not _DATE.fullmatch(value):
            return "must be a date YYYY-MM-DD"
        try:
            dt.date.fromisoformat(value)
        except ValueError:
            return "is not a real date"
        return None
    if spec.type == "int":
        return None if _INT.fullmatch(value) else "must be a whole number"
    if spec.type == "bool":
        return None if value in ("true", "false") else "must be true or false"
    return f"has an unknown type {spec.type!r}"


def field_problems(
    specs: Sequence[FieldSpec], values: Mapping[str, str], prefix: str = "certificate.fields"
) -> dict[str, str]:
    """Every problem with a certificate's fields against its type's schema: missing required
    fields, values of the wrong type, and fields the schema does not know."""
    out: dict[str, str] = {}
    by_name = {s.name: s for s in specs}
    for spec in specs:
        value = values.get(spec.name)
        if value is None or value == "":
            if spec.required:
                out[f"{prefix}.{spec.name}"] = "required"
            continue
        problem = field_value_problem(spec, value)
        if problem:
            out[f"{prefix}.{spec.name}"] = f"{spec.type} field {problem}"
    for name in values:
        if name not in by_name:
            out[f"{prefix}.{name}"] = "not a field of this certificate type"
    return out


def normalise_fields(specs: Sequence[FieldSpec], values: Mapping[str, str]) -> dict[str, str]:
    """Drops empty optional fields so an absent and an empty value sign the same."""
    return {k: v for k, v in values.items() if v != "" and any(s.name == k for s in specs)}


def holder_problem(holder: str, holder_kind: str) -> str | None:
    """Why ``holder`` cannot hold a certificate of a type with ``holder_kind``, or None."""
    prefix = HOLDER_PREFIX.get(holder_kind, "")
    if not holder:
        return "required"
    if not prefix or not holder.startswith(prefix):
        return f"must be {prefix or 'persons/ or organisations/'}{{id}} for this certificate type"
    if not ID_PART.fullmatch(holder.removeprefix(prefix)):
        return "malformed resource name"
    return None


def is_holder_name(name: str) -> bool:
    return any(
        name.startswith(p) and bool(ID_PART.fullmatch(name.removeprefix(p)))
        for p in HOLDER_PREFIX.values()
    )
