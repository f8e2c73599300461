"""Identity rules in plain Python: ID numbers, credit codes, masking, roles, passwords."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib
import hmac
import re
import secrets
import time

import argon2
import pyotp

from govflow.errors import InvalidArgument

# GB 11643-1999: weights of the first 17 digits and the check character by remainder.
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
# GB 32100-2015: the 31-character alphabet (no I, O, S, V, Z) and weights.
_USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)

ROLES = ("acceptor", "reviewer", "approver", "supervisor", "admin")
ASSURANCE_LEVELS = ("account", "real_name", "face")


def id_check_char(first17: str) -> str:
    """The ISO 7064 MOD 11-2 check character of a resident ID's first 17 digits."""
    total = sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11]


def id_number_problem(value: str, *, today: dt.date | None = None) -> str | None:
    """Why ``value`` is not a valid resident ID number, or None when it is."""
    if len(value) != 18:
        return "must be 18 characters"
    if not re.fullmatch(r"\d{17}[\dX]", value):
        return "must be 17 digits and a digit or X"
    try:
        birth = dt.date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return "birth date is not a real date"
    today = today or dt.date.today()
    if birth.year < 1900 or birth > today:
        return "birth date is not plausible"
    if id_check_char(value[:17]) != value[17]:
        return "check digit does not match (GB 11643)"
    return None


def validate_id_number(value: str, field: str = "id_number") -> str:
    value = value.strip().upper()
    problem = id_number_problem(value)
    if problem:
        raise InvalidArgument(f"{field} {problem}", fields={field: problem})
    return value


def birth_date(id_number: str) -> dt.date:
    return dt.date(int(id_number[6:10]), int(id_number[10:12]), int(id_number[12:14]))


def mask_id_number(value: str) -> str:
    """Keeps the region's first four and the last four characters."""
    if len(value) < 8:
        return "*" * len(value)
    return value[:4] + "*" * (len(value) - 8) + value[-4:]


def credit_code_check_char(first17: str) -> str:
    total = sum(_USCC_CHARS.index(c) * w for c, w in zip(first17, _USCC_WEIGHTS, strict=True))
    return _USCC_CHARS[(31 - total % 31) % 31]


def credit_code_problem(value: str) -> str | None:
    """Why ``value`` is not a valid unified social credit code, or None."""
    if len(value) != 18:
        return "must be 18 characters"
    if any(c not in _USCC_CHARS for c in value):
        return "has characters outside the GB 32100 alphabet"
    if not value[2:8].isdigit():
        return "administrative division part must be 6 digits"
    if credit_code_check_char(value[:17]) != value[17]:
        return "check character does not match (GB 32100)"
    return None


def validate_credit_code(value: str, field: str = "credit_code") -> str:
    value = value.strip().upper()
    problem = credit_code_problem(value)
    if problem:
        raise InvalidArgument(f"{field} {problem}", fields={field: problem})
    return value


# Passwords and secrets: argon2id (argon2-cffi), with OWASP's recommended minimum for
# argon2id (19 MiB, 2 passes, 1 lane; about 45 ms, as long as the scrypt it replaces). The
# parameters and salt travel in the PHC string ("$argon2id$v=19$m=19456,t=2,p=1$..."), so
# raising them later upgrades each hash at its owner's next login, like the old scheme.
PASSWORD_HASHER = argon2.PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1,
                                        type=argon2.Type.ID)
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}  # the previous scheme: "scrypt$<salt>$<digest>", base64


def hash_secret(secret: str) -> str:
    """An argon2id hash of ``secret`` in PHC string format."""
    return PASSWORD_HASHER.hash(secret)


def check_secret(secret: str, stored: str) -> bool:
    """Whether ``secret`` matches ``stored``, an argon2id hash or an older scrypt one."""
    if stored.startswith("$argon2"):
        try:
            return PASSWORD_HASHER.verify(stored, secret)
        except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
            return False
    try:
        scheme, salt_b64, digest_b64 = stored.split("$")
        salt = base64.b64decode(salt_b64)
        want = base64.b64decode(digest_b64)
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    got = hashlib.scrypt(secret.encode(), salt=salt, **_SCRYPT)
    return hmac.compare_digest(got, want)


def needs_rehash(stored: str) -> bool:
    """Whether a hash that just verified should be replaced: not argon2id, or weaker
    parameters than today's."""
    if not stored.startswith("$argon2id$"):
        return True
    try:
        return PASSWORD_HASHER.check_needs_rehash(stored)
    except argon2.exceptions.InvalidHashError:
        return True


def scrypt_hash(secret: str) -> str:
    """A hash in the previous scheme; only to test that such hashes still verify and upgrade."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(secret.encode(), salt=salt, **_SCRYPT)
    return "scrypt$" + base64.b64encode(salt).decode() + "$" + base64.b64encode(digest).decode()


def validate_password(password: str) -> None:
    if len(password) < 8:
        raise InvalidArgument("password must be at least 8 characters",
                              fields={"password": "must be at least 8 characters"})


# TOTP second factor (RFC 6238: SHA-1, 6 digits, 30-second steps), as authenticator apps
# expect. pyotp does the arithmetic; we add the one-use rule and clock drift of one step.
TOTP_ISSUER = "Govflow"
TOTP_DRIFT_STEPS = 1


def new_totp_secret() -> str:
    return pyotp.random_base32()


def totp_uri(secret: str, account: str) -> str:
    """The ``otpauth://`` URI an authenticator app scans."""
    return pyotp.TOTP(secret).provisioning_uri(name=account, issuer_name=TOTP_ISSUER)


def totp_step(secret: str, code: str, *, last_step: int, now: float | None = None) -> int | None:
    """The time step ``code`` is valid for (within one step of drift), or None.

    A step at or before ``last_step`` has been used already and is refused, so a code seen
    over someone's shoulder cannot be replayed.
    """
    code = code.strip()
    if not re.fullmatch(r"\d{6}", code):
        return None
    totp = pyotp.TOTP(secret)
    now = time.time() if now is None else now
    current = totp.timecode(dt.datetime.fromtimestamp(now, dt.UTC))
    for step in range(current - TOTP_DRIFT_STEPS, current + TOTP_DRIFT_STEPS + 1):
        if step > last_step and hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


# ---------------------------------------------------------------- records
# What the repository (store/) returns: plain, frozen values, never database rows.


@dataclasses.dataclass(frozen=True)
class Person:
    id: str
    id_number: str
    display_name: str
    assurance_level: str  # account, real_name or face
    password_hash: str
    create_time: dt.datetime
    # The TOTP second factor: the base32 secret (set at enrolment), whether it is confirmed,
    # and the last time step accepted (each step is accepted once).
    totp_secret: str | None
    totp_confirmed: bool
    totp_last_step: int


@dataclasses.dataclass(frozen=True)
class Organisation:
    id: str
    credit_code: str
    display_name: str
    legal_representative: str  # person id
    create_time: dt.datetime


@dataclasses.dataclass(frozen=True)
class Representation:
    """A person may act for an organisation until a time."""

    organisation_id: str
    person_id: str
    expire_time: dt.datetime


@dataclasses.dataclass(frozen=True)
class Agency:
    code: str
    display_name: str
    division_code: str
    level: str  # province, city or county
    parent: str | None  # agency code
    display_name_en: str = ""  # beside display_name (Chinese, the primary name)


@dataclasses.dataclass(frozen=True)
class Official:
    person_id: str
    agency_code: str
    roles: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Partner:
    """A partner system, or one of Govflow's own service accounts (kind ``service``)."""

    client_id: str
    display_name: str
    agency: str | None  # agency code (older rows: with the agencies/ prefix)
    kind: str
    scopes: tuple[str, ...]
    secret_hash: str
    disabled: bool
    create_time: dt.datetime


@dataclasses.dataclass(frozen=True)
class SigningKey:
    """One of identity's token signing keys."""

    kid: str
    private_pem: str
    public_jwk: str
    create_time: dt.datetime
    active: bool  # signs new tokens; inactive keys still verify until retired


@dataclasses.dataclass(frozen=True)
class RefreshToken:
    subject: str
    claims_json: str
    expire_time: dt.datetime
    revoked: bool


# ------------------------------------------------------------------ delegations
# How far ahead a delegation may run: a citizen renews it at least once a year.
MAX_DELEGATION_DAYS = 366
MAX_PURPOSE_CHARS = 200
_MATTER_CODE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


@dataclasses.dataclass(frozen=True)
class Delegation:
    """A grantor's (``persons/{id}`` or ``organisations/{id}``) permission for a partner
    (``partners/{client_id}``) to act for it in ``matters`` (codes) or for ``purposes``
    until ``expire_time``, unless revoked."""

    id: str
    grantor: str
    delegate: str
    matters: tuple[str, ...]
    purposes: tuple[str, ...]
    expire_time: dt.datetime
    create_time: dt.datetime
    revoke_time: dt.datetime | None
    granted_by: str

    @property
    def name(self) -> str:
        return f"{self.grantor}/delegations/{self.id}"

    def live(self, now: dt.datetime) -> bool:
        return self.revoke_time is None and _utc(self.expire_time) > now

    def covers(self, *, matter: str, purpose: str) -> bool:
        """Whether an action in ``matter`` (a code) or for ``purpose`` is within it."""
        return bool(matter and matter in self.matters) or bool(
            purpose and purpose in self.purposes)


@dataclasses.dataclass(frozen=True)
class DelegationUse:
    """One action a partner took under a delegation (the grantor's access record)."""

    id: int
    delegation: str  # the delegation's name
    partner: str
    action: str
    matter: str  # a code, or ""
    purpose: str
    target: str
    time: dt.datetime
    request_id: str


def _utc(t: dt.datetime) -> dt.datetime:
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


def validate_delegation(*, delegate: str, matters: list[str], purposes: list[str],
                        expire_time: dt.datetime | None, now: dt.datetime
                        ) -> tuple[str, tuple[str, ...], tuple[str, ...], dt.datetime]:
    """The delegate's client id, the matter codes, the purposes and the expiry of a new
    delegation; INVALID_ARGUMENT naming every problem."""
    problems: dict[str, str] = {}
    client_id = delegate.removeprefix("partners/")
    if not delegate.startswith("partners/") or not client_id:
        problems["delegation.delegate"] = "must be partners/{client_id}"
    codes = []
    for i, m in enumerate(matters):
        code = m.removeprefix("matters/")
        if not m.startswith("matters/") or not _MATTER_CODE.match(code):
            problems[f"delegation.matters[{i}]"] = "must be matters/{code}"
        codes.append(code)
    for i, p in enumerate(purposes):
        if not p.strip() or len(p) > MAX_PURPOSE_CHARS:
            problems[f"delegation.purposes[{i}]"] = \
                f"must be plain words, at most {MAX_PURPOSE_CHARS} characters"
    if not matters and not purposes:
        problems["delegation.matters"] = "name at least one matter or purpose"
    if expire_time is None:
        problems["delegation.expire_time"] = "required"
    elif expire_time <= now:
        problems["delegation.expire_time"] = "must be in the future"
    elif expire_time > now + dt.timedelta(days=MAX_DELEGATION_DAYS):
        problems["delegation.expire_time"] = f"at most {MAX_DELEGATION_DAYS} days ahead"
    if problems:
        raise InvalidArgument(fields=problems)
    assert expire_time is not None
    return (client_id, tuple(dict.fromkeys(codes)), tuple(dict.fromkeys(purposes)),
            expire_time)
