"""A real Prometheus (Debian's ``prometheus``, installed by ./govflow.sh test) scrapes a
stack started by `govflow up`: after the demo's instant approval, PromQL finds it, with the
RPC, database-pool and Temporal SDK series of every process."""

from __future__ import annotations

import json
import pathlib
import re
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request

from tests.e2e.test_up_command import ROOT, env_for, free_ports, start_up, stop

PARTS = ("identity", "certificates", "matters", "worker", "gateway")
DASHBOARD = ROOT / "deploy/grafana/dashboards/govflow-overview.json"
ALERTS = ROOT / "deploy/prometheus/alerts.yml"


def query(base: str, promql: str) -> list[dict[str, object]]:
    url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    with urllib.request.urlopen(url, timeout=10) as resp:
        body = json.loads(resp.read())
    assert body["status"] == "success", body
    return body["data"]["result"]  # type: ignore[no-any-return]


def wait_value(base: str, promql: str, *, at_least: float, timeout: float = 60) -> float:
    deadline = time.monotonic() + timeout
    last: list[dict[str, object]] = []
    while time.monotonic() < deadline:
        last = query(base, promql)
        if last and float(last[0]["value"][1]) >= at_least:  # type: ignore[index]
            return float(last[0]["value"][1])  # type: ignore[index]
        time.sleep(1)
    raise AssertionError(f"{promql} did not reach {at_least} in {timeout} s: {last}")


def test_prometheus_finds_the_instant_approval(tmp_path: pathlib.Path) -> None:
    binary = shutil.which("prometheus")
    assert binary, ("Debian's prometheus is not installed: `apt-get install prometheus` "
                    "(./govflow.sh test installs it when run as root)")
    env = env_for(tmp_path / "data")
    ports = free_ports(9)
    for part, port in zip(PARTS, ports, strict=False):
        env[f"GOVFLOW_{part.upper()}_METRICS_PORT"] = str(port)
    env["GOVFLOW_MATTERS_TEMPORAL_METRICS_PORT"] = str(ports[5])
    env["GOVFLOW_WORKER_TEMPORAL_METRICS_PORT"] = str(ports[6])
    env["GOVFLOW_TEMPORAL_METRICS_PORT"] = str(ports[8])
    prom_port = ports[7]
    proc, lines = start_up(env)
    prom: subprocess.Popen[bytes] | None = None
    try:
        # `up` prints every endpoint; Prometheus scrapes what it printed.
        targets = {}
        for line in lines:
            if "/metrics" in line:
                url, job = line.split()[-2:]
                targets[job.strip("()")] = url.removeprefix("http://").removesuffix("/metrics")
        assert set(targets) == {*PARTS, "matters-temporal-sdk", "worker-temporal-sdk",
                                "temporal"}, lines
        config = {"global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                  "scrape_configs": [{"job_name": job, "static_configs": [{"targets": [addr]}]}
                                     for job, addr in targets.items()]}
        (tmp_path / "prometheus.yml").write_text(json.dumps(config))  # JSON is YAML
        prom = subprocess.Popen(
            [binary, f"--config.file={tmp_path / 'prometheus.yml'}",
             f"--storage.tsdb.path={tmp_path / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{prom_port}"],
            stdout=subprocess.DEVNULL, stderr=open(tmp_path / "prometheus.log", "wb"))
        base = f"http://127.0.0.1:{prom_port}"

        demo = subprocess.run([sys.executable, "-m", "govflow_cli", "demo"], env=env, cwd=ROOT,
                              capture_output=True, text=True, timeout=120)
        assert demo.returncode == 0, demo.stdout + demo.stderr
        assert "instant_approved" in demo.stdout

        # Every process is scraped.
        wait_value(base, "count(up == 1)", at_least=len(targets))
        # The business figure, from the matters database.
        assert wait_value(base, 'sum(govflow_instant_approvals_total'
                                '{matter="senior-citizen-card"})', at_least=1) == 1
        # Per RPC, from the one wrapper of every service and from the gateway.
        wait_value(base, 'sum(govflow_rpc_requests_total{service="matters",'
                         'rpc="SubmitApplication",code="OK"})', at_least=1)
        wait_value(base, 'sum(govflow_rpc_duration_seconds_count{service="certificates",'
                         'rpc="IssueCertificate"})', at_least=1)
        wait_value(base, 'sum(govflow_certificates_issued_total)', at_least=1)
        wait_value(base, 'count(govflow_db_pool_checked_out)', at_least=3)
        # The Temporal SDK's own metrics, from the worker and from the matters client.
        wait_value(base, 'sum(temporal_workflow_completed{job="worker-temporal-sdk"})',
                   at_least=1)
        wait_value(base, 'count({job="matters-temporal-sdk"})', at_least=1)
        # The embedded dev server's own server metrics (it handled the demo's workflow tasks).
        wait_value(base, 'count({job="temporal"})', at_least=1)
        # Every metric the Grafana dashboard and the alert rules query exists (those that
        # count officer tasks have no rows after an instant approval, nor do regular
        # activities: an instant approval's calls are local activities).
        wanted = set(re.findall(r"\b((?:govflow|temporal)_[a-z_]+)",
                                DASHBOARD.read_text() + ALERTS.read_text()))
        no_rows_yet = {"govflow_tasks_overdue", "govflow_tasks_open",
                       "govflow_applications_on_time_ratio",
                       "temporal_activity_execution_latency_bucket",
                       "temporal_activity_schedule_to_start_latency_bucket"}
        missing = [m for m in sorted(wanted - no_rows_yet) if not query(base, f"count({m})")]
        assert not missing, missing
        # No ID is ever a label: every series' labels come from a bounded set.
        for series in query(base, '{__name__=~"govflow_.*"}'):
            metric: dict[str, str] = series["metric"]  # type: ignore[assignment]
            labels = set(metric) - {"__name__", "job", "instance"}
            assert labels <= {"service", "rpc", "code", "matter", "agency", "status", "type",
                              "database", "le"}, series
    finally:
        if prom is not None:
            prom.terminate()
            prom.wait(timeout=30)
        stop(proc)
