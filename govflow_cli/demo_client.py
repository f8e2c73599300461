"""``govflow demo``: a seeded citizen applies for the instant-approval matter over gRPC,
the workflow does the rest; prints the timeline (in Chinese, or with ``english`` in
English), the wallet and the verification. It dials the services as every Govflow client
does: over TLS when the settings name a CA (govflow/tls.py)."""

from __future__ import annotations

import asyncio
import time
import uuid

import grpc
from grpc_status import rpc_status

from govflow import tls
from govflow.certificates.v1 import certificates_pb2 as cpb
from govflow.certificates.v1 import certificates_pb2_grpc
from govflow.errors import error_info
from govflow.grpckit import channel
from govflow.identity.v1 import identity_pb2 as ipb
from govflow.identity.v1 import identity_pb2_grpc
from govflow.matters.v1 import matters_pb2 as mpb
from govflow.matters.v1 import matters_pb2_grpc
from govflow.settings import Settings
from govflow_cli.demo_data import DEMO_PASSWORD, person

TERMINAL = {mpb.APPLICATION_STATUS_COMPLETED, mpb.APPLICATION_STATUS_REJECTED,
            mpb.APPLICATION_STATUS_WITHDRAWN, mpb.APPLICATION_STATUS_FAILED}


async def run(settings: Settings, *, matter: str = "matters/senior-citizen-card",
              citizen: str = "wang-fang", timeout: float = 60.0, english: bool = False) -> int:
    who = person(citizen)
    credentials = tls.channel_credentials(settings)
    async with channel(settings.identity_addr, credentials) as ich, \
            channel(settings.certificates_addr, credentials) as cch, \
            channel(settings.matters_addr, credentials) as mch:
        identity = identity_pb2_grpc.IdentityServiceStub(ich)
        certs = certificates_pb2_grpc.CertificatesServiceStub(cch)
        matters = matters_pb2_grpc.MattersServiceStub(mch)
        try:
            login = await identity.Login(ipb.LoginRequest(id_number=who.id_number,
                                                          password=DEMO_PASSWORD), timeout=10)
        except grpc.aio.AioRpcError as err:
            print(f"demo: cannot log in ({err.code().name}: {err.details()}); is `govflow up` running?")
            return 1
        md = (("authorization", f"Bearer {login.tokens.access_token}"),)
        print(f"Logged in as {who.name}.")
        try:
            sub = await matters.SubmitApplication(mpb.SubmitApplicationRequest(
                matter=matter, request_id=f"demo-{uuid.uuid4().hex[:8]}"), metadata=md,
                timeout=20)
            app = sub.application
            print(f"Submitted {app.name} for {matter} (workflow {app.workflow_id}).")
        except grpc.aio.AioRpcError as err:
            # One card per holder: a demo run again shows the application that made it.
            status = rpc_status.from_call(err)
            info = error_info(status) if status is not None else None
            if info is None or info.reason != "RESULT_ALREADY_HELD" or \
                    "application" not in info.metadata:
                raise
            print(f"Not submitted again: {err.details()}\nShowing that application.")
            app = (await matters.GetApplication(mpb.GetApplicationRequest(
                name=info.metadata["application"]), metadata=md, timeout=10)).application
        name = app.name
        deadline = time.monotonic() + timeout
        while app.status not in TERMINAL and time.monotonic() < deadline:
            await asyncio.sleep(0.3)
            app = (await matters.GetApplication(mpb.GetApplicationRequest(name=name),
                                                metadata=md, timeout=10)).application
        print(f"\nStatus: {mpb.ApplicationStatus.Name(app.status).removeprefix('APPLICATION_STATUS_')}")
        print("Timeline:")
        for ev in app.timeline:
            text = ev.message_en if english and ev.message_en else ev.message
            print(f"  {ev.time.ToDatetime().strftime('%H:%M:%S.%f')[:-3]}  {ev.kind:<24} {text}")
        if app.decision_receipt.rule_version:
            print(f"Decision receipt ({app.decision_receipt.rule_version}): "
                  f"{app.decision_receipt.outcome}")
            for line in app.decision_receipt.explanations:
                print(f"  - {line}")
        if not app.result_certificate:
            return 1 if app.status != mpb.APPLICATION_STATUS_COMPLETED else 0
        wallet = await certs.ListCertificates(cpb.ListCertificatesRequest(
            parent=app.applicant), metadata=md, timeout=10)
        print("\nWallet:")
        for c in wallet.certificates:
            mark = "  <- new" if c.name == app.result_certificate else ""
            print(f"  {c.name}  {c.type}{mark}")
        ver = await certs.VerifyCertificate(cpb.VerifyCertificateRequest(
            name=app.result_certificate), metadata=md, timeout=10)
        verdict = "valid" if ver.valid else "INVALID: " + ", ".join(
            cpb.VerificationFailure.Name(f) for f in ver.failures)
        print(f"\nVerification of {app.result_certificate}: {verdict} "
              f"(issuer {ver.certificate.issuer}, key {ver.certificate.key_id})")
        return 0 if ver.valid else 1
