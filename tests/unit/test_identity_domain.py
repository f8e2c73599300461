import datetime as dt

import argon2
import pytest

from govflow.errors import InvalidArgument
from services.identity import domain


@pytest.mark.parametrize("good", ["11010519491231002X", "440304195803150026", "440304199007010039"])
def test_valid_id_numbers(good: str) -> None:
    assert domain.id_number_problem(good) is None


@pytest.mark.parametrize("bad,why", [
    ("11010519491231002", "18 characters"),
    ("110105194912310021", "check digit"),
    ("11010519491331002X", "real date"),
    ("11010518491231002X", "plausible"),
    ("1101051949123100AX", "digits"),
])
def test_invalid_id_numbers(bad: str, why: str) -> None:
    problem = domain.id_number_problem(bad)
    assert problem is not None and why in problem


def test_future_birth_date_is_not_plausible() -> None:
    first17 = "11010520990101001"
    value = first17 + domain.id_check_char(first17)
    assert "plausible" in (domain.id_number_problem(value, today=dt.date(2026, 1, 1)) or "")


def test_validate_names_the_field() -> None:
    with pytest.raises(InvalidArgument) as err:
        domain.validate_id_number("123", "person.id_number")
    assert set(err.value.fields) == {"person.id_number"}


@pytest.mark.parametrize("good", ["91440300MA5FLT8K25", "91350100M000100Y43"])
def test_valid_credit_codes(good: str) -> None:
    assert domain.credit_code_problem(good) is None


@pytest.mark.parametrize("bad", ["91440300MA5FLT8K26", "91440300MA5FLT8KI5", "9144030"])
def test_invalid_credit_codes(bad: str) -> None:
    assert domain.credit_code_problem(bad) is not None


def test_mask_keeps_region_and_tail() -> None:
    assert domain.mask_id_number("11010519491231002X") == "1101**********002X"


def test_secret_hash_round_trip() -> None:
    stored = domain.hash_secret("s3cret-pass")
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")  # parameters in the hash
    assert domain.check_secret("s3cret-pass", stored)
    assert not domain.check_secret("s3cret-pasS", stored)
    assert not domain.needs_rehash(stored)


def test_old_hashes_still_verify_and_ask_for_an_upgrade() -> None:
    old = domain.scrypt_hash("s3cret-pass")
    assert old.startswith("scrypt$")
    assert domain.check_secret("s3cret-pass", old)
    assert not domain.check_secret("s3cret-pasS", old)
    assert domain.needs_rehash(old)
    # Weaker argon2 parameters (or argon2i) are upgraded too; junk never verifies.
    weak = argon2.PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash("x" * 8)
    assert domain.check_secret("x" * 8, weak) and domain.needs_rehash(weak)
    for junk in ("", "$argon2id$nonsense", "md5$x$y", "scrypt$!!$??"):
        assert not domain.check_secret("s3cret-pass", junk)


def test_totp_accepts_current_and_adjacent_steps_once() -> None:
    import pyotp

    secret = domain.new_totp_secret()
    totp = pyotp.TOTP(secret)
    now = 1_800_000_000.0
    step = int(now // 30)
    assert domain.totp_step(secret, totp.at(now), last_step=0, now=now) == step
    assert domain.totp_step(secret, totp.at(now - 30), last_step=0, now=now) == step - 1
    assert domain.totp_step(secret, totp.at(now + 30), last_step=0, now=now) == step + 1
    assert domain.totp_step(secret, totp.at(now - 60), last_step=0, now=now) is None
    # A step already used is refused: no replay.
    assert domain.totp_step(secret, totp.at(now), last_step=step, now=now) is None
    for bad in ("", "12345", "1234567", "abcdef"):
        assert domain.totp_step(secret, bad, last_step=0, now=now) is None


def test_totp_uri_names_the_issuer_and_secret() -> None:
    secret = domain.new_totp_secret()
    uri = domain.totp_uri(secret, "4403**********0026")
    assert uri.startswith("otpauth://totp/Govflow:") and f"secret={secret}" in uri
    assert "issuer=Govflow" in uri
