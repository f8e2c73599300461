"""The one settings object of every Govflow process, read from ``GOVFLOW_*`` variables.

No other module reads the environment: processes build a ``Settings`` once and pass it on.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
from collections.abc import Mapping


def _bool(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


@dataclasses.dataclass(frozen=True)
class Settings:
    # Where the embedded mode keeps its files (SQLite databases, Temporal's file, keys).
    data_dir: pathlib.Path = pathlib.Path(".data")
    # Host every embedded service binds; loopback unless told otherwise.
    host: str = "127.0.0.1"
    identity_port: int = 50051
    certificates_port: int = 50052
    matters_port: int = 50053
    # Addresses the services and the worker use to reach each other.
    identity_addr: str = "127.0.0.1:50051"
    certificates_addr: str = "127.0.0.1:50052"
    matters_addr: str = "127.0.0.1:50053"
    # One database URL per service; empty means an SQLite file under data_dir.
    identity_database_url: str = ""
    certificates_database_url: str = ""
    matters_database_url: str = ""
    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    temporal_task_queue: str = "govflow-applications"
    temporal_ui_port: int = 8233
    # Client credentials of Govflow's own processes (the worker and the seeder).
    worker_client_id: str = "govflow-worker"
    worker_client_secret: str = ""
    admin_client_id: str = "govflow-admin"
    admin_client_secret: str = ""
    # Access tokens live this long.
    token_ttl_seconds: int = 900
    refresh_ttl_seconds: int = 7 * 24 * 3600
    # Log as JSON (default when not on a terminal) or for humans.
    log_json: bool | None = None
    log_level: str = "info"
    # Seconds between database checks that drive the health status.
    health_interval_seconds: float = 2.0
    # Worker tuning.
    worker_max_concurrent_activities: int = 100
    worker_max_cached_workflows: int = 1000
    # On SIGTERM, running activities get this long to finish before they are cancelled
    # (Temporal retries them on another worker).
    worker_graceful_shutdown_seconds: float = 10.0
    # The worker's gRPC health endpoint (grpc.health.v1; SERVING while it polls Temporal
    # and Temporal answers); 0 turns it off.
    worker_health_port: int = 50054
    # The HTTP gateway for browsers and plain HTTP clients (services/gateway/): the same
    # public RPCs over Connect (JSON and binary) and gRPC-Web on one port; 0 leaves it out
    # of `govflow up`.
    gateway_port: int = 8080
    # Comma-separated exact origins (scheme://host[:port]) whose pages may call the gateway
    # (CORS); empty: no cross-origin access, and a request from any other origin is refused.
    cors_origins: str = ""
    # Per-caller rate limits, counted in fixed windows in each service's own database so
    # they hold across replicas; 0 turns one off. Over a limit the call is refused with
    # RESOURCE_EXHAUSTED (reason RATE_LIMITED). Generous by default; tighten in production.
    rate_limit_window_seconds: int = 60
    # Login attempts per resident ID number, and AuthenticatePartner calls per client id.
    login_rate_limit: int = 120
    partner_auth_rate_limit: int = 120
    # Failed logins (wrong password or one-time code) allowed per account in a sliding
    # window before it refuses further attempts (LOGIN_THROTTLED): per account and client
    # address, and a looser ceiling per account from all addresses together (docs/security.md).
    login_failures_per_address: int = 5
    login_failures_per_account: int = 50
    login_failure_window_seconds: int = 900
    # Comma-separated addresses or CIDR networks of proxies (the gateway) whose
    # x-forwarded-for identity believes, besides loopback; empty: loopback only.
    trusted_proxies: str = ""
    # SubmitApplication calls per caller (token subject).
    submit_rate_limit: int = 3000
    # Prometheus /metrics of each process (govflow/metrics.py), on `host`; 0 turns one off.
    identity_metrics_port: int = 9101
    certificates_metrics_port: int = 9102
    matters_metrics_port: int = 9103
    worker_metrics_port: int = 9104
    gateway_metrics_port: int = 9105
    # The Temporal SDK's own metrics (its Rust core serves them) in the processes that are
    # Temporal clients: the matters service and the worker; 0 turns one off.
    matters_temporal_metrics_port: int = 9106
    worker_temporal_metrics_port: int = 9107
    # The embedded Temporal dev server's own /metrics (its server metrics: task latencies,
    # persistence, shards), on its address; 0 turns it off. Compose's Temporal serves
    # its own on 8000.
    temporal_metrics_port: int = 9108
    # TLS (govflow/tls.py; docs/security.md "Transport"). All empty: plaintext, as the
    # embedded stack on loopback runs. PEM files. tls_cert and tls_key: the certificate
    # this process's servers present (gRPC, the gateway's HTTPS, the worker's health port).
    tls_cert: str = ""
    tls_key: str = ""
    # The CA that signs the servers this process calls; set, every call to a Govflow
    # service goes over TLS and verifies the server's certificate and name against it.
    tls_ca: str = ""
    # The gRPC servers also require a client certificate signed by tls_ca (mTLS).
    tls_client_auth: bool = False
    # The client certificate this process presents (to mTLS servers and to Temporal).
    tls_client_cert: str = ""
    tls_client_key: str = ""
    # Connect to Temporal over TLS: the server verified against tls_ca (the system's
    # roots when empty), presenting tls_client_cert when set (the frontend's mTLS).
    temporal_tls: bool = False
    # OpenTelemetry traces (govflow/tracing.py) go to this OTLP/gRPC endpoint, e.g.
    # http://otel-collector:4317; empty (the default) turns tracing off.
    otlp_endpoint: str = ""
    # Test-only fault hooks (tests/faults/), inert when empty. Comma-separated names.
    # fault_hold_activity: the worker holds these activities (by name) after their side
    # effect, until the process is killed, so a SIGKILL lands inside them.
    fault_hold_activity: str = ""
    # fault_crash_points: named points where the process exits at once (as if killed),
    # e.g. "matters.submit.after_insert", "certificates.issue.after_commit".
    fault_crash_points: str = ""
    # Benchmark-only (the "shortcuts" figure, benchmarks/shortcuts.py), inert when empty:
    # comma-separated shortcuts on private library APIs to run without, each replaced by
    # the public path it stands in for, so one bench run can measure what each is worth.
    # Names: "prepared" (govflow/db.py).
    bench_shortcuts_off: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Builds settings from ``GOVFLOW_<FIELD>`` variables, then ``overrides``."""
        env = os.environ if env is None else env
        values: dict[str, object] = {}
        for field in dataclasses.fields(cls):
            raw = env.get(f"GOVFLOW_{field.name.upper()}")
            if raw is None:
                continue
            values[field.name] = _convert(field.type, raw)
        values.update(overrides)
        # A service moved to another port is reached there unless an address is given.
        for service in ("identity", "certificates", "matters"):
            port_key, addr_key = f"{service}_port", f"{service}_addr"
            if port_key in values and addr_key not in values:
                values[addr_key] = f"127.0.0.1:{values[port_key]}"
        return cls(**values)  # type: ignore[arg-type]  # values converted field by field

    def shortcut_on(self, name: str) -> bool:
        """False when ``bench_shortcuts_off`` names the shortcut ``name``."""
        return name not in {n.strip() for n in self.bench_shortcuts_off.split(",")}

    def database_url(self, service: str) -> str:
        url = getattr(self, f"{service}_database_url")
        if url:
            return str(url)
        return f"sqlite:///{(self.data_dir / f'{service}.sqlite3').resolve()}"

    def as_env(self) -> dict[str, str]:
        """The settings as ``GOVFLOW_*`` variables, to hand to a child process."""
        out: dict[str, str] = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if value is None:
                continue
            if isinstance(value, bool):
                value = "true" if value else "false"
            out[f"GOVFLOW_{field.name.upper()}"] = str(value)
        return out


def _convert(type_name: object, raw: str) -> object:
    name = str(type_name)
    if "bool" in name:
        return _bool(raw)
    if name == "int":
        return int(raw)
    if name == "float":
        return float(raw)
    if "Path" in name:
        return pathlib.Path(raw)
    return raw
