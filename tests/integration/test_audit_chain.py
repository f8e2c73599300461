"""The tamper-evident audit chains (govflow/audit.py): what goes in, that concurrent
writers never fork a chain, and that `govflow audit verify` finds an altered entry, a
deleted one and a truncated tail (the last with an anchor kept elsewhere) — on SQLite
and PostgreSQL."""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import shutil
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from govflow import audit
from govflow.certificates.v1 import certificates_pb2 as cpb
from govflow.db import make_engine, migrate
from govflow.settings import Settings
from govflow_cli import audit_cli
from services.certificates.server import MIGRATIONS as CERT_MIGRATIONS
from services.identity.server import MIGRATIONS as IDENTITY_MIGRATIONS
from services.matters.server import MIGRATIONS as MATTERS_MIGRATIONS
from tests.e2e.helpers import new_senior, official, submit, wait_done
from tests.stack import Stack, postgres_databases

ROOT = pathlib.Path(__file__).resolve().parents[2]
ENTRIES = 10


# ------------------------------------------------------------------ on the running stack
async def test_issue_reads_status_changes_and_rule_decision_are_chained(stack: Stack) -> None:
    _, md = await new_senior(stack)  # the card is one per holder
    name = await submit(stack, md, "matters/senior-citizen-card")
    app = await wait_done(stack, md, name)
    cert = app.result_certificate
    issuer = await official(stack, "zhou-min", "agencies/sz-cab")
    await stack.certificates.SuspendCertificate(cpb.SuspendCertificateRequest(
        name=cert, reason="address check"), metadata=issuer)
    await stack.certificates.ReinstateCertificate(cpb.ReinstateCertificateRequest(
        name=cert, reason="address confirmed"), metadata=issuer)
    await stack.certificates.RevokeCertificate(cpb.RevokeCertificateRequest(
        name=cert, reason="issued in error"), metadata=issuer)
    # The holder reading their own certificate is not an audited access.
    await stack.certificates.GetCertificate(cpb.GetCertificateRequest(name=cert), metadata=md)

    certs = _entries(stack.settings, "certificates", "certificate_audit_log")
    mine = [e for e in certs if e["subject"] == cert]
    assert [e["action"] for e in mine] == ["certificate.issued", "certificate.suspended",
                                           "certificate.reinstated", "certificate.revoked"]
    assert mine[0]["details"]["application"] == name
    assert mine[0]["actor"] == "partners/govflow-worker"
    assert mine[1]["details"] == {"from": "active", "to": "suspended", "reason": "address check"}
    assert all(e["actor"] == mine[1]["actor"] for e in mine[1:])  # the issuer's official
    # The worker's reads of the applicant's certificates, under the application's grant:
    # one verification (which returns the certificate) per material pulled.
    reads = [e for e in certs if e["action"] == "certificate.read"
             and e["details"]["application"] == name]
    assert len({e["subject"] for e in reads}) == 2  # two materials, each read once
    assert len(reads) == 2 and {e["details"]["read"] for e in reads} == {"verify"}
    assert all(e["details"]["holder"] == app.applicant for e in reads)

    decisions = [e for e in _entries(stack.settings, "matters", "decision_audit_log")
                 if e["subject"] == name]
    assert [(e["action"], e["details"]["outcome"]) for e in decisions] == [
        ("rule.decided", "approved")]
    assert decisions[0]["details"]["rule_version"] == "matters/senior-citizen-card@v1"
    reports = audit_cli.verify_chains(stack.settings)
    assert all(r.ok for r in reports.values()), {k: r.problem for k, r in reports.items()}


def _entries(settings: Settings, service: str, table: str) -> list[dict]:  # type: ignore[type-arg]
    engine = make_engine(settings.database_url(service))
    try:
        with engine.connect() as conn:
            return [json.loads(r.entry_json) for r in conn.execute(
                sa.text(f"SELECT entry_json FROM {table} ORDER BY seq"))]
    finally:
        engine.dispose()


# ------------------------------------------------------------------ fresh databases
@contextlib.contextmanager
def chains(backend: str, tmp: pathlib.Path) -> Iterator[Settings]:
    """Migrated identity, certificates and matters databases, each chain holding ENTRIES
    entries."""
    if backend == "postgres":
        with postgres_databases(("identity", "certificates", "matters")) as urls:
            yield _fill(Settings(data_dir=tmp, identity_database_url=urls["identity"],
                                 certificates_database_url=urls["certificates"],
                                 matters_database_url=urls["matters"]))
    else:
        yield _fill(Settings(data_dir=tmp))


def _fill(settings: Settings) -> Settings:
    for service, migrations in (("identity", IDENTITY_MIGRATIONS), ("certificates", CERT_MIGRATIONS),
                                ("matters", MATTERS_MIGRATIONS)):
        migrate(settings.database_url(service), migrations)
        chain, entry_cls, head_cls = audit_cli.CHAINS[service]
        engine = make_engine(settings.database_url(service))
        for i in range(ENTRIES):
            with Session(engine) as s:
                audit.append(s, entry_cls, head_cls, chain=chain, action="test.entry",
                             actor="persons/tester", subject=f"things/{i}", details={"n": i})
                s.commit()
        engine.dispose()
    return settings


def _sql(settings: Settings, service: str, statement: str, **params: object) -> None:
    engine = make_engine(settings.database_url(service))
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(statement), params)
    finally:
        engine.dispose()


def cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **settings.as_env(), "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "govflow_cli", "audit", *args], env=env,
                          cwd=ROOT, capture_output=True, text=True, timeout=60)


BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.mark.parametrize("backend", BACKENDS)
def test_verify_reports_the_first_broken_entry(backend: str, tmp_path: pathlib.Path) -> None:
    with chains(backend, tmp_path) as settings:
        ok = cli(settings, "verify")
        assert ok.returncode == 0, ok.stdout + ok.stderr
        assert f"certificates/certificates: ok, {ENTRIES} entries" in ok.stdout
        assert f"matters/decisions: ok, {ENTRIES} entries" in ok.stdout
        anchors = tmp_path / "anchors.json"
        assert cli(settings, "head", "--out", str(anchors)).returncode == 0
        assert json.loads(anchors.read_text())["certificates"]["seq"] == ENTRIES

        # An entry's content changed (still valid, canonical JSON): its hash no longer matches.
        engine = make_engine(settings.database_url("certificates"))
        with engine.connect() as conn:
            row = conn.execute(sa.text("SELECT entry_json FROM certificate_audit_log "
                                       "WHERE seq = 5")).one()
        engine.dispose()
        entry = json.loads(row.entry_json)
        original = row.entry_json
        entry["details"] = {"n": 999}
        forged = audit.canonical(entry).decode()
        _sql(settings, "certificates",
             "UPDATE certificate_audit_log SET entry_json = :e WHERE seq = 5", e=forged)
        out = cli(settings, "verify")
        assert out.returncode == 1
        assert "certificates/certificates: BROKEN at entry 5: entry 5: hash mismatch" in out.stdout
        assert "matters/decisions: ok" in out.stdout

        # ...and its hash recomputed too: the next entry no longer links to it.
        _sql(settings, "certificates", "UPDATE certificate_audit_log SET hash = "
             f"'{audit.chain_hash(entry_prev(settings, 5), forged.encode())}' WHERE seq = 5")
        out = cli(settings, "verify")
        assert "BROKEN at entry 6: entry 6 does not link to entry 5" in out.stdout

        # A column changed beside the hashed entry.
        _sql(settings, "certificates",
             "UPDATE certificate_audit_log SET entry_json = :e, hash = :h, "
             "subject = 'things/else' WHERE seq = 5", e=original,
             h=audit.chain_hash(entry_prev(settings, 5), original.encode()))
        out = cli(settings, "verify")
        assert "BROKEN at entry 5: entry 5: column subject differs" in out.stdout
        _sql(settings, "certificates",
             "UPDATE certificate_audit_log SET subject = 'things/4' WHERE seq = 5")
        assert cli(settings, "verify").returncode == 0  # restored exactly: verifies again

        # A middle entry deleted (matters' chain).
        _sql(settings, "matters", "DELETE FROM decision_audit_log WHERE seq = 4")
        out = cli(settings, "verify")
        assert "matters/decisions: BROKEN at entry 4: entry 4 is missing" in out.stdout
        assert "certificates/certificates: ok" in out.stdout


def entry_prev(settings: Settings, seq: int) -> str:
    engine = make_engine(settings.database_url("certificates"))
    try:
        with engine.connect() as conn:
            return str(conn.execute(sa.text(
                f"SELECT prev_hash FROM certificate_audit_log WHERE seq = {seq}")).scalar_one())
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", BACKENDS)
def test_truncated_tail_is_detected(backend: str, tmp_path: pathlib.Path) -> None:
    with chains(backend, tmp_path) as settings:
        anchors = tmp_path / "anchors.json"
        assert cli(settings, "head", "--out", str(anchors)).returncode == 0
        _sql(settings, "certificates", f"DELETE FROM certificate_audit_log WHERE seq > {ENTRIES - 3}")
        out = cli(settings, "verify")
        assert out.returncode == 1
        assert (f"BROKEN at entry {ENTRIES - 2}: the head says {ENTRIES} entries" in out.stdout
                and "tail truncated" in out.stdout), out.stdout

        # A careful forger rewinds the head row too: the chain is consistent again, but no
        # longer reaches the anchored head kept outside the database.
        _sql(settings, "certificates",
             f"UPDATE certificate_audit_heads SET seq = {ENTRIES - 3}, hash = (SELECT hash FROM "
             f"certificate_audit_log WHERE seq = {ENTRIES - 3})")
        assert cli(settings, "verify").returncode == 0
        out = cli(settings, "verify", "--anchors", str(anchors))
        assert out.returncode == 1
        assert f"BROKEN at entry {ENTRIES - 2}: the anchored head (entry {ENTRIES}) is past the end" \
            in out.stdout, out.stdout
        assert "matters/decisions: ok" in out.stdout


@pytest.mark.parametrize("backend", BACKENDS)
def test_concurrent_writers_never_fork_the_chain(backend: str, tmp_path: pathlib.Path) -> None:
    with chains(backend, tmp_path) as settings:
        chain, entry_cls, head_cls = audit_cli.CHAINS["certificates"]
        engine = make_engine(settings.database_url("certificates"))
        errors: list[BaseException] = []
        start = threading.Barrier(8)

        def writer(w: int) -> None:
            try:
                start.wait()
                for i in range(25):
                    with Session(engine) as s:
                        audit.append(s, entry_cls, head_cls, chain=chain, action="test.concurrent",
                                     actor=f"persons/w{w}", subject=f"things/{w}-{i}",
                                     details={"w": w, "i": i})
                        s.commit()
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=writer, args=(w,)) for w in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        engine.dispose()
        assert not errors, errors
        report = audit_cli.verify_chains(settings)["certificates"]
        assert report.ok, report.problem
        assert report.entries == ENTRIES + 8 * 25


def test_verify_on_a_copy_of_the_embedded_data(tmp_path: pathlib.Path) -> None:
    """`govflow audit verify` needs only the settings: the data folder of `govflow up`."""
    (tmp_path / "a").mkdir()
    with chains("sqlite", tmp_path / "a") as settings:
        shutil.copytree(tmp_path / "a", tmp_path / "b")
        copy = Settings(data_dir=tmp_path / "b")
        assert cli(copy, "verify").returncode == 0
        missing = Settings(data_dir=tmp_path / f"none-{uuid.uuid4().hex[:6]}")
        out = cli(missing, "verify")
        assert out.returncode == 1 and "no database" in out.stdout
        assert not (missing.data_dir / "certificates.sqlite3").exists()
        assert settings is not None
