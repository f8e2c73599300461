"""The wire forms of the gateway: Connect unary (JSON and binary) and gRPC-Web.

An answer that fails is one ``google.rpc.Status`` (the owning service's own, as it sent it
in ``grpc-status-details-bin``, or one the gateway makes for what it refuses itself), shown
in the form of the caller's protocol: a Connect error (HTTP status from the code, a JSON
body whose details carry each detail in base64 and, in ``debug``, as JSON), or gRPC-Web
trailers.
"""

from __future__ import annotations

import base64
import json

from google.protobuf import any_pb2, json_format, message, symbol_database
from google.rpc import code_pb2, error_details_pb2, status_pb2

from govflow.errors import DomainError, to_status

# Imported for its message types, which error details are unpacked into.
_DETAIL_TYPES = error_details_pb2
_SYMBOLS = symbol_database.Default()

DOMAIN = "govflow.gateway"

# https://connectrpc.com/docs/protocol#error-codes: the code's name and its HTTP status.
_CONNECT_CODES: dict[int, tuple[str, int]] = {
    code_pb2.CANCELLED: ("canceled", 499),
    code_pb2.UNKNOWN: ("unknown", 500),
    code_pb2.INVALID_ARGUMENT: ("invalid_argument", 400),
    code_pb2.DEADLINE_EXCEEDED: ("deadline_exceeded", 504),
    code_pb2.NOT_FOUND: ("not_found", 404),
    code_pb2.ALREADY_EXISTS: ("already_exists", 409),
    code_pb2.PERMISSION_DENIED: ("permission_denied", 403),
    code_pb2.RESOURCE_EXHAUSTED: ("resource_exhausted", 429),
    code_pb2.FAILED_PRECONDITION: ("failed_precondition", 400),
    code_pb2.ABORTED: ("aborted", 409),
    code_pb2.OUT_OF_RANGE: ("out_of_range", 400),
    code_pb2.UNIMPLEMENTED: ("unimplemented", 501),
    code_pb2.INTERNAL: ("internal", 500),
    code_pb2.UNAVAILABLE: ("unavailable", 503),
    code_pb2.DATA_LOSS: ("data_loss", 500),
    code_pb2.UNAUTHENTICATED: ("unauthenticated", 401),
}

JSON = "application/json"
PROTO = "application/proto"
GRPC_WEB = "application/grpc-web"
GRPC_WEB_TEXT = "application/grpc-web-text"


class Refusal(Exception):
    """What the gateway refuses itself, before or instead of forwarding: a status and,
    where the protocol's rules say so, another HTTP status than the code's."""

    def __init__(self, status: status_pb2.Status, http_status: int | None = None) -> None:
        super().__init__(status.message)
        self.status = status
        self.http_status = http_status

    @classmethod
    def of(cls, err: DomainError, code: int | None = None,
           http_status: int | None = None) -> Refusal:
        status = to_status(err, DOMAIN)
        if code is not None:  # codes the domain errors do not have (UNIMPLEMENTED)
            status.code = code
        return cls(status, http_status)


def code_name(code: int) -> str:
    return _CONNECT_CODES.get(code, ("unknown", 500))[0]


def reason(status: status_pb2.Status) -> str:
    """The ErrorInfo reason of a status ("" without one), for the access line."""
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            return str(error_details_pb2.ErrorInfo.FromString(detail.value).reason)
    return ""


def _unpadded(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


def _detail(detail: any_pb2.Any) -> dict[str, object]:
    type_name = detail.type_url.rpartition("/")[2]
    out: dict[str, object] = {"type": type_name, "value": _unpadded(detail.value)}
    try:
        cls = _SYMBOLS.GetSymbol(type_name)
        out["debug"] = json_format.MessageToDict(cls.FromString(detail.value))
    except (KeyError, message.DecodeError):
        pass  # a detail of a type the gateway does not know: base64 only
    return out


def connect_error(status: status_pb2.Status, http_status: int | None = None
                  ) -> tuple[int, bytes]:
    """A Connect error: its HTTP status and its JSON body."""
    name, http = _CONNECT_CODES.get(status.code, ("unknown", 500))
    body: dict[str, object] = {"code": name}
    if status.message:
        body["message"] = status.message
    if status.details:
        body["details"] = [_detail(d) for d in status.details]
    return http_status or http, json.dumps(body, ensure_ascii=False).encode()


def grpc_web_trailers(status: status_pb2.Status) -> list[tuple[bytes, bytes]]:
    """The gRPC status as gRPC-Web trailers (and trailers-only headers)."""
    out = [(b"grpc-status", str(status.code).encode())]
    if status.message:
        out.append((b"grpc-message", _percent(status.message)))
    if status.details:
        out.append((b"grpc-status-details-bin",
                    base64.b64encode(status.SerializeToString()).rstrip(b"=")))
    return out


def _percent(text: str) -> bytes:
    """gRPC's percent-encoding of grpc-message: printable ASCII but "%" as is, every other
    byte of the UTF-8 as %XX."""
    return b"".join(bytes((b,)) if 0x20 <= b <= 0x7E and b != 0x25 else b"%%%02X" % b
                    for b in text.encode())


def frame(flag: int, data: bytes) -> bytes:
    return bytes((flag,)) + len(data).to_bytes(4, "big") + data


def trailer_frame(trailers: list[tuple[bytes, bytes]]) -> bytes:
    return frame(0x80, b"".join(k + b":" + v + b"\r\n" for k, v in trailers))


OK_TRAILERS = frame(0x80, b"grpc-status:0\r\n")
