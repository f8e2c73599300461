"""The HTTP gateway against the real stack, over plain HTTP: the public RPCs over Connect
(JSON and binary) and gRPC-Web with the same tokens, checks and errors as native gRPC;
what only HTTP can get wrong refused with the right Connect code and details, never a 500;
worker-only RPCs unreachable; CORS for the configured origins only."""

from __future__ import annotations

import asyncio
import base64
import json
import urllib.error
import urllib.request
import uuid

import grpc
import pytest
from google.protobuf import json_format
from google.rpc import status_pb2

from govflow.errors import error_info
from govflow.grpckit import MAX_MESSAGE_BYTES
from govflow.identity.v1 import identity_pb2 as ipb
from govflow.matters.v1 import matters_pb2 as mpb
from govflow_cli.demo_data import DEMO_PASSWORD, person
from services.gateway.routes import WORKER_ONLY
from tests.e2e.helpers import new_senior, wait_done
from tests.stack import TEST_ORIGIN, Stack

IDENTITY = "/govflow.identity.v1.IdentityService/"
MATTERS = "/govflow.matters.v1.MattersService/"
CERTIFICATES = "/govflow.certificates.v1.CertificatesService/"
OTHER_ORIGIN = "http://127.0.0.1:5175"

Answer = tuple[int, dict[str, str], bytes]


def _post(url: str, body: bytes, headers: dict[str, str], method: str) -> Answer:
    req = urllib.request.Request(url, data=body if method == "POST" else None,
                                 headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, {k.lower(): v for k, v in err.headers.items()}, err.read()


async def http(stack: Stack, path: str, body: bytes = b"", *, method: str = "POST",
               content_type: str | None = "application/json", token: str = "",
               **headers: str) -> Answer:
    h = {k.replace("_", "-"): v for k, v in headers.items()}
    if content_type:
        h["Content-Type"] = content_type
    if token:
        h["Authorization"] = f"Bearer {token}"
    return await asyncio.to_thread(_post, stack.gateway_url + path, body, h, method)


async def connect(stack: Stack, path: str, payload: dict[str, object], token: str = "",
                  **headers: str) -> tuple[int, dict[str, object], dict[str, str]]:
    status, h, body = await http(stack, path, json.dumps(payload).encode(), token=token,
                                 **headers)
    assert h["content-type"] == "application/json"
    return status, json.loads(body), h


async def login(stack: Stack, id_number: str) -> str:
    status, body, _ = await connect(stack, IDENTITY + "Login",
                                    {"idNumber": id_number, "password": DEMO_PASSWORD})
    assert status == 200, body
    return body["tokens"]["accessToken"]  # type: ignore[index,no-any-return]


def debug(error: dict[str, object], kind: str) -> dict[str, object]:
    """The ``debug`` JSON of the error's detail of type ``kind``; checks it matches the
    base64 value."""
    for d in error.get("details", []):  # type: ignore[attr-defined]
        if d["type"] == kind:
            value = base64.b64decode(d["value"] + "=" * (-len(d["value"]) % 4))
            assert d["debug"] == json_format.MessageToDict(
                json_format.ParseDict(d["debug"], _detail_type(kind)()))
            assert _detail_type(kind).FromString(value) == json_format.ParseDict(
                d["debug"], _detail_type(kind)())
            return d["debug"]  # type: ignore[no-any-return]
    raise AssertionError(f"no {kind} in {error}")


def _detail_type(kind: str):  # type: ignore[no-untyped-def]
    from google.rpc import error_details_pb2
    return getattr(error_details_pb2, kind.rsplit(".", 1)[1])


async def test_citizen_submits_and_reads_over_connect_json(stack: Stack) -> None:
    senior, _ = await new_senior(stack)
    token = await login(stack, senior.id_number)
    status, sub, h = await connect(stack, MATTERS + "SubmitApplication",
                                   {"matter": "matters/senior-citizen-card",
                                    "requestId": uuid.uuid4().hex}, token, x_request_id="rid-gw-1")
    assert status == 200, sub
    assert h["x-request-id"] == "rid-gw-1"
    name = sub["application"]["name"]  # type: ignore[index]
    md = (("authorization", f"Bearer {token}"),)
    await wait_done(stack, md, name)
    status, got, _ = await connect(stack, MATTERS + "GetApplication", {"name": name}, token)
    assert status == 200
    native = await stack.matters.GetApplication(mpb.GetApplicationRequest(name=name), metadata=md)
    # The same answer as native gRPC, in the proto3 JSON mapping.
    assert got == json_format.MessageToDict(native)
    assert got["application"]["status"] == "APPLICATION_STATUS_COMPLETED"  # type: ignore[index]


async def test_binary_connect_and_grpc_web_reach_the_same_rpc(stack: Stack) -> None:
    req = ipb.LoginRequest(id_number=person("wang-fang").id_number, password=DEMO_PASSWORD)
    status, h, body = await http(stack, IDENTITY + "Login", req.SerializeToString(),
                                 content_type="application/proto")
    assert status == 200 and h["content-type"] == "application/proto"
    token = ipb.LoginResponse.FromString(body).tokens.access_token
    assert token

    get = mpb.ListApplicationsRequest(page_size=1).SerializeToString()
    framed = b"\0" + len(get).to_bytes(4, "big") + get
    status, h, body = await http(stack, MATTERS + "ListApplications", framed,
                                 content_type="application/grpc-web+proto", token=token)
    assert status == 200 and h["content-type"] == "application/grpc-web+proto"
    assert body[0] == 0
    n = int.from_bytes(body[1:5], "big")
    mpb.ListApplicationsResponse.FromString(body[5:5 + n])
    assert body[5 + n] == 0x80 and b"grpc-status:0" in body[5 + n + 5:]

    status, h, body = await http(stack, MATTERS + "ListApplications",
                                 base64.b64encode(framed),
                                 content_type="application/grpc-web-text+proto", token=token)
    assert status == 200
    assert base64.b64decode(body)[0] == 0


async def test_errors_are_the_services_own_with_readable_details(stack: Stack) -> None:
    token = await login(stack, person("wang-fang").id_number)
    # Bad input: the services' own checks, fields named.
    status, err, _ = await connect(stack, MATTERS + "SubmitApplication",
                                   {"matter": "nonsense", "requestId": uuid.uuid4().hex}, token)
    native_err = None
    try:
        await stack.matters.SubmitApplication(mpb.SubmitApplicationRequest(
            matter="nonsense", request_id=uuid.uuid4().hex),
            metadata=(("authorization", f"Bearer {token}"),))
    except grpc.aio.AioRpcError as e:
        native_err = e
    assert native_err is not None
    assert err["code"] == native_err.code().name.lower()
    assert status == {"invalid_argument": 400, "not_found": 404}[err["code"]]  # type: ignore[index]
    assert debug(err, "google.rpc.ErrorInfo")["reason"]
    # The request limits of every RPC: a string over its limit.
    status, err, _ = await connect(stack, MATTERS + "GetApplication", {"name": "x" * 600},
                                   token)
    assert (status, err["code"]) == (400, "invalid_argument")
    assert debug(err, "google.rpc.ErrorInfo")["reason"] == "REQUEST_LIMITS"
    violations = debug(err, "google.rpc.BadRequest")["fieldViolations"]
    assert violations == [{"field": "name", "description": "longer than 512 characters"}]
    # A missing object and a wrong role: as over gRPC.
    status, err, _ = await connect(stack, MATTERS + "GetApplication",
                                   {"name": "applications/0000000000000000"}, token)
    assert (status, err["code"]) == (404, "not_found")
    other = await login(stack, person("li-wei").id_number)
    status, err, _ = await connect(stack, MATTERS + "ListTasks", {}, other)
    assert (status, err["code"]) == (403, "permission_denied")
    assert debug(err, "google.rpc.ErrorInfo")["domain"] == "govflow.matters"


async def test_missing_and_forged_tokens(stack: Stack) -> None:
    status, err, _ = await connect(stack, MATTERS + "ListApplications", {})
    assert (status, err["code"]) == (401, "unauthenticated")
    assert debug(err, "google.rpc.ErrorInfo")["reason"] == "TOKEN_MISSING"
    token = await login(stack, person("wang-fang").id_number)
    head, payload, sig = token.split(".")
    forged = f"{head}.{payload}.{sig[:-4]}AAAA"
    status, err, _ = await connect(stack, MATTERS + "ListApplications", {}, forged)
    assert (status, err["code"]) == (401, "unauthenticated")
    assert debug(err, "google.rpc.ErrorInfo")["reason"].startswith("TOKEN_")
    status, err, _ = await connect(stack, MATTERS + "ListApplications", {},
                                   Authorization="Basic abc")
    assert (status, err["code"]) == (401, "unauthenticated")


@pytest.mark.parametrize("body,field", [
    (b"{not json", "body"), (b"", "body"), (b"[1, 2]", "body"),
    (b'{"name": "applications/x", "colour": "red"}', "colour"),
    (b'{"name": 5}', "name"),
])
async def test_malformed_json_is_invalid_argument(stack: Stack, body: bytes, field: str) -> None:
    token = await login(stack, person("wang-fang").id_number)
    status, h, raw = await http(stack, MATTERS + "GetApplication", body, token=token)
    err = json.loads(raw)
    assert (status, err["code"]) == (400, "invalid_argument"), err
    assert debug(err, "google.rpc.ErrorInfo")["reason"] == "MALFORMED_REQUEST"
    assert [v["field"] for v in debug(err, "google.rpc.BadRequest")["fieldViolations"]] == [field]


async def test_wrong_content_type_method_and_path(stack: Stack) -> None:
    status, h, raw = await http(stack, MATTERS + "ListMatters", b"x=1",
                                content_type="application/x-www-form-urlencoded")
    err = json.loads(raw)
    assert (status, err["code"]) == (415, "unimplemented")
    assert debug(err, "google.rpc.ErrorInfo")["reason"] == "UNSUPPORTED_CONTENT_TYPE"
    status, _, raw = await http(stack, MATTERS + "ListMatters", method="GET")
    assert (status, json.loads(raw)["code"]) == (405, "unimplemented")
    status, _, raw = await http(stack, "/govflow.matters.v1.MattersService/Nope", b"{}")
    assert (status, json.loads(raw)["code"]) == (404, "unimplemented")


async def test_oversized_body_is_refused_before_parsing(stack: Stack) -> None:
    body = b'{"name": "' + b"x" * MAX_MESSAGE_BYTES + b'"}'
    status, _, raw = await http(stack, MATTERS + "GetApplication", body)
    err = json.loads(raw)
    assert (status, err["code"]) == (429, "resource_exhausted")
    info = debug(err, "google.rpc.ErrorInfo")
    assert info["reason"] == "REQUEST_TOO_LARGE"
    assert info["metadata"] == {"max_bytes": str(MAX_MESSAGE_BYTES)}


async def test_worker_only_rpcs_are_not_reachable(stack: Stack) -> None:
    worker = (await stack.service_md("govflow-worker"))[0][1].removeprefix("Bearer ")
    assert {MATTERS + "RecordApplicationEvent", MATTERS + "RecordApplicationEvents",
            MATTERS + "UpsertTask", CERTIFICATES + "PullCertificate",
            CERTIFICATES + "ReleaseApplicationGrants"} <= WORKER_ONLY
    for path in sorted(WORKER_ONLY):
        status, err, _ = await connect(stack, path, {}, worker)
        assert (status, err["code"]) == (404, "unimplemented"), path
        status, h, _ = await http(stack, path, b"\0\0\0\0\0",
                                  content_type="application/grpc-web+proto", token=worker)
        assert status == 200 and h["grpc-status"] == str(grpc.StatusCode.UNIMPLEMENTED.value[0])


async def test_grpc_web_errors_carry_the_rich_status(stack: Stack) -> None:
    status, h, body = await http(stack, MATTERS + "ListApplications", b"\0\0\0\0\0",
                                 content_type="application/grpc-web+proto")
    assert status == 200 and h["grpc-status"] == "16"
    raw = h["grpc-status-details-bin"]
    st = status_pb2.Status.FromString(base64.b64decode(raw + "=" * (-len(raw) % 4)))
    assert error_info(st).reason == "TOKEN_MISSING"  # type: ignore[union-attr]
    assert body[0] == 0x80 and b"grpc-status:16" in body


async def test_cors_for_configured_origins_only(stack: Stack) -> None:
    path = IDENTITY + "Login"
    preflight = {"Origin": TEST_ORIGIN, "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "content-type,connect-protocol-version"}
    status, h, _ = await http(stack, path, method="OPTIONS", content_type=None, **preflight)
    assert status == 204
    assert h["access-control-allow-origin"] == TEST_ORIGIN
    assert "POST" in h["access-control-allow-methods"]
    assert "connect-protocol-version" in h["access-control-allow-headers"]
    status, h, _ = await http(stack, path, method="OPTIONS", content_type=None,
                              **{**preflight, "Origin": OTHER_ORIGIN})
    assert status == 403 and "access-control-allow-origin" not in h

    login_body = json.dumps({"idNumber": person("wang-fang").id_number,
                             "password": DEMO_PASSWORD}).encode()
    status, h, _ = await http(stack, path, login_body, Origin=TEST_ORIGIN)
    assert status == 200 and h["access-control-allow-origin"] == TEST_ORIGIN
    assert "grpc-status-details-bin" in h["access-control-expose-headers"]
    # Another origin's actual request is refused, not served without the header.
    status, h, raw = await http(stack, path, login_body, Origin=OTHER_ORIGIN)
    assert "access-control-allow-origin" not in h
    err = json.loads(raw)
    assert (status, err["code"]) == (403, "permission_denied")
    assert debug(err, "google.rpc.ErrorInfo")["reason"] == "ORIGIN_NOT_ALLOWED"


async def test_junk_never_gets_a_500(stack: Stack) -> None:
    junk = [b"\xff\xfe", b"{" * 5000 + b"}" * 5000, b'{"pageSize": "many"}', b"null",
            b'{"filter": "\\u0000"}', b"\0\0\0\0\x05hello", b"\x80\x81\x82"]
    for body in junk:
        for ctype in ("application/json", "application/proto", "application/grpc-web+proto",
                      "application/grpc-web-text+proto", "text/plain"):
            status, h, raw = await http(stack, MATTERS + "ListApplications", body,
                                        content_type=ctype)
            assert status < 500, (body[:20], ctype, raw[:200])
            if status != 200:
                assert json.loads(raw)["code"] != "internal"
            else:
                assert h.get("grpc-status") not in ("2", "13"), (body[:20], ctype, h)


async def test_one_access_line_per_call_with_the_request_id(stack: Stack) -> None:
    from govflow import log

    lines: list[tuple[str, dict[str, object]]] = []
    original = log.rpc_line

    def capture(event: str, fields: dict[str, object]) -> None:
        lines.append((event, dict(fields)))
        original(event, fields)

    log.rpc_line = capture  # type: ignore[assignment]
    try:
        await http(stack, MATTERS + "ListMatters", b"{}", x_request_id="rid-gw-log")
        await http(stack, MATTERS + "ListApplications", b"{}", x_request_id="rid-gw-log2")
    finally:
        log.rpc_line = original  # type: ignore[assignment]
    mine = [(e, f) for e, f in lines if str(f.get("request_id", "")).startswith("rid-gw-log")]
    http_lines = [(e, f) for e, f in mine if e.startswith("http.")]
    assert [(e, f["request_id"], f["rpc"], f["http_status"]) for e, f in http_lines] == [
        ("http.ok", "rid-gw-log", "ListMatters", 200),
        ("http.refused", "rid-gw-log2", "ListApplications", 401)]
    assert http_lines[1][1]["code"] == "unauthenticated"
    assert http_lines[1][1]["reason"] == "TOKEN_MISSING"
    # The service's own line carries the same request id.
    assert ("rpc.ok", "rid-gw-log") in [(e, f["request_id"]) for e, f in mine]
