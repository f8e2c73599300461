"""Figure 5: certificate verification in this process. ``domain.verify`` of one signed
certificate payload (signature, status, validity, issuer trust) against a bare Ed25519
verify of the same bytes, ``verify_iterations`` each per round, the two alternating.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import Any

from benchmarks.params import Params
from benchmarks.stats import ratio, spread


def figure(p: Params, say: Callable[[str], None]) -> dict[str, Any]:
    """Figure 5, in this process: ``domain.verify`` against a bare Ed25519 verify."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from services.certificates import domain

    now = dt.datetime.now(dt.UTC)
    key = Ed25519PrivateKey.generate()
    pub = key.public_key()
    payload = domain.canonical(domain.build_payload(
        certificate_id="0123456789abcdef", type_code="senior-citizen-card",
        holder="persons/0123456789abcdef", issuer_code="sz-cab",
        fields={"holder_name": "Wang Fang", "birth_date": "1958-03-15", "region": "440304"},
        valid_from=now - dt.timedelta(days=1), valid_until=now + dt.timedelta(days=365),
        status_list_index=7, kid="sz-cab.1"))
    signature = domain.sign(key, payload)
    raw = domain.b64url_decode(signature)
    trusted = frozenset({"agencies/sz-cab"})
    assert not domain.verify(payload, signature, pub, status=domain.ACTIVE, now=now,
                             key_issuer="agencies/sz-cab", trusted_issuers=trusted,
                             expected_payload=payload)

    def govflow() -> None:
        domain.verify(payload, signature, pub, status=domain.ACTIVE, now=now,
                      key_issuer="agencies/sz-cab", trusted_issuers=trusted,
                      expected_payload=payload)

    def bare() -> None:
        pub.verify(raw, payload)

    def rate(fn: Callable[[], None]) -> float:
        t0 = time.perf_counter()
        for _ in range(p.verify_iterations):
            fn()
        return p.verify_iterations / (time.perf_counter() - t0)

    g: list[float] = []
    b: list[float] = []
    for r in range(p.rounds):
        for fn, out in (((govflow, g), (bare, b)) if r % 2 == 0 else ((bare, b), (govflow, g))):
            out.append(rate(fn))
    gs, bs = spread(g), spread(b)
    rr = ratio(gs["median"], bs["median"])
    say(f"  certificate verify: domain.verify {gs['median']:.0f}/s, bare Ed25519 "
        f"{bs['median']:.0f}/s")
    return {"unit": "verifications/s", "payload_bytes": len(payload), "govflow": gs,
            "baseline": bs, "ratio": rr, "goal": ">= 0.5", "met": rr >= 0.5}
