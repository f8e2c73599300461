"""An example partner client for Govflow (docs/partners.md).

A partner agency's system authenticates with ``private_key_jwt`` (RFC 7523): it keeps an
EC P-256 private key, a Govflow platform admin registers its public JWK (``AddPartnerKey``),
and each token request carries a short-lived assertion signed with that key
(``AuthenticatePartnerWithAssertion``). No shared secret travels.

    python examples/partner_client.py jwk --key partner-key.pem --kid 2026-01
        # prints the public JWK to hand to the platform admin (creates the key if missing)
    python examples/partner_client.py matters --client-id my-agency --key partner-key.pem \\
        --kid 2026-01
        # obtains a token and lists the matter catalogue
    python examples/partner_client.py submit --client-id my-agency --key partner-key.pem \\
        --kid 2026-01 --applicant persons/ID --matter matters/senior-citizen-card
        # submits for a citizen under the delegation the citizen granted this partner
        # (refused, NO_DELEGATION, without one)
    python examples/partner_client.py verify TOKEN_FILE
        # fetches the trust bundle and verifies a compact certificate

Plaintext gRPC, as the embedded stack serves on loopback; a deployment uses TLS.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import pathlib
import sys
import time
import uuid

import grpc
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from govflow.identity.v1 import identity_pb2 as ipb
from govflow.identity.v1 import identity_pb2_grpc
from govflow.matters.v1 import matters_pb2 as mpb
from govflow.matters.v1 import matters_pb2_grpc
from services.certificates import offline, offline_cli

# Govflow's token issuer: the `aud` every assertion must carry.
AUDIENCE = "govflow-identity"
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# Govflow accepts at most 300 s; a minute leaves room for clock skew.
ASSERTION_LIFETIME = 60


def generate_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def load_or_create_key(path: pathlib.Path) -> ec.EllipticCurvePrivateKey:
    """The PEM private key at ``path``, made (mode 600) when the file does not exist."""
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{path} is not an EC private key")
        return key
    key = generate_key()
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    path.chmod(0o600)
    return key


def public_jwk(key: ec.EllipticCurvePrivateKey, kid: str) -> str:
    """The public half as a JWK (JSON) with its key id: what AddPartnerKey registers."""
    jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    jwk.update(kid=kid, alg="ES256", use="sig")
    return json.dumps(jwk)


def client_assertion(client_id: str, key: ec.EllipticCurvePrivateKey, kid: str, *,
                     audience: str = AUDIENCE, lifetime: int = ASSERTION_LIFETIME) -> str:
    """A fresh RFC 7523 client assertion: iss = sub = the client id, a new jti each time
    (Govflow accepts each jti once)."""
    now = int(time.time())
    claims = {"iss": client_id, "sub": client_id, "aud": audience, "iat": now,
              "exp": now + lifetime, "jti": uuid.uuid4().hex}
    return jwt.encode(claims, key, algorithm="ES256", headers={"kid": kid})


async def get_token(identity: grpc.aio.Channel, client_id: str,
                    key: ec.EllipticCurvePrivateKey, kid: str) -> str:
    """An access token for the partner (valid 15 minutes by default)."""
    stub = identity_pb2_grpc.IdentityServiceStub(identity)
    resp = await stub.AuthenticatePartnerWithAssertion(ipb.AuthenticatePartnerWithAssertionRequest(
        client_assertion_type=JWT_BEARER,
        client_assertion=client_assertion(client_id, key, kid)))
    return str(resp.tokens.access_token)


def bearer(token: str) -> tuple[tuple[str, str]]:
    return (("authorization", f"Bearer {token}"),)


async def list_matters(matters: grpc.aio.Channel, token: str) -> list[str]:
    """Names of every published matter in the catalogue, page by page."""
    stub = matters_pb2_grpc.MattersServiceStub(matters)
    names: list[str] = []
    page = ""
    while True:
        resp = await stub.ListMatters(mpb.ListMattersRequest(page_size=100, page_token=page),
                                      metadata=bearer(token))
        names += [m.name for m in resp.matters]
        page = resp.next_page_token
        if not page:
            return names


async def my_delegations(identity: grpc.aio.Channel, client_id: str,
                         token: str) -> list[ipb.Delegation]:
    """The live delegations citizens and organisations granted this partner (who, which
    matters, until when)."""
    stub = identity_pb2_grpc.IdentityServiceStub(identity)
    found: list[ipb.Delegation] = []
    page = ""
    while True:
        resp = await stub.ListDelegations(ipb.ListDelegationsRequest(
            parent=f"partners/{client_id}", page_size=100, page_token=page),
            metadata=bearer(token))
        found += list(resp.delegations)
        page = resp.next_page_token
        if not page:
            return found


class NoDelegation(Exception):
    """The applicant has not (or no longer) delegated this matter to this partner."""


async def submit_for(matters: grpc.aio.Channel, token: str, *, applicant: str, matter: str,
                     request_id: str = "") -> mpb.Application:
    """Submits an application for ``applicant`` (``persons/...`` or ``organisations/...``).
    Allowed only under a live delegation the applicant granted this partner for
    ``matter``; otherwise Govflow answers PERMISSION_DENIED with reason NO_DELEGATION and
    records nothing. Keep ``request_id`` for retries: a retry returns the same application."""
    stub = matters_pb2_grpc.MattersServiceStub(matters)
    try:
        resp = await stub.SubmitApplication(mpb.SubmitApplicationRequest(
            matter=matter, applicant=applicant, request_id=request_id or uuid.uuid4().hex),
            metadata=bearer(token))
    except grpc.aio.AioRpcError as err:
        if err.code() == grpc.StatusCode.PERMISSION_DENIED and _reason(err) == "NO_DELEGATION":
            raise NoDelegation(err.details() or "no delegation") from err
        raise
    return resp.application


def _reason(err: grpc.aio.AioRpcError) -> str:
    """The ErrorInfo reason of a refusal (google.rpc.Status in the trailers)."""
    status = rpc_status.from_call(err)
    for detail in status.details if status is not None else ():
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            return str(info.reason)
    return ""


async def verify_certificate(certificates_addr: str, compact_token: str, *,
                             holder: str | None = None) -> tuple[bool, list[str]]:
    """Fetches the trust bundle (issuer keys, status lists and the signed trust list of
    foreign issuers: public calls) and verifies a compact certificate with them. Keep the
    bundle and verify offline; refresh it at least hourly, as the status lists expire."""
    jwks_json, lists, trust_list = await offline_cli.fetch(certificates_addr)
    return offline.verify_report(compact_token, jwks_json, json.dumps(lists),
                                 now=dt.datetime.now(dt.UTC), holder=holder,
                                 trust_list_json=json.dumps(trust_list))


async def _matters(args: argparse.Namespace) -> int:
    key = load_or_create_key(args.key)
    async with grpc.aio.insecure_channel(args.identity) as identity, \
            grpc.aio.insecure_channel(args.matters) as matters:
        token = await get_token(identity, args.client_id, key, args.kid)
        for name in await list_matters(matters, token):
            print(name)
    return 0


async def _submit(args: argparse.Namespace) -> int:
    key = load_or_create_key(args.key)
    async with grpc.aio.insecure_channel(args.identity) as identity, \
            grpc.aio.insecure_channel(args.matters) as matters:
        token = await get_token(identity, args.client_id, key, args.kid)
        try:
            app = await submit_for(matters, token, applicant=args.applicant, matter=args.matter,
                                   request_id=args.request_id)
        except NoDelegation as refused:
            print(f"refused: {refused}", file=sys.stderr)
            return 1
    print(f"{app.name} submitted for {app.applicant} under {app.delegation}")
    return 0


async def _verify(args: argparse.Namespace) -> int:
    valid, lines = await verify_certificate(args.certificates,
                                            offline_cli.read_token(args.token))
    print("\n".join(lines))
    return 0 if valid else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    jwk_cmd = sub.add_parser("jwk", help="print the public JWK (creating the key if missing)")
    matters_cmd = sub.add_parser("matters", help="get a token and list the catalogue")
    submit_cmd = sub.add_parser("submit", help="submit for a citizen under their delegation")
    for p in (jwk_cmd, matters_cmd, submit_cmd):
        p.add_argument("--key", type=pathlib.Path, default=pathlib.Path("partner-key.pem"))
        p.add_argument("--kid", required=True)
    for p in (matters_cmd, submit_cmd):
        p.add_argument("--client-id", required=True)
        p.add_argument("--identity", default="127.0.0.1:50051")
        p.add_argument("--matters", default="127.0.0.1:50053")
    submit_cmd.add_argument("--applicant", required=True, help="persons/... or organisations/...")
    submit_cmd.add_argument("--matter", required=True, help="matters/{code}")
    submit_cmd.add_argument("--request-id", default="", help="for retries (default: a new one)")
    verify_cmd = sub.add_parser("verify", help="verify a compact certificate")
    verify_cmd.add_argument("token", help="the token, a file holding it, or - for stdin")
    verify_cmd.add_argument("--certificates", default="127.0.0.1:50052")
    args = parser.parse_args(argv)
    if args.cmd == "jwk":
        print(public_jwk(load_or_create_key(args.key), args.kid))
        return 0
    run = {"matters": _matters, "submit": _submit, "verify": _verify}[args.cmd]
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
