"""The trust list's and foreign certificates' rules (services/certificates/foreign.py) without a
server: the cases the integration tests cannot reach with a live clock (an entry past its
not_after, a trust list past its valid_until) and the signature rules of the list itself."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm

from govflow_cli.foreign_issuer import ForeignIssuer
from services.certificates import domain, foreign, offline
from services.certificates.foreign import TrustedIssuer
from services.certificates.offline import OfflineFailure

NOW = dt.datetime(2027, 3, 1, 12, 0, tzinfo=dt.UTC)
HOLDER = "persons/p1"


def _entry(fi: ForeignIssuer, **kw: object) -> TrustedIssuer:
    values: dict[str, object] = {
        "issuer": fi.issuer, "display_name": "HK", "jurisdiction": "HK",
        "jwks_json": foreign.normalise_jwks(fi.jwks_json())[0],
        "status_list_location": "https://example.invalid",
        "certificate_types": ("certificateTypes/hk-identity-card",),
        "not_after": NOW + dt.timedelta(days=30)}
    values.update(kw)
    return TrustedIssuer(**values)  # type: ignore[arg-type]


def _card(fi: ForeignIssuer, **kw: object) -> str:
    token, _ = fi.certificate(type_code="hk-identity-card", holder=HOLDER, fields={"name": "C"},
                              valid_from=NOW - dt.timedelta(days=1),
                              valid_until=NOW + dt.timedelta(days=365), **kw)  # type: ignore[arg-type]
    return token


def _status(fi: ForeignIssuer, entry: TrustedIssuer, **kw: object) -> offline.StatusList:
    payload, signature = fi.status_list(issued=NOW - dt.timedelta(minutes=5), **kw)  # type: ignore[arg-type]
    return foreign.read_issuer_status_list(payload, signature, entry)


def _platform() -> tuple[Ed25519PrivateKey, dict[str, offline.IssuerKey]]:
    key = Ed25519PrivateKey.generate()
    jwk = json.loads(OKPAlgorithm.to_jwk(key.public_key()))
    jwk.update({"kid": "govflow.1", "issuer": foreign.PLATFORM_ISSUER})
    return key, offline.load_keys(json.dumps({"keys": [jwk]}))


def test_a_valid_card_and_each_reason_it_is_not() -> None:
    fi = ForeignIssuer("issuers/hk-immd")
    entry = _entry(fi)
    token = _card(fi)
    sl = _status(fi, entry)
    assert foreign.check_token(token, entry, sl, now=NOW, holder=HOLDER)[0] == []
    cases = {
        OfflineFailure.ISSUER_NOT_TRUSTED: foreign.check_token(token, None, sl, now=NOW),
        OfflineFailure.ISSUER_TRUST_EXPIRED: foreign.check_token(
            token, dataclasses.replace(entry, not_after=NOW), sl, now=NOW),
        OfflineFailure.TYPE_NOT_IN_SCOPE: foreign.check_token(
            token, dataclasses.replace(entry, certificate_types=("certificateTypes/x",)), sl,
            now=NOW),
        OfflineFailure.STATUS_UNKNOWN: foreign.check_token(token, entry, None, now=NOW),
        OfflineFailure.REVOKED: foreign.check_token(
            token, entry, _status(fi, entry, revoked=(fi.next_index - 1,)), now=NOW),
        OfflineFailure.TRUST_LIST_EXPIRED: foreign.check_token(
            token, entry, sl, now=NOW, trust_list_valid_until=NOW),
        OfflineFailure.HOLDER_MISMATCH: foreign.check_token(token, entry, sl, now=NOW,
                                                            holder="persons/p2"),
        OfflineFailure.UNKNOWN_KEY: foreign.check_token(
            token, _entry(ForeignIssuer(fi.issuer)), sl, now=NOW),
    }
    for reason, (failures, _) in cases.items():
        assert reason in failures, (reason, failures)
    # A stale trust list is accepted when the verifier says so.
    assert foreign.check_token(token, entry, sl, now=NOW, trust_list_valid_until=NOW,
                               allow_stale=True)[0] == []
    # Another issuer's listed entry does not vouch for this one's tokens.
    other = _entry(ForeignIssuer("issuers/mo-dsi"))
    assert OfflineFailure.ISSUER_NOT_TRUSTED in foreign.check_token(token, other, sl, now=NOW)[0]


def test_a_status_list_must_be_the_issuers_own() -> None:
    fi, impostor = ForeignIssuer("issuers/hk-immd"), ForeignIssuer("issuers/mo-dsi")
    payload, signature = impostor.status_list()
    with pytest.raises(ValueError):
        foreign.read_issuer_status_list(payload, signature, _entry(fi))


def test_the_trust_list_verifies_with_the_platform_key_only_and_the_newest_wins() -> None:
    fi = ForeignIssuer("issuers/hk-immd")
    key, keys = _platform()

    def signed(version: int, issuers: list[TrustedIssuer],
               signer: Ed25519PrivateKey = key) -> dict[str, str]:
        payload = domain.canonical(foreign.trust_list_payload(
            version=version, issuers=issuers, issued=NOW, kid="govflow.1"))
        return {"signed_payload": payload.decode(), "signature": domain.sign(signer, payload)}

    v1, v2 = signed(1, [_entry(fi)]), signed(2, [])
    best, problems = foreign.newest_trust_list([v2, v1], keys)
    assert best is not None and best.version == 2 and not best.issuers and not problems
    assert foreign.newest_trust_list([v1], keys)[0].issuers[fi.issuer].jurisdiction == "HK"  # type: ignore[union-attr]
    forged = signed(3, [_entry(fi)], signer=Ed25519PrivateKey.generate())
    best, problems = foreign.newest_trust_list([v2, forged], keys)
    assert best is not None and best.version == 2 and "signature" in problems[0]
    # An agency's key is not the platform's: a list it signs is refused.
    agency = dict(keys)
    agency["govflow.1"] = dataclasses.replace(keys["govflow.1"], issuer="agencies/sz-psb")
    with pytest.raises(ValueError, match="not the platform"):
        foreign.read_trust_list(v1["signed_payload"], v1["signature"], agency)


def test_entries_are_checked_field_by_field() -> None:
    fi = ForeignIssuer("issuers/hk-immd")
    assert foreign.entry_problems(_entry(fi), NOW) == {}
    private = json.loads(fi.jwks_json())
    private["keys"][0]["d"] = "secret"
    bad = _entry(fi, issuer="hk", jurisdiction="hk", jwks_json=json.dumps(private),
                 certificate_types=("hk-identity-card",), not_after=NOW, display_name=" ",
                 status_list_location="")
    assert set(foreign.entry_problems(bad, NOW)) == {
        "trusted_issuer.name", "trusted_issuer.jurisdiction", "trusted_issuer.jwks_json",
        "trusted_issuer.certificate_types[0]", "trusted_issuer.not_after",
        "trusted_issuer.display_name", "trusted_issuer.status_list_location"}
    deep = "[" * 100000 + "]" * 100000
    assert foreign.normalise_jwks(deep)[1] == "must be a JWK set as JSON"
