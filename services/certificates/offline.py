"""Offline forms of certificates: signed status lists and compact tokens, and verifying a
compact token with nothing but the issuers' public keys and cached status lists.

Pure functions (no gRPC, no database): the service uses them to make what it publishes, and
``govflow verify`` uses them to check a scanned token at a counter with no network.

* Status lists follow the W3C Bitstring Status List: bit ``i`` (the most significant bit of
  byte 0 is bit 0) is 1 when the certificate at ``status_list_index`` ``i`` is revoked (or,
  in the suspension list, suspended). Each list has at least 131072 bits (the W3C minimum,
  so one certificate's bit hides in a crowd), is GZIP-compressed and base64url-encoded with
  the multibase prefix ``u``. The issuer signs the RFC 8785 canonical JSON of the lists,
  their size, the issue time, the time the list may be cached until, and its key id.
* A compact token is a JWS compact serialisation (EdDSA) whose header names the key id and
  whose payload is the canonical JSON of the certificate's claims: small enough for a QR code.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import gzip
import json
import zlib
from collections.abc import Iterable, Mapping
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from jwt.algorithms import OKPAlgorithm

from services.certificates import domain

STATUS_LIST_MIN_BITS = 131072
STATUS_LIST_TTL = dt.timedelta(hours=1)
MAX_LIST_BYTES = 16 * 1024 * 1024
COMPACT_TYP = "govflow-certificate+jws"
ALG = "EdDSA"
# The claims of a compact token: the certificate's signed payload without its key id (the
# JWS header carries that).
COMPACT_CLAIMS = ("id", "type", "holder", "issuer", "fields", "valid_from", "valid_until",
                  "status_list_index")


class OfflineFailure(enum.StrEnum):
    """Why a compact token is not valid offline."""

    BAD_SIGNATURE = "BAD_SIGNATURE"  # also: not a token we could have made
    UNKNOWN_ISSUER = "UNKNOWN_ISSUER"
    UNKNOWN_KEY = "UNKNOWN_KEY"
    NOT_YET_VALID = "NOT_YET_VALID"
    EXPIRED = "EXPIRED"
    SUSPENDED = "SUSPENDED"
    REVOKED = "REVOKED"
    # The status cannot be checked: no (validly signed) status list of the issuer covers it.
    STATUS_UNKNOWN = "STATUS_UNKNOWN"
    # The cached status list is past its valid_until: fetch a fresh one.
    STATUS_LIST_EXPIRED = "STATUS_LIST_EXPIRED"
    # Validly signed, but for someone else than the party presenting it (a replay).
    HOLDER_MISMATCH = "HOLDER_MISMATCH"
    # Foreign certificates (foreign.py): the issuer is not (or no longer) in the trust list,
    # the type is outside its scope, its entry is past not_after, or the trust list held is
    # past its valid_until.
    ISSUER_NOT_TRUSTED = "ISSUER_NOT_TRUSTED"
    TYPE_NOT_IN_SCOPE = "TYPE_NOT_IN_SCOPE"
    ISSUER_TRUST_EXPIRED = "ISSUER_TRUST_EXPIRED"
    TRUST_LIST_EXPIRED = "TRUST_LIST_EXPIRED"


# ---------------------------------------------------------------- keys


@dataclasses.dataclass(frozen=True)
class IssuerKey:
    kid: str
    issuer: str  # agencies/{code}, or issuers/{id} for a trusted foreign issuer's key
    public_key: Ed25519PublicKey


def load_keys(jwks_json: str) -> dict[str, IssuerKey]:
    """The Ed25519 keys of a JWK set (as ListIssuerKeys publishes it), by key id. Keys that
    are not Ed25519 signing keys with an issuer are skipped."""
    out: dict[str, IssuerKey] = {}
    for jwk in json.loads(jwks_json).get("keys", []):
        if not isinstance(jwk, dict) or jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
            continue
        kid, issuer = jwk.get("kid"), jwk.get("issuer")
        if not isinstance(kid, str) or not isinstance(issuer, str) or "d" in jwk:
            continue
        try:
            key = OKPAlgorithm.from_jwk(json.dumps(jwk))
        except Exception:  # a malformed key verifies nothing
            continue
        if isinstance(key, Ed25519PublicKey):
            out[kid] = IssuerKey(kid=kid, issuer=issuer, public_key=key)
    return out


# ---------------------------------------------------------------- status lists


def list_size(slots_used: int) -> int:
    """Bits in a list holding ``slots_used`` slots: the W3C minimum, else whole bytes."""
    return max(STATUS_LIST_MIN_BITS, -(-slots_used // 8) * 8)


def encode_bits(indices: Iterable[int], size: int) -> str:
    """The W3C ``encodedList``: ``u`` + base64url(GZIP(bitstring)) with the given bits set."""
    bits = bytearray(size // 8)
    for i in indices:
        if not 0 <= i < size:
            raise ValueError(f"index {i} outside a list of {size} bits")
        bits[i // 8] |= 0x80 >> (i % 8)
    # mtime=0: the same bits always compress to the same bytes, so the signature is stable.
    return "u" + domain.b64url(gzip.compress(bytes(bits), mtime=0))


def decode_bits(encoded: str) -> bytes:
    if not encoded.startswith("u"):
        raise ValueError("not a multibase base64url string")
    # A 131072-bit list is 16 KiB; stop inflating past a sane bound (no gzip bombs).
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        data = inflater.decompress(domain.b64url_decode(encoded[1:]), MAX_LIST_BYTES + 1)
    except zlib.error as exc:
        raise ValueError("status list is not GZIP data") from exc
    if len(data) > MAX_LIST_BYTES or not inflater.eof:
        raise ValueError("status list too large or truncated")
    return data


def bit_set(bits: bytes, index: int) -> bool:
    if not 0 <= index < len(bits) * 8:
        raise IndexError(index)
    return bool(bits[index // 8] & (0x80 >> (index % 8)))


def status_list_payload(*, issuer: str, revoked: Iterable[int], suspended: Iterable[int],
                        slots_used: int, issued: dt.datetime, kid: str,
                        ttl: dt.timedelta = STATUS_LIST_TTL) -> dict[str, Any]:
    """The object an issuer signs to publish its status lists."""
    size = list_size(slots_used)
    issued = domain.whole_seconds(issued)
    return {
        "issuer": issuer,
        "revocation_list": encode_bits(revoked, size),
        "suspension_list": encode_bits(suspended, size),
        "size": size,
        "issued_time": domain.format_time(issued),
        "valid_until": domain.format_time(issued + ttl),
        "kid": kid,
    }


@dataclasses.dataclass(frozen=True)
class StatusList:
    """A status list whose signature has been checked."""

    issuer: str
    revoked: bytes
    suspended: bytes
    issued_time: dt.datetime
    valid_until: dt.datetime
    kid: str


def read_status_list(signed_payload: str, signature: str,
                     keys: Mapping[str, IssuerKey]) -> StatusList:
    """Checks a published status list against the issuers' keys; ValueError says why not."""
    payload = signed_payload.encode()
    try:
        doc = json.loads(payload)
        kid, issuer = doc["kid"], doc["issuer"]
    except (ValueError, TypeError, KeyError) as exc:
        raise ValueError("not a status list") from exc
    key = keys.get(kid) if isinstance(kid, str) else None
    if key is None:
        raise ValueError(f"status list signed by unknown key {kid!r}")
    if key.issuer != issuer:
        raise ValueError(f"status list of {issuer} signed by a key of {key.issuer}")
    if not domain.signature_ok(key.public_key, payload, signature):
        raise ValueError("status list signature does not verify")
    try:
        revoked, suspended = decode_bits(doc["revocation_list"]), decode_bits(doc["suspension_list"])
        issued, until = domain.parse_time(doc["issued_time"]), domain.parse_time(doc["valid_until"])
    except (ValueError, TypeError, KeyError) as exc:
        raise ValueError(f"malformed status list: {exc}") from exc
    if issued is None or until is None:
        raise ValueError("status list without its times")
    size = doc.get("size")
    if size != len(revoked) * 8 or size != len(suspended) * 8:
        raise ValueError("status list size does not match its bits")
    return StatusList(issuer=issuer, revoked=revoked, suspended=suspended,
                      issued_time=issued, valid_until=until, kid=kid)


# ---------------------------------------------------------------- compact tokens


def compact_claims(signed_payload: Mapping[str, Any]) -> dict[str, Any]:
    """The claims of a compact token, from a certificate's signed payload."""
    return {k: signed_payload[k] for k in COMPACT_CLAIMS if k in signed_payload}


def make_compact(private_key: Ed25519PrivateKey, kid: str, claims: Mapping[str, Any]) -> str:
    """JWS compact serialisation (EdDSA) of the canonical claims. Ed25519 is deterministic,
    so the same certificate always yields the same token."""
    header = domain.b64url(domain.canonical({"alg": ALG, "kid": kid, "typ": COMPACT_TYP}))
    body = domain.b64url(domain.canonical(claims))
    signing_input = f"{header}.{body}".encode()
    return f"{header}.{body}.{domain.sign(private_key, signing_input)}"


@dataclasses.dataclass(frozen=True)
class ParsedToken:
    kid: str
    claims: dict[str, Any]
    signing_input: bytes
    signature: str


def parse_compact(token: str) -> ParsedToken:
    """Splits and decodes a compact token without trusting it; ValueError when malformed."""
    parts = token.strip().split(".")
    if len(parts) != 3:
        raise ValueError("a compact token has three dot-separated parts")
    try:
        header = json.loads(domain.b64url_decode(parts[0]))
        claims = json.loads(domain.b64url_decode(parts[1]))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError("token header or payload is not base64url JSON") from exc
    if not isinstance(header, dict) or header.get("alg") != ALG:
        raise ValueError("token algorithm is not EdDSA")
    kid = header.get("kid")
    if not isinstance(kid, str) or not isinstance(claims, dict):
        raise ValueError("token has no key id or no claims")
    return ParsedToken(kid=kid, claims=claims, signing_input=f"{parts[0]}.{parts[1]}".encode(),
                       signature=parts[2])


@dataclasses.dataclass(frozen=True)
class OfflineResult:
    failures: list[OfflineFailure]
    claims: dict[str, Any]

    @property
    def valid(self) -> bool:
        return not self.failures


def verify_compact(token: str, keys: Mapping[str, IssuerKey],
                   status_lists: Mapping[str, StatusList], *, now: dt.datetime,
                   allow_stale_status: bool = False, holder: str | None = None) -> OfflineResult:
    """Every reason ``token`` is not a valid certificate at ``now``, given the issuers' keys
    and their (already signature-checked) status lists by issuer; empty when valid.

    A token proves only that the issuer said something about its ``holder``: whoever shows
    it must also be that holder. Pass ``holder`` (the person or organisation presenting it,
    as established by the verifier) and a token of anyone else is HOLDER_MISMATCH."""
    try:
        parsed = parse_compact(token)
    except ValueError:
        return OfflineResult([OfflineFailure.BAD_SIGNATURE], {})
    claims = parsed.claims
    failures: list[OfflineFailure] = []
    key = keys.get(parsed.kid)
    if key is None:
        failures.append(OfflineFailure.UNKNOWN_KEY)
    elif not domain.signature_ok(key.public_key, parsed.signing_input, parsed.signature):
        failures.append(OfflineFailure.BAD_SIGNATURE)
    issuer = claims.get("issuer")
    # A key of agency A vouches for nothing agency B says; an agency none of the keys
    # belongs to is not an issuer this verifier knows.
    if (not isinstance(issuer, str) or (key is not None and key.issuer != issuer)
            or issuer not in {k.issuer for k in keys.values()}):
        failures.append(OfflineFailure.UNKNOWN_ISSUER)
    try:
        valid_from = domain.parse_time(claims.get("valid_from"))
        valid_until = domain.parse_time(claims.get("valid_until"))
    except (ValueError, TypeError):
        return OfflineResult([*failures, OfflineFailure.BAD_SIGNATURE], claims)
    if valid_from is not None and now < valid_from:
        failures.append(OfflineFailure.NOT_YET_VALID)
    if valid_until is not None and now >= valid_until:
        failures.append(OfflineFailure.EXPIRED)
    failures.extend(status_failures(claims, issuer, status_lists, now, allow_stale_status))
    if holder is not None and claims.get("holder") != holder:
        failures.append(OfflineFailure.HOLDER_MISMATCH)
    return OfflineResult(failures, claims)


def status_failures(claims: Mapping[str, Any], issuer: object,
                     status_lists: Mapping[str, StatusList], now: dt.datetime,
                     allow_stale: bool) -> list[OfflineFailure]:
    index = claims.get("status_list_index")
    sl = status_lists.get(issuer) if isinstance(issuer, str) else None
    if sl is None or not isinstance(index, int) or isinstance(index, bool):
        return [OfflineFailure.STATUS_UNKNOWN]
    out: list[OfflineFailure] = []
    if now >= sl.valid_until and not allow_stale:
        out.append(OfflineFailure.STATUS_LIST_EXPIRED)
    try:
        if bit_set(sl.revoked, index):
            out.append(OfflineFailure.REVOKED)
        elif bit_set(sl.suspended, index):
            out.append(OfflineFailure.SUSPENDED)
    except IndexError:
        out.append(OfflineFailure.STATUS_UNKNOWN)
    return out


def load_status_lists(documents: Iterable[Mapping[str, Any]],
                      keys: Mapping[str, IssuerKey]) -> tuple[dict[str, StatusList], list[str]]:
    """Checks each saved status list (``signed_payload`` and ``signature``); returns the good
    ones by issuer (the newest per issuer) and a note for each one rejected."""
    good: dict[str, StatusList] = {}
    problems: list[str] = []
    for doc in documents:
        try:
            sl = read_status_list(str(doc.get("signed_payload", "")), str(doc.get("signature", "")),
                                  keys)
        except ValueError as exc:
            problems.append(f"{doc.get('issuer', '?')}: {exc}")
            continue
        if sl.issuer not in good or good[sl.issuer].issued_time < sl.issued_time:
            good[sl.issuer] = sl
    return good, problems


# ---------------------------------------------------------------- the verify command

_FAILURE_TEXT = {
    OfflineFailure.BAD_SIGNATURE: "bad signature (or not a Govflow certificate token)",
    OfflineFailure.UNKNOWN_ISSUER: "unknown issuer (the signing key is not the issuer's)",
    OfflineFailure.UNKNOWN_KEY: "unknown issuer key (not in the keys file)",
    OfflineFailure.NOT_YET_VALID: "not yet valid",
    OfflineFailure.EXPIRED: "expired",
    OfflineFailure.SUSPENDED: "suspended",
    OfflineFailure.REVOKED: "revoked",
    OfflineFailure.STATUS_UNKNOWN: "status unknown (no valid status list of the issuer covers it)",
    OfflineFailure.STATUS_LIST_EXPIRED: "status list out of date (past its valid_until; fetch it again)",
    OfflineFailure.HOLDER_MISMATCH: "held by someone else than the one presenting it",
    OfflineFailure.ISSUER_NOT_TRUSTED: "issuer not in the trust list (never listed, or removed)",
    OfflineFailure.TYPE_NOT_IN_SCOPE: "certificate type outside the issuer's scope in the trust list",
    OfflineFailure.ISSUER_TRUST_EXPIRED: "the issuer's recognition has ended (trust-list not_after)",
    OfflineFailure.TRUST_LIST_EXPIRED: "trust list out of date (past its valid_until; fetch it again)",
}


def status_lists_document(lists: Iterable[Mapping[str, Any]], fetched: dt.datetime) -> dict[str, Any]:
    """The saved form of fetched status lists (what ``govflow trust-bundle`` writes)."""
    return {"fetched_time": domain.format_time(fetched),
            "status_lists": [{"issuer": sl["issuer"], "key_id": sl["key_id"],
                              "signed_payload": sl["signed_payload"],
                              "signature": sl["signature"]} for sl in lists]}


def verify_report(token: str, keys_json: str, status_lists_json: str, *, now: dt.datetime,
                  allow_stale_status: bool = False, holder: str | None = None,
                  trust_list_json: str = "") -> tuple[bool, list[str]]:
    """What ``govflow verify`` prints: the verdict first, then every failure reason, then
    notes about rejected status lists. Inputs are the texts of the token and the files: a
    foreign issuer's token (``issuers/{id}``) is checked against the trust list
    (``trust_list_json``, as ``govflow trust-bundle`` saves it) and that issuer's own status
    list, whose signature its trust-list keys check."""
    # foreign.py builds on this module, so it is imported here, not at the top.
    from services.certificates import foreign

    keys = load_keys(keys_json)
    docs = json.loads(status_lists_json).get("status_lists", []) if status_lists_json else []
    trust_docs = json.loads(trust_list_json).get("trust_lists", []) if trust_list_json else []
    trust, problems = foreign.newest_trust_list(trust_docs, keys)
    problems = [f"trust list rejected: {p}" for p in problems]
    local = [d for d in docs if not foreign.is_foreign(d.get("issuer"))]
    lists, rejected = load_status_lists(local, keys)
    problems += [f"status list rejected: {p}" for p in rejected]
    try:
        issuer = parse_compact(token).claims.get("issuer")
    except ValueError:
        issuer = None
    if foreign.is_foreign(issuer):
        assert isinstance(issuer, str)
        entry = trust.issuers.get(issuer) if trust is not None else None
        own: StatusList | None = None
        for d in docs:
            if entry is None or d.get("issuer") != issuer:
                continue
            try:
                sl = foreign.read_issuer_status_list(str(d.get("signed_payload", "")),
                                                     str(d.get("signature", "")), entry)
            except ValueError as exc:
                problems.append(f"status list rejected: {issuer}: {exc}")
                continue
            if own is None or own.issued_time < sl.issued_time:
                own = sl
        failures, claims = foreign.check_token(
            token, entry, own, now=now, allow_stale=allow_stale_status, holder=holder,
            trust_list_valid_until=trust.valid_until if trust is not None else None)
        result = OfflineResult(foreign.ordered(failures), claims)
        if trust is not None:
            problems.insert(0, f"trust list version {trust.version}")
    else:
        result = verify_compact(token, keys, lists, now=now,
                                allow_stale_status=allow_stale_status, holder=holder)
    c = result.claims
    about = (f"{c.get('id', '?')} ({c.get('type', '?')}) held by {c.get('holder', '?')}, "
             f"issued by {c.get('issuer', '?')}") if c else "token"
    lines = [f"valid: {about}" if result.valid else f"INVALID: {about}"]
    lines += [f"  - {f.value}: {_FAILURE_TEXT[f]}" for f in result.failures]
    lines += [f"  note: {p}" for p in problems]
    return result.valid, lines
