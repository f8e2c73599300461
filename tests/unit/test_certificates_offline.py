"""Offline forms without a server: status list bits and signatures, compact tokens, the
offline verdict, and the consent rules of the domain."""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm

from govflow import auth
from services.certificates import domain, offline
from services.certificates.offline import OfflineFailure as F

NOW = dt.datetime(2025, 3, 1, 12, 0, 0, tzinfo=dt.UTC)


def _jwk(key: Ed25519PrivateKey, kid: str, issuer: str) -> dict[str, object]:
    jwk = json.loads(OKPAlgorithm.to_jwk(key.public_key()))
    jwk.update({"kid": kid, "alg": "EdDSA", "issuer": issuer})
    return jwk  # type: ignore[no-any-return]


class Issuer:
    def __init__(self, code: str = "gongan", generation: int = 1) -> None:
        self.key = Ed25519PrivateKey.generate()
        self.kid = f"{code}.{generation}"
        self.name = f"agencies/{code}"

    def jwk(self) -> dict[str, object]:
        return _jwk(self.key, self.kid, self.name)

    def status_list(self, *, revoked: tuple[int, ...] = (), suspended: tuple[int, ...] = (),
                    issued: dt.datetime = NOW, slots: int = 10) -> dict[str, str]:
        payload = domain.canonical(offline.status_list_payload(
            issuer=self.name, revoked=revoked, suspended=suspended, slots_used=slots,
            issued=issued, kid=self.kid))
        return {"issuer": self.name, "key_id": self.kid, "signed_payload": payload.decode(),
                "signature": domain.sign(self.key, payload)}

    def token(self, index: int = 3, **over: object) -> str:
        payload = domain.build_payload(
            certificate_id="c1", type_code="resident-id-card", holder="persons/p1",
            issuer_code=self.name.removeprefix("agencies/"),
            fields={"full_name": "张三", "birth_date": "1990-01-02"},
            valid_from=NOW - dt.timedelta(days=1), valid_until=NOW + dt.timedelta(days=365),
            status_list_index=index, kid=self.kid)
        payload.update(over)
        return offline.make_compact(self.key, self.kid, offline.compact_claims(payload))


def _verify(token: str, issuers: list[Issuer], lists: list[dict[str, str]],
            now: dt.datetime = NOW, **kw: bool) -> list[F]:
    keys = offline.load_keys(json.dumps({"keys": [i.jwk() for i in issuers]}))
    good, problems = offline.load_status_lists(lists, keys)
    return offline.verify_compact(token, keys, good, now=now, **kw).failures


# ---------------------------------------------------------------- status lists


def test_bits_follow_w3c_order_and_minimum_size() -> None:
    encoded = offline.encode_bits([0, 9, 131071], offline.list_size(12))
    assert encoded.startswith("u")
    raw = gzip.decompress(base64.urlsafe_b64decode(encoded[1:] + "=="))
    assert len(raw) * 8 == 131072  # the W3C minimum
    assert raw[0] == 0x80 and raw[1] == 0x40 and raw[-1] == 0x01  # bit 0 is the leftmost
    bits = offline.decode_bits(encoded)
    assert [i for i in (0, 1, 8, 9, 131071) if offline.bit_set(bits, i)] == [0, 9, 131071]
    assert offline.list_size(131073) == 131080  # grows in whole bytes past the minimum
    with pytest.raises(ValueError):
        offline.encode_bits([131072], 131072)


def test_same_bits_same_signed_bytes() -> None:
    issuer = Issuer()
    assert issuer.status_list(revoked=(2,)) == issuer.status_list(revoked=(2,))


def test_status_list_signature_is_checked() -> None:
    issuer, other = Issuer(), Issuer("scj")
    keys = offline.load_keys(json.dumps({"keys": [issuer.jwk(), other.jwk()]}))
    doc = issuer.status_list(revoked=(3,))
    sl = offline.read_status_list(doc["signed_payload"], doc["signature"], keys)
    assert offline.bit_set(sl.revoked, 3) and not offline.bit_set(sl.suspended, 3)
    assert sl.valid_until - sl.issued_time == dt.timedelta(hours=1)

    # Clearing the revocation bit (a forger's wish) breaks the signature.
    forged = json.loads(doc["signed_payload"])
    forged["revocation_list"] = offline.encode_bits([], forged["size"])
    with pytest.raises(ValueError, match="signature"):
        offline.read_status_list(domain.canonical(forged).decode(), doc["signature"], keys)
    # Another agency's key cannot vouch for this issuer's list.
    theirs = json.loads(other.status_list()["signed_payload"])
    theirs["issuer"] = issuer.name
    payload = domain.canonical(theirs)
    with pytest.raises(ValueError, match="signed by a key of"):
        offline.read_status_list(payload.decode(), domain.sign(other.key, payload), keys)
    with pytest.raises(ValueError, match="unknown key"):
        offline.read_status_list(doc["signed_payload"], doc["signature"], {})
    with pytest.raises(ValueError):
        offline.decode_bits("u" + domain.b64url(b"not gzip"))


# ---------------------------------------------------------------- compact tokens


def test_compact_token_is_small_deterministic_and_valid() -> None:
    issuer = Issuer()
    token = issuer.token()
    assert token == issuer.token()  # Ed25519 is deterministic
    assert len(token) < 1000  # fits a QR code comfortably
    header = json.loads(domain.b64url_decode(token.split(".")[0]))
    assert header == {"alg": "EdDSA", "kid": "gongan.1", "typ": offline.COMPACT_TYP}
    claims = offline.parse_compact(token).claims
    assert set(claims) == set(offline.COMPACT_CLAIMS)
    assert _verify(token, [issuer], [issuer.status_list()]) == []


def test_every_offline_failure() -> None:
    issuer, other = Issuer(), Issuer("scj")
    ok_list = issuer.status_list()
    assert _verify(issuer.token(), [issuer], [issuer.status_list(revoked=(3,))]) == [F.REVOKED]
    assert _verify(issuer.token(), [issuer], [issuer.status_list(suspended=(3,))]) == [F.SUSPENDED]
    assert _verify(issuer.token(), [other], [ok_list]) == [F.UNKNOWN_KEY, F.UNKNOWN_ISSUER,
                                                           F.STATUS_UNKNOWN]
    assert _verify(issuer.token(), [issuer], []) == [F.STATUS_UNKNOWN]
    assert _verify(issuer.token(index=200000), [issuer], [ok_list]) == [F.STATUS_UNKNOWN]
    later = NOW + dt.timedelta(days=400)
    assert _verify(issuer.token(), [issuer], [ok_list], now=later) == [
        F.EXPIRED, F.STATUS_LIST_EXPIRED]
    assert _verify(issuer.token(), [issuer], [ok_list], now=later,
                   allow_stale_status=True) == [F.EXPIRED]
    earlier = NOW - dt.timedelta(days=2)
    assert _verify(issuer.token(), [issuer], [ok_list], now=earlier) == [F.NOT_YET_VALID]
    # A token naming another issuer than its key's.
    assert F.UNKNOWN_ISSUER in _verify(issuer.token(issuer="agencies/scj"), [issuer, other],
                                       [ok_list])


def test_tampered_or_garbled_tokens_fail() -> None:
    issuer = Issuer()
    header, body, sig = issuer.token().split(".")
    claims = json.loads(domain.b64url_decode(body))
    claims["fields"]["full_name"] = "Mallory"
    forged = f"{header}.{domain.b64url(domain.canonical(claims))}.{sig}"
    assert _verify(forged, [issuer], [issuer.status_list()]) == [F.BAD_SIGNATURE]
    # Flip a character in the middle: the last ones may only carry padding bits.
    mid = len(sig) // 2
    flipped = sig[:mid] + ("B" if sig[mid] == "A" else "A") + sig[mid + 1:]
    assert _verify(f"{header}.{body}.{flipped}", [issuer],
                   [issuer.status_list()]) == [F.BAD_SIGNATURE]
    for garbage in ("", "a.b", "x.y.z", f"{domain.b64url(b'{}')}.{body}.{sig}"):
        assert _verify(garbage, [issuer], [issuer.status_list()]) == [F.BAD_SIGNATURE]


def test_rotated_keys_both_verify() -> None:
    old, new = Issuer(generation=1), Issuer(generation=2)
    lst = new.status_list()
    assert _verify(old.token(), [old, new], [lst]) == []
    assert _verify(new.token(), [old, new], [lst]) == []


def test_verify_report_names_each_reason() -> None:
    issuer = Issuer()
    keys = json.dumps({"keys": [issuer.jwk()]})
    lists = json.dumps(offline.status_lists_document([issuer.status_list(revoked=(3,))], NOW))
    valid, lines = offline.verify_report(issuer.token(), keys, lists, now=NOW)
    assert not valid and lines[0].startswith("INVALID: certificates/c1")
    assert any("REVOKED" in line for line in lines[1:])
    fresh = json.dumps(offline.status_lists_document([issuer.status_list()], NOW))
    valid, lines = offline.verify_report(issuer.token(), keys, fresh, now=NOW)
    assert valid and lines == [
        "valid: certificates/c1 (certificateTypes/resident-id-card) held by persons/p1, "
        "issued by agencies/gongan"]


# ---------------------------------------------------------------- consent rules


def test_parties_and_who_reads_as_which() -> None:
    for ok in ("agencies/gongan", "partners/bank-1", "applications/a1"):
        assert domain.party_problem(ok) is None
    for bad in ("", "persons/p1", "agencies/", "applications/a b"):
        assert domain.party_problem(bad)
    official = auth.Principal(subject="persons/o1", kind=auth.OFFICIAL, agency="agencies/gongan")
    partner = auth.Principal(subject="partners/bank-1", kind=auth.PARTNER)
    worker = auth.Principal(subject="partners/govflow-worker", kind=auth.SERVICE,
                            scopes=(auth.SCOPE_CERT_PULL,))
    other_service = auth.Principal(subject="partners/x", kind=auth.SERVICE)
    citizen = auth.Principal(subject="persons/p2", kind=auth.PERSON)
    assert domain.caller_party(official, "applications/a1") == "agencies/gongan"
    assert domain.caller_party(partner, "applications/a1") == "partners/bank-1"
    assert domain.caller_party(worker, "applications/a1") == "applications/a1"
    assert domain.caller_party(worker, "") is None
    assert domain.caller_party(other_service, "applications/a1") is None
    assert domain.caller_party(citizen, "applications/a1") is None


def test_consent_state_and_expiry_bounds() -> None:
    assert domain.consent_state(None, NOW + dt.timedelta(seconds=1), NOW) == domain.CONSENT_ACTIVE
    assert domain.consent_state(None, NOW, NOW) == domain.CONSENT_EXPIRED
    assert domain.consent_state(NOW, NOW + dt.timedelta(days=1), NOW) == domain.CONSENT_REVOKED
    assert domain.expire_problem(NOW, NOW)
    assert domain.expire_problem(NOW + dt.timedelta(days=367), NOW)
    assert domain.expire_problem(NOW + dt.timedelta(days=30), NOW) is None


def test_who_may_rotate_keys() -> None:
    admin_service = auth.Principal(subject="partners/govflow-admin", kind=auth.SERVICE,
                                   scopes=(auth.SCOPE_ADMIN,))
    gongan_admin = auth.Principal(subject="persons/o1", kind=auth.OFFICIAL,
                                  agency="agencies/gongan", roles=("admin",))
    gongan_approver = auth.Principal(subject="persons/o2", kind=auth.OFFICIAL,
                                     agency="agencies/gongan", roles=("approver",))
    assert domain.may_rotate_key(admin_service, "agencies/gongan")
    assert domain.may_rotate_key(gongan_admin, "agencies/gongan")
    assert not domain.may_rotate_key(gongan_admin, "agencies/scj")
    assert not domain.may_rotate_key(gongan_approver, "agencies/gongan")
