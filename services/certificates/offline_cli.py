"""The offline commands behind ``govflow trust-bundle`` and ``govflow verify``.

``trust-bundle`` fetches what an offline verifier needs from a running certificates service
(the issuers' public keys as a JWK set, each issuer's signed status list — the trusted
foreign issuers' too — and the signed trust list) into three files; ``verify`` checks a
compact certificate token against those files with no service running.
"""

from __future__ import annotations

import datetime as dt
import json
import pathlib
import sys

import grpc

from govflow.certificates.v1 import certificates_pb2 as pb
from govflow.certificates.v1 import certificates_pb2_grpc
from services.certificates import offline


def trust_lists_document(signed: pb.SignedTrustList) -> dict[str, object]:
    """The saved form of a fetched trust list (what ``govflow trust-bundle`` writes)."""
    return {"trust_lists": [{"version": signed.version, "key_id": signed.key_id,
                             "signed_payload": signed.signed_payload,
                             "signature": signed.signature}]}


async def fetch(addr: str, *, timeout: float = 10) -> tuple[str, dict[str, object],
                                                            dict[str, object]]:
    """(JWK set JSON, status lists document, trust list document) from the service at
    ``addr``. Every call is public: no token is needed."""
    async with grpc.aio.insecure_channel(addr) as channel:
        stub = certificates_pb2_grpc.CertificatesServiceStub(channel)
        keys = await stub.ListIssuerKeys(pb.ListIssuerKeysRequest(), timeout=timeout)
        trust = await stub.GetTrustList(pb.GetTrustListRequest(), timeout=timeout)
        listed = json.loads(trust.trust_list.signed_payload).get("issuers", [])
        issuers = sorted({k["issuer"] for k in json.loads(keys.jwks_json).get("keys", [])
                          if isinstance(k.get("issuer"), str)}
                         | {e["issuer"] for e in listed if isinstance(e.get("issuer"), str)})
        lists = []
        for issuer in issuers:
            try:
                r = await stub.GetStatusList(pb.GetStatusListRequest(issuer=issuer),
                                             timeout=timeout)
            except grpc.aio.AioRpcError as err:
                if err.code() == grpc.StatusCode.NOT_FOUND:
                    continue
                raise
            sl = r.status_list
            lists.append({"issuer": sl.issuer, "key_id": sl.key_id,
                          "signed_payload": sl.signed_payload, "signature": sl.signature})
    return (keys.jwks_json, offline.status_lists_document(lists, dt.datetime.now(dt.UTC)),
            trust_lists_document(trust.trust_list))


async def save(addr: str, keys_path: pathlib.Path, status_lists_path: pathlib.Path,
               trust_list_path: pathlib.Path | None = None) -> int:
    """Fetches and writes the files; returns how many status lists were saved."""
    jwks_json, doc, trust_doc = await fetch(addr)
    keys_path.parent.mkdir(parents=True, exist_ok=True)
    status_lists_path.parent.mkdir(parents=True, exist_ok=True)
    keys_path.write_text(json.dumps(json.loads(jwks_json), indent=2) + "\n")
    status_lists_path.write_text(json.dumps(doc, indent=2) + "\n")
    if trust_list_path is not None:
        trust_list_path.parent.mkdir(parents=True, exist_ok=True)
        trust_list_path.write_text(json.dumps(trust_doc, indent=2) + "\n")
    return len(doc["status_lists"])  # type: ignore[arg-type]  # JSON values are untyped




def trust_bundle_command(addr: str, keys_path: pathlib.Path,
                         status_lists_path: pathlib.Path,
                         trust_list_path: pathlib.Path | None = None) -> int:
    import asyncio

    try:
        count = asyncio.run(save(addr, keys_path, status_lists_path, trust_list_path))
    except grpc.aio.AioRpcError as err:
        print(f"govflow: cannot fetch from {addr}: {err.code().name}: {err.details()}",
              file=sys.stderr)
        return 2
    print(f"saved issuer keys to {keys_path} and {count} status list(s) to {status_lists_path}"
          + (f", the trust list to {trust_list_path}" if trust_list_path is not None else ""))
    return 0


def read_token(arg: str) -> str:
    """The token itself, ``-`` for standard input, or a file holding it."""
    if arg == "-":
        return sys.stdin.read().strip()
    path = pathlib.Path(arg)
    try:
        is_file = path.is_file()
    except OSError:  # e.g. a token longer than a file name may be
        is_file = False
    if is_file or arg.count(".") != 2:
        return path.read_text().strip()
    return arg.strip()


def verify_command(token_arg: str, keys_path: pathlib.Path, status_lists_path: pathlib.Path,
                   *, allow_stale: bool = False, fetch_from: str = "",
                   holder: str | None = None, trust_list_path: pathlib.Path | None = None) -> int:
    """Prints the verdict and every failure reason; 0 when valid, 1 when not, 2 when the
    inputs cannot be read. A foreign issuer's token needs the trust list file."""
    if fetch_from and trust_bundle_command(fetch_from, keys_path, status_lists_path,
                                           trust_list_path) != 0:
        return 2
    try:
        token = read_token(token_arg)
        keys_json = keys_path.read_text()
        lists_json = status_lists_path.read_text() if status_lists_path.exists() else ""
        trust_json = trust_list_path.read_text() \
            if trust_list_path is not None and trust_list_path.exists() else ""
    except OSError as exc:
        print(f"govflow: {exc}", file=sys.stderr)
        return 2
    valid, lines = offline.verify_report(token, keys_json, lists_json,
                                         now=dt.datetime.now(dt.UTC),
                                         allow_stale_status=allow_stale, holder=holder,
                                         trust_list_json=trust_json)
    print("\n".join(lines))
    return 0 if valid else 1
