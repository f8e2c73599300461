"""Transport security from the settings: the credentials of every server and client of a
Govflow process (docs/security.md, "Transport").

Nothing set (the embedded default): plaintext, on loopback. ``tls_cert`` and ``tls_key``:
the process's servers serve TLS; with ``tls_client_auth`` its gRPC servers also require a
client certificate signed by ``tls_ca``. ``tls_ca``: its calls to the services go over TLS,
verifying the server's certificate and name; ``tls_client_cert`` and ``tls_client_key`` are
presented when set. ``temporal_tls``: the same for its Temporal connection.
"""

from __future__ import annotations

import pathlib
import ssl

import grpc
from temporalio.service import TLSConfig

from govflow.settings import Settings


class TlsSettingsError(ValueError):
    """The TLS settings are incomplete or name files that cannot be read."""


def _read(settings: Settings, field: str) -> bytes:
    path = str(getattr(settings, field))
    try:
        return pathlib.Path(path).read_bytes()
    except OSError as exc:
        raise TlsSettingsError(f"GOVFLOW_{field.upper()}={path}: {exc.strerror}") from None


def _pair(settings: Settings, cert: str, key: str) -> tuple[bytes, bytes] | None:
    """(key, certificate chain) of two settings that go together, or None when both empty."""
    have_cert, have_key = bool(getattr(settings, cert)), bool(getattr(settings, key))
    if have_cert != have_key:
        raise TlsSettingsError(f"GOVFLOW_{cert.upper()} and GOVFLOW_{key.upper()} go together: "
                               "set both or neither")
    if not have_cert:
        return None
    return _read(settings, key), _read(settings, cert)


def validate(settings: Settings) -> None:
    """Refuses half-made TLS settings at start, rather than at the first call."""
    server = _pair(settings, "tls_cert", "tls_key")
    _pair(settings, "tls_client_cert", "tls_client_key")
    if settings.tls_client_auth and (server is None or not settings.tls_ca):
        raise TlsSettingsError("GOVFLOW_TLS_CLIENT_AUTH needs GOVFLOW_TLS_CERT, GOVFLOW_TLS_KEY "
                               "and GOVFLOW_TLS_CA (the CA that signs the clients)")
    if settings.tls_ca:
        _read(settings, "tls_ca")


def server_credentials(settings: Settings) -> grpc.ServerCredentials | None:
    """The gRPC servers' credentials; None (plaintext) unless tls_cert and tls_key are set."""
    validate(settings)
    pair = _pair(settings, "tls_cert", "tls_key")
    if pair is None:
        return None
    if settings.tls_client_auth:
        return grpc.ssl_server_credentials([pair], root_certificates=_read(settings, "tls_ca"),
                                           require_client_auth=True)
    return grpc.ssl_server_credentials([pair])


def channel_credentials(settings: Settings) -> grpc.ChannelCredentials | None:
    """Credentials of the channels to Govflow's services; None (plaintext) unless tls_ca is
    set. The server's certificate must be signed by tls_ca and name the host dialled."""
    validate(settings)
    if not settings.tls_ca:
        return None
    client = _pair(settings, "tls_client_cert", "tls_client_key")
    return grpc.ssl_channel_credentials(
        root_certificates=_read(settings, "tls_ca"),
        private_key=client[0] if client else None,
        certificate_chain=client[1] if client else None)


def temporal_tls(settings: Settings) -> TLSConfig | bool:
    """The Temporal client's ``tls`` argument: False (plaintext) unless temporal_tls."""
    validate(settings)
    if not settings.temporal_tls:
        return False
    client = _pair(settings, "tls_client_cert", "tls_client_key")
    return TLSConfig(
        server_root_ca_cert=_read(settings, "tls_ca") if settings.tls_ca else None,
        client_cert=client[1] if client else None,
        client_private_key=client[0] if client else None)


def https_files(settings: Settings) -> tuple[str, str] | None:
    """(certificate, key) files of the gateway's HTTPS (uvicorn's ssl_certfile and
    ssl_keyfile); None: plain HTTP. The gateway never asks browsers for certificates
    (tls_client_auth is for the gRPC servers)."""
    validate(settings)
    if not settings.tls_cert:
        return None
    return str(settings.tls_cert), str(settings.tls_key)


def client_ssl_context(settings: Settings) -> ssl.SSLContext:
    """An HTTPS client context that trusts tls_ca (the system's roots when empty) and
    presents tls_client_cert when set."""
    validate(settings)
    ctx = ssl.create_default_context(cafile=str(settings.tls_ca) if settings.tls_ca else None)
    if settings.tls_client_cert:
        ctx.load_cert_chain(str(settings.tls_client_cert), str(settings.tls_client_key))
    return ctx
