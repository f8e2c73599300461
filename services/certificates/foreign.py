"""Certificates issued outside the platform (湾区通, issue 27): the trust list of foreign
issuers, and the checks a foreign certificate passes, online and offline.

Pure functions (no gRPC, no database), like ``offline.py``: the service uses them when a
holder imports a certificate and on every VerifyCertificate of one, and ``govflow verify``
uses them with a trust list carried offline.

* A **trusted issuer** (``issuers/{id}``) is an authority outside Govflow, e.g. Hong Kong's
  Immigration Department. An administrator lists it with its public Ed25519 keys (JWKs by
  ``kid``), where it publishes its status list, the certificate types it may issue (its
  scope) and the time its recognition ends (``not_after``).
* The **trust list** is every listed issuer at one version, signed like a status list: the
  RFC 8785 canonical JSON of ``type``, ``version``, ``issued_time``, ``valid_until``,
  ``kid`` and ``issuers``, Ed25519-signed by the platform's key (agency ``govflow`` in
  ``ListIssuerKeys``). Every change makes the next version; an offline verifier keeps the
  newest version it holds, so an older list (one still naming a removed issuer) cannot be
  passed off on it.
* A **foreign certificate** is the issuer's compact token in Govflow's own format (JWS,
  EdDSA, header ``kid``; claims ``id``, ``type``, ``holder``, ``issuer`` = ``issuers/{id}``,
  ``fields``, ``valid_from``, ``valid_until``, ``status_list_index``), and its status is the
  issuer's own signed status list (same format as Govflow's, ``issuer`` = ``issuers/{id}``,
  signed by one of its listed keys). Nothing is fetched from outside: the list reaches Govflow
  through an administrator (PublishIssuerStatusList), and offline verifiers through
  ``govflow trust-bundle``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from services.certificates import domain, offline
from services.certificates.offline import IssuerKey, OfflineFailure, StatusList

ISSUER_PREFIX = "issuers/"
TYPE_PREFIX = "certificateTypes/"
# The platform's own key signs the trust list: the issuer-key machinery's agency "govflow"
# (published in ListIssuerKeys as agencies/govflow), which issues no certificate type.
PLATFORM_AGENCY = domain.PLATFORM_AGENCY
PLATFORM_ISSUER = f"agencies/{PLATFORM_AGENCY}"
TRUST_LIST_TYPE = "govflow-trust-list"
# Like a status list: an offline verifier refreshes it at least this often, so a removal
# reaches it within this time (``--allow-stale`` accepts an older one).
TRUST_LIST_TTL = offline.STATUS_LIST_TTL
MAX_KEYS = 10
MAX_TYPES = 100

_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
_JURISDICTION = re.compile(r"[A-Z0-9]{2,8}")
_TYPE_CODE = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")


@dataclasses.dataclass(frozen=True)
class TrustedIssuer:
    """One entry of the trust list."""

    issuer: str  # issuers/{id}
    display_name: str
    jurisdiction: str
    jwks_json: str  # {"keys": [...]}: public Ed25519 JWKs, each with its kid
    status_list_location: str
    certificate_types: tuple[str, ...]  # certificateTypes/{code}
    not_after: dt.datetime
    added_by: str = ""
    add_time: dt.datetime | None = None
    version: int = 0


def is_foreign(issuer: object) -> bool:
    """True for ``issuers/{id}``: an issuer outside the platform (Govflow's own issuers are
    agencies, stored by bare code)."""
    return isinstance(issuer, str) and issuer.startswith(ISSUER_PREFIX)


def issuer_problem(name: str) -> str | None:
    if not name.startswith(ISSUER_PREFIX) or not _ID.fullmatch(name.removeprefix(ISSUER_PREFIX)):
        return "must be issuers/{id} (lower-case letters, digits and dashes)"
    return None


def public_keys(entry: TrustedIssuer) -> dict[str, IssuerKey]:
    """The entry's keys by kid, each belonging to the entry's issuer."""
    try:
        doc = json.loads(entry.jwks_json)
    except ValueError:
        return {}
    keys = [dict(k, issuer=entry.issuer) for k in doc.get("keys", []) if isinstance(k, dict)]
    return offline.load_keys(json.dumps({"keys": keys}))


def normalise_jwks(jwks_json: str) -> tuple[str, str | None]:
    """(the canonical JWK set with only public members, why it is refused or None)."""
    try:
        doc = json.loads(jwks_json)
    except (ValueError, RecursionError):  # RecursionError: JSON nested too deep
        return "", "must be a JWK set as JSON"
    raw = doc.get("keys") if isinstance(doc, dict) else None
    if not isinstance(raw, list) or not raw:
        return "", 'must be a JWK set {"keys": [...]} with at least one key'
    if len(raw) > MAX_KEYS:
        return "", f"at most {MAX_KEYS} keys"
    out: list[dict[str, str]] = []
    kids: set[str] = set()
    for jwk in raw:
        if not isinstance(jwk, dict) or "d" in jwk:
            return "", "public keys only (no private member d)"
        kid = jwk.get("kid")
        if not isinstance(kid, str) or not kid.strip() or len(kid) > 128:
            return "", "every key needs a kid (at most 128 characters)"
        if kid in kids:
            return "", f"duplicate kid {kid!r}"
        kids.add(kid)
        if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519" or not isinstance(jwk.get("x"), str):
            return "", "only Ed25519 keys (kty OKP, crv Ed25519) are accepted"
        key = {"kty": "OKP", "crv": "Ed25519", "x": jwk["x"], "kid": kid, "alg": "EdDSA",
               "use": "sig"}
        if not offline.load_keys(json.dumps({"keys": [dict(key, issuer="issuers/x")]})):
            return "", f"key {kid!r} is not a valid Ed25519 public key"
        out.append(key)
    return json.dumps({"keys": out}, sort_keys=True), None


def entry_problems(entry: TrustedIssuer, now: dt.datetime,
                   prefix: str = "trusted_issuer") -> dict[str, str]:
    """Every problem with an entry an administrator submits, keyed by field path."""
    out: dict[str, str] = {}
    bad_name = issuer_problem(entry.issuer)
    if bad_name:
        out[f"{prefix}.name"] = bad_name
    if not entry.display_name.strip():
        out[f"{prefix}.display_name"] = "required"
    if not _JURISDICTION.fullmatch(entry.jurisdiction):
        out[f"{prefix}.jurisdiction"] = "required: 2 to 8 upper-case letters or digits, e.g. HK, MO"
    _, bad_keys = normalise_jwks(entry.jwks_json)
    if bad_keys:
        out[f"{prefix}.jwks_json"] = bad_keys
    if not entry.status_list_location.strip():
        out[f"{prefix}.status_list_location"] = "required: where the issuer publishes its status list"
    if not entry.certificate_types:
        out[f"{prefix}.certificate_types"] = "at least one certificate type (its scope)"
    elif len(entry.certificate_types) > MAX_TYPES:
        out[f"{prefix}.certificate_types"] = f"at most {MAX_TYPES}"
    for i, t in enumerate(entry.certificate_types):
        if not t.startswith(TYPE_PREFIX) or not _TYPE_CODE.fullmatch(t.removeprefix(TYPE_PREFIX)):
            out[f"{prefix}.certificate_types[{i}]"] = "must be certificateTypes/{code}"
    if len(set(entry.certificate_types)) != len(entry.certificate_types):
        out[f"{prefix}.certificate_types"] = "names a type twice"
    if entry.not_after <= now:
        out[f"{prefix}.not_after"] = "must be in the future"
    return out


# ---------------------------------------------------------------- the signed trust list


def entry_document(entry: TrustedIssuer) -> dict[str, Any]:
    """An entry as the signed trust list carries it."""
    return {"issuer": entry.issuer, "display_name": entry.display_name,
            "jurisdiction": entry.jurisdiction,
            "keys": json.loads(entry.jwks_json).get("keys", []),
            "status_list_location": entry.status_list_location,
            "certificate_types": sorted(entry.certificate_types),
            "not_after": domain.format_time(entry.not_after), "added_by": entry.added_by}


def trust_list_payload(*, version: int, issuers: Sequence[TrustedIssuer], issued: dt.datetime,
                       kid: str, ttl: dt.timedelta = TRUST_LIST_TTL) -> dict[str, Any]:
    """What the platform signs: every listed issuer at ``version``."""
    return {"type": TRUST_LIST_TYPE, "version": version,
            "issued_time": domain.format_time(issued),
            "valid_until": domain.format_time(issued + ttl), "kid": kid,
            "issuers": [entry_document(e) for e in sorted(issuers, key=lambda e: e.issuer)]}


@dataclasses.dataclass(frozen=True)
class TrustList:
    """A trust list whose signature has been checked."""

    version: int
    issued_time: dt.datetime
    valid_until: dt.datetime
    kid: str
    issuers: Mapping[str, TrustedIssuer]


def read_trust_list(signed_payload: str, signature: str,
                    keys: Mapping[str, IssuerKey]) -> TrustList:
    """Checks a signed trust list against the platform's key (from the issuer keys);
    ValueError says why not."""
    payload = signed_payload.encode()
    try:
        doc = json.loads(payload)
        kid, version = doc["kid"], doc["version"]
        if doc["type"] != TRUST_LIST_TYPE:
            raise ValueError("not a trust list")
    except (ValueError, TypeError, KeyError) as exc:
        raise ValueError("not a trust list") from exc
    key = keys.get(kid) if isinstance(kid, str) else None
    if key is None:
        raise ValueError(f"trust list signed by unknown key {kid!r}")
    if key.issuer != PLATFORM_ISSUER:
        raise ValueError(f"trust list signed by a key of {key.issuer}, not the platform's")
    if not domain.signature_ok(key.public_key, payload, signature):
        raise ValueError("trust list signature does not verify")
    try:
        issued, until = domain.parse_time(doc["issued_time"]), domain.parse_time(doc["valid_until"])
        entries = {}
        for e in doc["issuers"]:
            not_after = domain.parse_time(e["not_after"])
            if not_after is None:
                raise ValueError("entry without not_after")
            entries[e["issuer"]] = TrustedIssuer(
                issuer=e["issuer"], display_name=e["display_name"], jurisdiction=e["jurisdiction"],
                jwks_json=json.dumps({"keys": e["keys"]}),
                status_list_location=e["status_list_location"],
                certificate_types=tuple(e["certificate_types"]), not_after=not_after,
                added_by=e.get("added_by", ""))
    except (ValueError, TypeError, KeyError) as exc:
        raise ValueError(f"malformed trust list: {exc}") from exc
    if issued is None or until is None or not isinstance(version, int):
        raise ValueError("trust list without its times or version")
    return TrustList(version=version, issued_time=issued, valid_until=until, kid=kid,
                     issuers=entries)


def newest_trust_list(documents: Sequence[Mapping[str, Any]],
                      keys: Mapping[str, IssuerKey]) -> tuple[TrustList | None, list[str]]:
    """The newest (highest version) validly signed trust list of ``documents`` (each with
    ``signed_payload`` and ``signature``), and a note for each one rejected."""
    best: TrustList | None = None
    problems: list[str] = []
    for doc in documents:
        try:
            tl = read_trust_list(str(doc.get("signed_payload", "")), str(doc.get("signature", "")),
                                 keys)
        except ValueError as exc:
            problems.append(str(exc))
            continue
        if best is None or tl.version > best.version:
            best = tl
    return best, problems


def read_issuer_status_list(signed_payload: str, signature: str,
                            entry: TrustedIssuer) -> StatusList:
    """A trusted issuer's own status list, checked against its listed keys; ValueError says
    why not (also when it is another issuer's)."""
    sl = offline.read_status_list(signed_payload, signature, public_keys(entry))
    if sl.issuer != entry.issuer:
        raise ValueError(f"status list of {sl.issuer}, not of {entry.issuer}")
    return sl


# ---------------------------------------------------------------- checking a certificate


def check_token(token: str, entry: TrustedIssuer | None, status_list: StatusList | None, *,
                now: dt.datetime, trust_list_valid_until: dt.datetime | None = None,
                allow_stale: bool = False,
                holder: str | None = None) -> tuple[list[OfflineFailure], dict[str, Any]]:
    """Every reason the foreign ``token`` is not a valid certificate at ``now``, given its
    issuer's trust-list entry (None: not listed) and that issuer's checked status list (None:
    none held), with its claims. Online, the entry is the current database row; offline, the
    entry of the newest trust list held (``trust_list_valid_until`` its end)."""
    try:
        parsed = offline.parse_compact(token)
    except (ValueError, RecursionError):  # RecursionError: JSON nested too deep
        return [OfflineFailure.BAD_SIGNATURE], {}
    claims = parsed.claims
    failures: list[OfflineFailure] = []
    if entry is None or claims.get("issuer") != entry.issuer:
        failures.append(OfflineFailure.ISSUER_NOT_TRUSTED)
    else:
        key = public_keys(entry).get(parsed.kid)
        if key is None:
            failures.append(OfflineFailure.UNKNOWN_KEY)
        elif not domain.signature_ok(key.public_key, parsed.signing_input, parsed.signature):
            failures.append(OfflineFailure.BAD_SIGNATURE)
        if claims.get("type") not in entry.certificate_types:
            failures.append(OfflineFailure.TYPE_NOT_IN_SCOPE)
        if now >= entry.not_after:
            failures.append(OfflineFailure.ISSUER_TRUST_EXPIRED)
        if trust_list_valid_until is not None and now >= trust_list_valid_until \
                and not allow_stale:
            failures.append(OfflineFailure.TRUST_LIST_EXPIRED)
    try:
        valid_from = domain.parse_time(claims.get("valid_from"))
        valid_until = domain.parse_time(claims.get("valid_until"))
    except (ValueError, TypeError):
        return [*failures, OfflineFailure.BAD_SIGNATURE], claims
    if valid_from is not None and now < valid_from:
        failures.append(OfflineFailure.NOT_YET_VALID)
    if valid_until is not None and now >= valid_until:
        failures.append(OfflineFailure.EXPIRED)
    if entry is not None:
        lists = {entry.issuer: status_list} if status_list is not None else {}
        failures.extend(offline.status_failures(claims, claims.get("issuer"), lists, now,
                                                allow_stale))
    if holder is not None and claims.get("holder") != holder:
        failures.append(OfflineFailure.HOLDER_MISMATCH)
    return failures, claims


# The order a refusal names its reason in: the most fundamental first.
_PRIORITY = (OfflineFailure.BAD_SIGNATURE, OfflineFailure.ISSUER_NOT_TRUSTED,
             OfflineFailure.UNKNOWN_KEY, OfflineFailure.TYPE_NOT_IN_SCOPE,
             OfflineFailure.ISSUER_TRUST_EXPIRED, OfflineFailure.HOLDER_MISMATCH,
             OfflineFailure.REVOKED, OfflineFailure.SUSPENDED, OfflineFailure.EXPIRED,
             OfflineFailure.NOT_YET_VALID, OfflineFailure.STATUS_UNKNOWN,
             OfflineFailure.STATUS_LIST_EXPIRED, OfflineFailure.TRUST_LIST_EXPIRED)


def ordered(failures: Sequence[OfflineFailure]) -> list[OfflineFailure]:
    rank = {f: i for i, f in enumerate(_PRIORITY)}
    return sorted(set(failures), key=lambda f: rank.get(f, len(rank)))


def claims_problems(claims: Mapping[str, Any]) -> dict[str, str]:
    """What makes a (validly signed) foreign token's claims unusable as a wallet record."""
    out: dict[str, str] = {}
    ctype = claims.get("type")
    if not isinstance(ctype, str) or not ctype.startswith(TYPE_PREFIX):
        out["token"] = "claim type must be certificateTypes/{code}"
    holder = claims.get("holder")
    if not isinstance(holder, str) or not domain.is_holder_name(holder):
        out["token"] = "claim holder must be persons/{id} or organisations/{id}"
    fields = claims.get("fields")
    if not isinstance(fields, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and len(v) <= domain.MAX_FIELD_VALUE
            for k, v in fields.items()):
        out["token"] = "claim fields must map names to text"
    index = claims.get("status_list_index")
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < 2**31:
        out["token"] = "claim status_list_index must be a whole number"
    if not isinstance(claims.get("id"), str):
        out["token"] = "claim id is required"
    return out
