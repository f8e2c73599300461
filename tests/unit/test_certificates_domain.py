"""Certificate rules without a server: canonical form, signatures, verification, schemas."""

from __future__ import annotations

import datetime as dt
import json
import random

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from govflow import auth
from services.certificates import domain
from services.certificates.domain import Failure, FieldSpec

NOW = dt.datetime(2025, 3, 1, 12, 0, 0, tzinfo=dt.UTC)
SPECS = (
    FieldSpec("full_name", "string", True),
    FieldSpec("birth_date", "date", True),
    FieldSpec("height_cm", "int"),
    FieldSpec("organ_donor", "bool"),
)


def _payload(**over: object) -> dict[str, object]:
    base: dict[str, object] = {
        "certificate_id": "c1", "type_code": "resident-id-card", "holder": "persons/p1",
        "issuer_code": "gongan", "fields": {"full_name": "张三", "birth_date": "1990-01-02"},
        "valid_from": NOW - dt.timedelta(days=1), "valid_until": NOW + dt.timedelta(days=365),
        "status_list_index": 7, "kid": "gongan.1"}
    base.update(over)
    return domain.build_payload(**base)  # type: ignore[arg-type]


def _signed(key: Ed25519PrivateKey, **over: object) -> tuple[bytes, str]:
    payload = domain.canonical(_payload(**over))
    return payload, domain.sign(key, payload)


# ---------------------------------------------------------------- canonical form


def test_canonical_is_sorted_compact_utf8() -> None:
    out = domain.canonical({"b": 1, "a": {"y": "张", "x": None}})
    assert out == '{"a":{"x":null,"y":"张"},"b":1}'.encode()


json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**53) + 1, 2**53 - 1),
                         st.text(max_size=20))
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=20)


def _shuffled(value: object, rng: random.Random) -> object:
    if isinstance(value, dict):
        items = list(value.items())
        rng.shuffle(items)
        return {k: _shuffled(v, rng) for k, v in items}
    if isinstance(value, list):
        return [_shuffled(v, rng) for v in value]
    return value


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(max_size=8), json_values, max_size=6), st.integers(0, 2**32),
       st.sampled_from([None, 0, 1, 4]), st.sampled_from([(",", ":"), (", ", ": ")]))
def test_key_order_and_whitespace_do_not_change_canonical_bytes(
        obj: dict[str, object], seed: int, indent: int | None,
        separators: tuple[str, str]) -> None:
    # Serialise the same object with another key order and another layout, read it back,
    # and the canonical bytes must not move: that is what lets anyone re-check a signature.
    rng = random.Random(seed)
    text = json.dumps(_shuffled(obj, rng), indent=indent, separators=separators,
                      ensure_ascii=rng.random() < 0.5)
    assert domain.canonical(json.loads(text)) == domain.canonical(obj)


def test_payload_is_fully_derived_and_stable() -> None:
    a = domain.canonical(_payload())
    b = domain.canonical(_payload(fields={"birth_date": "1990-01-02", "full_name": "张三"}))
    assert a == b
    parsed = json.loads(a)
    assert parsed["valid_from"] == "2025-02-28T12:00:00Z"
    assert parsed["issuer"] == "agencies/gongan" and parsed["kid"] == "gongan.1"
    # Microseconds are dropped, so a database round trip cannot change the signed bytes.
    assert domain.canonical(_payload(valid_from=NOW - dt.timedelta(days=1, microseconds=-5))) == a


# ---------------------------------------------------------------- signatures


def test_valid_certificate_has_no_failures() -> None:
    key = Ed25519PrivateKey.generate()
    payload, sig = _signed(key)
    assert domain.verify(payload, sig, key.public_key(), status=domain.ACTIVE, now=NOW,
                         key_issuer="agencies/gongan", expected_payload=payload) == []


def test_tampered_field_breaks_signature() -> None:
    key = Ed25519PrivateKey.generate()
    payload, sig = _signed(key)
    tampered = domain.canonical({**json.loads(payload),
                                 "fields": {"full_name": "李四", "birth_date": "1990-01-02"}})
    assert domain.verify(tampered, sig, key.public_key(), status=domain.ACTIVE,
                         now=NOW) == [Failure.BAD_SIGNATURE]
    # Against the issuer's records the edit also shows as a payload mismatch.
    assert set(domain.verify(tampered, sig, key.public_key(), status=domain.ACTIVE, now=NOW,
                             expected_payload=payload)) == {Failure.BAD_SIGNATURE,
                                                            Failure.PAYLOAD_MISMATCH}


def test_tampered_signature_is_refused() -> None:
    key = Ed25519PrivateKey.generate()
    payload, sig = _signed(key)
    raw = bytearray(domain.b64url_decode(sig))
    raw[0] ^= 1
    for bad in (domain.b64url(bytes(raw)), sig[:-4], "not*base64", ""):
        assert domain.verify(payload, bad, key.public_key(), status=domain.ACTIVE,
                             now=NOW) == [Failure.BAD_SIGNATURE]


def test_wrong_key_and_unknown_key() -> None:
    key, other = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    payload, sig = _signed(key)
    assert domain.verify(payload, sig, other.public_key(), status=domain.ACTIVE,
                         now=NOW) == [Failure.BAD_SIGNATURE]
    assert domain.verify(payload, sig, None, status=domain.ACTIVE,
                         now=NOW) == [Failure.UNKNOWN_KEY]


def test_key_of_another_issuer_or_untrusted_issuer() -> None:
    key = Ed25519PrivateKey.generate()
    payload, sig = _signed(key)
    assert domain.verify(payload, sig, key.public_key(), status=domain.ACTIVE, now=NOW,
                         key_issuer="agencies/shichang") == [Failure.UNKNOWN_ISSUER]
    assert domain.verify(payload, sig, key.public_key(), status=domain.ACTIVE, now=NOW,
                         trusted_issuers=frozenset({"agencies/x"})) == [Failure.UNKNOWN_ISSUER]


def test_expiry_and_not_yet_valid() -> None:
    key = Ed25519PrivateKey.generate()
    payload, sig = _signed(key)
    until = NOW + dt.timedelta(days=365)
    assert domain.verify(payload, sig, key.public_key(), status=domain.ACTIVE,
                         now=until - dt.timedelta(seconds=1)) == []
    assert domain.verify(payload, sig, key.public_key(), status=domain.ACTIVE,
                         now=until) == [Failure.EXPIRED]
    assert domain.verify(payload, sig, key.public_key(), status=domain.ACTIVE,
                         now=NOW - dt.timedelta(days=2)) == [Failure.NOT_YET_VALID]
    forever, sig2 = _signed(key, valid_until=None)
    assert domain.verify(forever, sig2, key.public_key(), status=domain.ACTIVE,
                         now=NOW + dt.timedelta(days=36500)) == []


def test_every_failure_is_reported_together() -> None:
    key = Ed25519PrivateKey.generate()
    payload, sig = _signed(key)
    got = domain.verify(payload, sig[::-1], key.public_key(), status=domain.REVOKED,
                        now=NOW + dt.timedelta(days=400), key_issuer="agencies/other")
    assert set(got) == {Failure.BAD_SIGNATURE, Failure.UNKNOWN_ISSUER, Failure.EXPIRED,
                        Failure.REVOKED}
    assert domain.verify(payload, sig, key.public_key(), status=domain.SUSPENDED,
                         now=NOW) == [Failure.SUSPENDED]


def test_garbage_payload() -> None:
    key = Ed25519PrivateKey.generate()
    assert domain.verify(b"\xff{", domain.sign(key, b"\xff{"), key.public_key(),
                         status=domain.ACTIVE, now=NOW) == [Failure.BAD_SIGNATURE]


def test_effective_status() -> None:
    assert domain.effective_status(domain.ACTIVE, NOW, NOW) == domain.EXPIRED
    assert domain.effective_status(domain.ACTIVE, None, NOW) == domain.ACTIVE
    assert domain.effective_status(domain.REVOKED, NOW, NOW) == domain.REVOKED


# ---------------------------------------------------------------- schemas


def test_field_problems_names_every_bad_field() -> None:
    got = domain.field_problems(SPECS, {"birth_date": "1990-02-30", "height_cm": "tall",
                                        "organ_donor": "yes", "nickname": "x"})
    assert set(got) == {"certificate.fields.full_name", "certificate.fields.birth_date",
                        "certificate.fields.height_cm", "certificate.fields.organ_donor",
                        "certificate.fields.nickname"}
    assert got["certificate.fields.full_name"] == "required"
    assert domain.field_problems(SPECS, {"full_name": "a", "birth_date": "2000-01-01",
                                         "height_cm": "-3", "organ_donor": "false"}) == {}


def test_holder_must_match_kind() -> None:
    assert domain.holder_problem("persons/p1", "person") is None
    assert domain.holder_problem("organisations/o1", "person") is not None
    assert domain.holder_problem("persons/", "person") is not None
    assert domain.holder_problem("persons/a/b", "person") is not None
    assert domain.holder_problem("organisations/o1", "organisation") is None


def test_type_problems() -> None:
    assert domain.type_problems(
        code="business-licence", display_name="营业执照", issuing_agency="agencies/scj",
        holder_kind="organisation", fields=(FieldSpec("name", "string", True),),
        default_validity_days=0) == {}
    bad = domain.type_problems(code="Bad Code", display_name="", issuing_agency="scj",
                               holder_kind="", default_validity_days=-1,
                               fields=(FieldSpec("a", "float"), FieldSpec("a", "string")))
    assert set(bad) == {"certificate_type.code", "certificate_type.display_name",
                        "certificate_type.issuing_agency", "certificate_type.holder_kind",
                        "certificate_type.default_validity_days",
                        "certificate_type.fields[0].type", "certificate_type.fields[1].name"}


def test_who_may_issue() -> None:
    approver = auth.Principal("persons/a", auth.OFFICIAL, agency="agencies/gongan",
                              roles=("approver",))
    assert domain.may_issue(approver, "agencies/gongan")
    assert not domain.may_issue(approver, "agencies/scj")
    reviewer = auth.Principal("persons/a", auth.OFFICIAL, agency="agencies/gongan",
                              roles=("reviewer",))
    assert not domain.may_issue(reviewer, "agencies/gongan")
    partner = auth.Principal("partners/b", auth.PARTNER, agency="agencies/gongan",
                             scopes=(auth.SCOPE_CERT_ISSUE,))
    assert domain.may_issue(partner, "agencies/gongan")
    assert not domain.may_issue(partner, "agencies/scj")
    worker = auth.Principal("partners/w", auth.SERVICE, scopes=(auth.SCOPE_CERT_ISSUE,))
    assert domain.may_issue(worker, "agencies/scj")
    assert not domain.may_issue(auth.Principal("persons/x", auth.PERSON), "agencies/scj")


def test_holder_and_acting_for() -> None:
    rep = auth.Principal("persons/a", auth.PERSON, acting_for="organisations/o")
    assert domain.is_holder(rep, "organisations/o")
    assert domain.is_holder(rep, "persons/a")
    assert not domain.is_holder(rep, "organisations/other")


def test_transitions() -> None:
    assert domain.transition_allowed(domain.ACTIVE, domain.SUSPENDED)
    assert domain.transition_allowed(domain.SUSPENDED, domain.ACTIVE)
    assert not domain.transition_allowed(domain.REVOKED, domain.ACTIVE)
    assert not domain.transition_allowed(domain.REVOKED, domain.SUSPENDED)
