"""Tokens and logins: signing keys (table ``signing_keys``), refresh tokens (table
``refresh_tokens``, by the SHA-256 of the token), failed logins (``login_failures``) and
login rate counts (``login_rates``)."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlmodel import Session, col, select

from govflow import ratelimit
from services.identity.domain import RefreshToken, SigningKey
from services.identity.store.tables import (
    LoginFailureRow,
    LoginRateRow,
    RefreshTokenRow,
    SigningKeyRow,
)


def _key(row: SigningKeyRow) -> SigningKey:
    return SigningKey(kid=row.kid, private_pem=row.private_pem, public_jwk=row.public_jwk,
                      create_time=row.create_time, active=row.active)


# ---------------------------------------------------------------- signing keys


def active_key(s: Session) -> SigningKey | None:
    """The newest active signing key, if there is one."""
    row = s.exec(select(SigningKeyRow).where(SigningKeyRow.active).order_by(
        col(SigningKeyRow.create_time).desc())).first()
    return _key(row) if row is not None else None


def add_active_key(s: Session, *, kid: str, private_pem: str, public_jwk: str) -> SigningKey:
    """Deactivates the other keys and inserts this one, active."""
    for old in s.exec(select(SigningKeyRow).where(SigningKeyRow.active)).all():
        old.active = False
        s.add(old)
    row = SigningKeyRow(kid=kid, private_pem=private_pem, public_jwk=public_jwk)
    s.add(row)
    s.flush()
    return _key(row)


def get_key(s: Session, kid: str) -> SigningKey | None:
    row = s.get(SigningKeyRow, kid)
    return _key(row) if row is not None else None


def retire_key(s: Session, kid: str) -> None:
    row = s.get(SigningKeyRow, kid)
    assert row is not None
    row.retired = True
    s.add(row)


def published_jwks(s: Session) -> list[str]:
    """The public JWKs of every key not retired."""
    return [r.public_jwk for r in s.exec(
        select(SigningKeyRow).where(~col(SigningKeyRow.retired))).all()]


# ---------------------------------------------------------------- refresh tokens


def add_refresh(s: Session, *, token_hash: str, subject: str, claims_json: str,
                expire_time: dt.datetime) -> None:
    s.add(RefreshTokenRow(token_hash=token_hash, subject=subject, claims_json=claims_json,
                          expire_time=expire_time))


def get_refresh(s: Session, token_hash: str) -> RefreshToken | None:
    row = s.get(RefreshTokenRow, token_hash)
    if row is None:
        return None
    return RefreshToken(subject=row.subject, claims_json=row.claims_json,
                        expire_time=row.expire_time, revoked=row.revoked)


def revoke_refresh(s: Session, token_hash: str) -> None:
    row = s.get(RefreshTokenRow, token_hash)
    if row is not None:
        row.revoked = True
        s.add(row)


def revoke_refresh_of(s: Session, subject: str) -> None:
    """Revokes every refresh token of ``subject``."""
    s.execute(sa.update(RefreshTokenRow).where(col(RefreshTokenRow.subject) == subject)
              .values(revoked=True))


# ---------------------------------------------------------------- failed logins and rates


def failures_since(s: Session, key: str, since: dt.datetime) -> int:
    return int(s.exec(select(sa.func.count()).select_from(LoginFailureRow).where(
        LoginFailureRow.key == key, LoginFailureRow.time >= since)).one())


def add_failure(s: Session, key: str) -> None:
    s.add(LoginFailureRow(key=key))


def count_call(s: Session, key: str, *, limit: int, window_seconds: int, what: str) -> None:
    """Counts one login call of ``key``; RESOURCE_EXHAUSTED past ``limit`` (govflow.ratelimit)."""
    ratelimit.hit(s, LoginRateRow, key, limit=limit, window_seconds=window_seconds, what=what)
