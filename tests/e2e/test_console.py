"""The web console (console/, served by the gateway at /) in a real browser: Debian's
chromium driven by playwright-core, against the session's stack. A person with an
authenticator logs in with the one-time code the form asks for; a fresh senior finds the
senior-citizen card by its Chinese name, applies and finds it (with its QR code and access
log) in the wallet; Li Wei applies for individual-business-registration and officers of
sz-amr decide its three steps in the workbench: the acceptor claims and approves, a
supervisor who also reviews reassigns the review to the reviewer, who approves it without
claiming, one rejection without reasons being refused with the server's message; a rating
of 2 opens a follow-up the supervisor (Sun Li) sees; a second application gets a
supplement request, is supplied from the wallet and withdrawn; the English switch shows the
English names. Screenshots of the main pages go to test-artifacts/console/<backend>/
(gitignored), with what the script saw (seen.json).

The stack runs in this test's event loop, so node runs as an asyncio subprocess.
"""

from __future__ import annotations

import asyncio
import json
import pathlib
import re
import shutil

import pyotp
import pytest

from govflow.identity.v1 import identity_pb2 as ipb
from govflow_cli.demo_data import DEMO_PASSWORD, add_senior, person
from services.gateway.server import CONSOLE_DIST
from tests.stack import Stack

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "console" / "test" / "console-e2e.mjs"
CHROMIUM = pathlib.Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts" / "console"
PAGES = ("citizen-login-otp-375", "citizen-login-375", "citizen-catalogue-375", "citizen-matter-375",
         "citizen-application-375", "citizen-wallet-375", "officer-task-1280",
         "officer-reassigned-1280",
         "officer-inbox-1280", "officer-review-1280", "officer-refused-1280",
         "officer-stats-1280", "officer-inbox-375", "citizen-result-375", "officer-follow-up-1280",
         "citizen-supplement-375", "citizen-catalogue-en-1280")


def preconditions() -> str:
    if not CHROMIUM.exists():
        pytest.fail("/usr/bin/chromium is missing: ./govflow.sh test installs it with apt "
                    "(apt-get install -y chromium)")
    found = shutil.which("node")
    if found is None:
        pytest.fail("node is not installed: the console's browser test needs Node 20+")
    if not (ROOT / "node_modules" / "playwright-core").exists():
        pytest.fail("the npm workspace is not installed: ./govflow.sh test runs `npm ci`")
    if not (CONSOLE_DIST / "index.html").exists():
        pytest.fail("the console is not built: ./govflow.sh test builds it "
                    "(npm run build -w console)")
    return found


async def test_console_in_a_browser(stack: Stack) -> None:
    node = preconditions()
    backend = "postgres" if stack.settings.matters_database_url else "sqlite"
    artifacts = ARTIFACTS / backend
    shutil.rmtree(artifacts, ignore_errors=True)
    senior = await add_senior(stack.identity, stack.certificates, await stack.service_md())
    # Another new person, with a confirmed authenticator app (TOTP).
    otp_person = await add_senior(stack.identity, stack.certificates, await stack.service_md())
    md = await stack.login(otp_person.id_number, DEMO_PASSWORD)
    enrolled = await stack.identity.EnrollTotp(ipb.EnrollTotpRequest(person=otp_person.name),
                                               metadata=md)
    await stack.identity.ConfirmTotp(ipb.ConfirmTotpRequest(
        person=otp_person.name, one_time_code=pyotp.TOTP(enrolled.secret).now()), metadata=md)
    # A supervisor who also reviews at sz-amr: a supervisor's inbox holds the steps of their
    # roles (and escalations), so this one sees the review step, and reassigns it.
    admin = await stack.service_md()
    lead = await add_senior(stack.identity, stack.certificates, admin)
    await stack.identity.SetOfficialRoles(ipb.SetOfficialRolesRequest(official=ipb.Official(
        person=lead.name, agency="agencies/sz-amr",
        roles=[ipb.ROLE_REVIEWER, ipb.ROLE_SUPERVISOR])), metadata=admin)
    config = {
        "senior": [senior.id_number, DEMO_PASSWORD],
        "citizen": [person("li-wei").id_number, DEMO_PASSWORD],
        "acceptor": [person("chen-jing").id_number, DEMO_PASSWORD],
        "reviewer": [person("zhao-lei").id_number, DEMO_PASSWORD],
        "supervisor": [person("sun-li").id_number, DEMO_PASSWORD],
        "agency": "agencies/sz-amr",
        "artifacts": str(artifacts),
        "totp": [otp_person.id_number, DEMO_PASSWORD, enrolled.secret],
        "lead": [lead.id_number, DEMO_PASSWORD],
        "reviewerPerson": stack.seeded.persons["zhao-lei"],
    }
    proc = await asyncio.create_subprocess_exec(
        node, str(SCRIPT), stack.gateway_url, json.dumps(config), cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 420)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    lines = out.decode().strip().splitlines()
    assert lines, f"the browser script printed nothing:\n{err.decode()}"
    seen = json.loads(lines[-1])
    (artifacts / "seen.json").write_text(json.dumps(seen, ensure_ascii=False, indent=1))
    assert proc.returncode == 0 and "failedAt" not in seen, (
        f"failed at {seen.get('failedAt')}: {seen.get('error')}\n{err.decode()}")

    assert "OTP_REQUIRED" in seen["otpAsked"] and "需要动态口令" in seen["otpAsked"]

    # Chinese first (issue 21, item 4): the catalogue, materials, certificate types and the
    # timeline in Chinese; English beside them behind the switch.
    assert "senior-citizen-card" in seen["searched"], seen["searched"]  # the server's search
    assert "individual-business-registration" not in seen["searched"], seen["searched"]
    assert seen["matterTitle"] == "老年人优待证", seen["matterTitle"]
    assert all("居民" in x for x in seen["willPull"]), seen["willPull"]
    assert seen["issuedLabel"] == "结果证照已发放至证照夹", seen["issuedLabel"]
    # The timeline's own messages are Chinese (message); English (message_en) behind the switch.
    assert "已签发至电子证照夹" in seen["issuedDetail"], seen["issuedDetail"]
    assert seen["seniorDetails"] and all(re.search(r"[\u4e00-\u9fff]", d)
                                         for d in seen["seniorDetails"]), seen["seniorDetails"]
    assert any(d.startswith("Submitted for") for d in seen["englishDetails"]), seen["englishDetails"]
    assert seen["reviewTitle"] == "审查 · 个体工商户设立登记", seen["reviewTitle"]
    assert seen["englishTitle"] == "Senior citizen preferential card", seen["englishTitle"]

    # The senior card: instant approval shows at once, the card is in the wallet.
    assert seen["instantMs"] < 5000, seen["instantMs"]  # measured from the click, on 2 cores
    timeline = seen["seniorTimeline"]
    assert timeline[0] == "submitted"
    assert "instant_approved" in timeline and "certificate_issued" in timeline
    assert any("passed" in line for line in seen["seniorReceipt"]), seen["seniorReceipt"]
    assert "senior-citizen-card" in seen["wallet"]
    assert seen["qr"] is True
    assert seen["accessRows"] >= 1  # the worker read the ID card for the application

    # Three steps, two officers; the citizen sees the result.
    assert seen["application"].startswith("applications/")
    assert "已办结" in seen["citizenStatus"], seen["citizenStatus"]
    assert seen["citizenResult"] is True
    # A rejection without reasons: refused by the server, its message shown, in Chinese.
    refusal = seen["refusal"]
    assert "填写的内容有误" in refusal or "不能进行此操作" in refusal, refusal
    assert "reason" in refusal.lower(), refusal  # the server's own words name the field
    # The supervisor reassigned the review: done, the reviewer now holds it, and the
    # reviewer decided it without claiming it first.
    assert "转派" in seen["reassigned"], seen["reassigned"]
    reviewer_id = config["reviewerPerson"].split("/")[1][:8]
    assert "经办人" in seen["reassignedTo"] and reviewer_id in seen["reassignedTo"], seen["reassignedTo"]
    assert seen["reviewClaimShown"] == 0

    # A rating of 2 opens a follow-up for the supervisor; a supplement asked, supplied from
    # the wallet, then a withdrawal.
    assert "rating of 2" in seen["followUp"], seen["followUp"]
    second = seen["secondTimeline"]
    assert "supplement_requested" in second and "materials_supplied" in second, second
    assert "withdrawn" in second, second

    assert "Wallet" in seen["english"], seen["english"]
    assert seen["consoleErrors"] == [], seen["consoleErrors"]
    assert seen["overflow"] == [], seen["overflow"]
    for page in PAGES:
        assert (artifacts / f"{page}.png").stat().st_size > 5000, page
