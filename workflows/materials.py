"""An application's applicant and materials, as its workflow gathers and judges them.

One ``gather`` call reads the applicant and pulls every material that comes from
e-certificates (each under its own consent grant); the workflow then judges each pulled
certificate, lets pledges (告知承诺) and uploads fill the gaps where the matter allows, asks
the applicant to supply what is missing (the statutory clock stands still meanwhile) and
turns it all into the facts the rules read. Pledged materials are checked after the
approval; the result certificate is revoked or suspended when one is still not held.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows import rules
    from workflows.models import (
        CHINA_TZ,
        ApplicantAction,
        ApplicantFacts,
        ApplicationResult,
        Gathered,
        GatherRequest,
        MaterialSpec,
        PulledCertificate,
        PullRequest,
        StatusChange,
        assurance_meets,
    )
    from workflows.outcomes import Refused
    from workflows.timeline_wording import (
        ASSURANCE_ZH,
        CERT_STATE_ZH,
        PROVISIONAL_ZH,
        named,
        zh_list,
        zh_time,
    )

from workflows.clocks import provisional_note

if TYPE_CHECKING:
    from workflows.application import ApplicationWorkflow

Pulled = dict[str, PulledCertificate | None]


class Materials:
    def __init__(self, wf: ApplicationWorkflow) -> None:
        self.wf = wf
        self.matter = wf.inp.matter
        # Why a material could not be pulled, by material code (a certificate's state).
        self.problems: dict[str, tuple[str, str]] = {}  # (Chinese, English)
        self.pledged: list[MaterialSpec] = []
        self.uploads: dict[str, str] = {}

    async def gather(self, materials: list[MaterialSpec], *,
                     with_applicant: bool = False) -> Gathered:
        """One call for the applicant (``with_applicant``) and the materials that come from
        e-certificates."""
        inp = self.wf.inp
        req = GatherRequest(
            application_id=inp.application_id,
            pulls={mat.code: PullRequest(
                application_id=inp.application_id, holder=inp.applicant,
                certificate_types=mat.certificate_types,
                purpose=f"{self.matter.rule_version} material {mat.code}")
                for mat in materials if mat.certificate_types},
            applicant=inp.applicant if with_applicant else "",
            submitted_by=inp.submitted_by,
            assurance_needed=self.matter.assurance_level)
        if not req.pulls and not req.applicant:
            return Gathered(applicant=None, materials={})  # nothing to fetch: no call
        got: Gathered = await self.wf.main_activity("gather", req, result_type=Gathered,
                                                    withdrawable=True)
        return got

    async def verify_applicant(self, got: Gathered) -> ApplicantFacts:
        applicant = got.applicant
        assert applicant is not None
        self.wf.interested = list(applicant.interested)
        need = self.matter.assurance_level
        if not assurance_meets(applicant.assurance_level, need):
            raise Refused([f"identity assurance {applicant.assurance_level} is below the "
                           f"{need} this matter needs"],
                          [f"申请人身份认证等级（{named(ASSURANCE_ZH, applicant.assurance_level)}）"
                           f"低于本事项要求的{named(ASSURANCE_ZH, need)}"])
        self.wf.timeline.add("applicant_verified",
                             f"申请人 {applicant.display_name} 身份已核验"
                             f"（{named(ASSURANCE_ZH, applicant.assurance_level)}）",
                             f"{applicant.display_name} verified ({applicant.assurance_level})",
                             interested=self.wf.interested or None)
        return applicant

    async def take(self, pulled: Pulled) -> Pulled:
        """Takes each material pulled from e-certificates; pledges and uploads fill the gaps."""
        found: Pulled = {}
        uploads_needed: list[str] = []
        refused: list[str] = []
        refused_zh: list[str] = []
        for mat in self.matter.materials:
            cert = self.judge(mat, pulled.get(mat.code))
            found[mat.code] = cert
            if cert is not None:
                continue
            if mat.pledge_allowed and mat.code in self.wf.inp.pledges:
                self.pledged.append(mat)
                self.wf.timeline.add("material_pledged",
                                     f"{mat.display_name}：申请人已作出告知承诺，审批后核查",
                                     f"{mat.name_en}: the applicant pledged to meet it "
                                     "(告知承诺); checked after approval")
            elif mat.upload_allowed:
                uploads_needed.append(mat.code)
            elif mat.required:
                why_zh, why = self.problems.get(mat.code, ("未查到相关证照", "no certificate found"))
                refused.append(f"required material missing: {mat.name_en} ({why})")
                refused_zh.append(f"缺少必要材料：{mat.display_name}（{why_zh}）")
                self.wf.timeline.add("material_missing", f"{mat.display_name}：{why_zh}",
                                     f"{mat.name_en}: {why}")
        if refused:
            raise Refused(refused, refused_zh)
        if uploads_needed:
            supplied = await self.ask(uploads_needed)
            found.update(await self.pull_again(supplied))
        return found

    async def pull(self, materials: list[MaterialSpec]) -> Pulled:
        """Pulls ``materials`` again (one call) and judges each: the usable ones by code."""
        got = await self.gather(materials)
        return {mat.code: self.judge(mat, got.materials.get(mat.code)) for mat in materials}

    def judge(self, mat: MaterialSpec, cert: PulledCertificate | None) -> PulledCertificate | None:
        """A pulled material in the timeline: the certificate if it is usable, else None
        (and why, in ``problems``)."""
        add = self.wf.timeline.add
        if cert is not None and cert.valid:
            self.problems.pop(mat.code, None)
            add("material_verified", f"{mat.display_name}：已调取并核验证照 {cert.name}",
                f"{mat.name_en}: {cert.name} pulled and verified")
            return cert
        if cert is not None and cert.state:
            # Held, but not usable: name the certificate and its state.
            state_zh = named(CERT_STATE_ZH, cert.state)
            self.problems[mat.code] = (f"证照 {cert.name} {state_zh}",
                                       f"{cert.name} is {cert.state.lower()}")
            add("material_invalid", f"{mat.display_name}：证照 {cert.name} {state_zh}，不能使用",
                f"{mat.name_en}: {cert.name} is {cert.state.lower()}, so it cannot be used")
        elif cert is not None:
            failures = ", ".join(cert.failures)
            self.problems[mat.code] = (f"证照 {cert.name} 核验未通过：{failures}",
                                       f"{cert.name} failed verification: {failures}")
            add("material_invalid",
                f"{mat.display_name}：证照 {cert.name} 核验未通过（{failures}）",
                f"{mat.name_en}: {cert.name} failed verification ({failures})")
        return None

    async def pull_again(self, supplied: ApplicantAction) -> Pulled:
        by_code = {m.code: m for m in self.matter.materials}
        again: list[MaterialSpec] = []
        for item in supplied.materials:
            if item.upload_uri:
                self.uploads[item.code] = item.upload_uri
                name = by_code[item.code].display_name if item.code in by_code else item.code
                self.wf.timeline.add("material_uploaded",
                                     f"{name}：已上传 {item.upload_uri}"
                                     f"（sha256 {item.upload_sha256 or '未提供'}）",
                                     f"{item.code}: upload {item.upload_uri} "
                                     f"(sha256 {item.upload_sha256 or 'not given'})")
            elif item.code in by_code:
                again.append(by_code[item.code])
        return await self.pull(again) if again else {}

    async def ask(self, missing: list[str]) -> ApplicantAction:
        """Asks the applicant to supply ``missing``; the statutory clock stops meanwhile."""
        wf = self.wf
        paused_at = workflow.now()
        clock = await wf.clocks.start("supplement", paused_at, self.matter.supplement_limit_days,
                                      "supplement")
        wf.supplied = None
        _, note_en = provisional_note(clock)
        inline_zh, _ = provisional_note(clock, inline=True)
        wf.timeline.add("supplement_requested",
                        "请补正材料：" + zh_list(self.names(missing))
                        + f"（补正期限 {zh_time(clock.due)}{inline_zh}）",
                        "Please supply: " + ", ".join(missing) + note_en,
                        status="SUPPLEMENT_REQUESTED", missing_materials=missing,
                        supplement_due_time=clock.due.isoformat())
        if not await wf.wait_until(lambda: wf.supplied is not None, lambda: clock.due):
            raise Refused([f"the requested materials were not supplied by {clock.due.isoformat()}"],
                          [f"未在 {zh_time(clock.due)} 前补正所需材料"])
        wf.clocks.stop("supplement")
        supplied = wf.supplied
        assert supplied is not None
        promised = wf.clocks.get("application")
        if promised is not None:
            # The statutory clock stood still while the applicant was asked.
            stood: dt.timedelta = workflow.now() - paused_at
            promised.paused += stood
            promised.due += stood
            wf.clocks.changed()
        codes = [m.code for m in supplied.materials]
        wf.timeline.add("materials_supplied", "已补正材料：" + zh_list(self.names(codes)),
                        "Supplied: " + ", ".join(codes),
                        status="IN_REVIEW", actor=supplied.caller, missing_materials=[],
                        due_time=promised.due.isoformat() if promised else "",
                        due_provisional=bool(promised and promised.provisional))
        return supplied

    async def check_pledges(self, result: ApplicationResult) -> None:
        """告知承诺: approved on the pledge; checked later; the result goes if it failed."""
        wf, m = self.wf, self.matter
        clock = await wf.clocks.start("pledge", workflow.now(), m.pledge_check_days,
                                      "pledge check")
        _, note_en = provisional_note(clock)
        wf.timeline.add("pledge_check_scheduled",
                        f"承诺的材料将于 {zh_time(clock.due)} 核查"
                        + (f"（{PROVISIONAL_ZH}）" if clock.provisional else ""),
                        f"Pledged materials will be checked at {clock.due.isoformat()}"
                        + note_en)
        await wf.wait_until(lambda: False, lambda: clock.due)
        wf.clocks.stop("pledge")
        held = await self.pull(self.pledged)
        missing = [mat for mat in self.pledged if held[mat.code] is None]
        if not missing:
            wf.timeline.add("pledge_verified", "承诺的材料均已核验",
                            "Every pledged material is now held")
            return
        target = "REVOKED" if m.pledge_failure == "revoke" else "SUSPENDED"
        reason = "pledge not kept: " + ", ".join(mat.name_en for mat in missing)
        await wf.main_activity("change_certificate_status",
                               StatusChange(certificate=result.result_certificate,
                                            status=target, reason=reason), withdrawable=True)
        result.status = "REVOKED"
        result.reasons = [reason]
        wf.timeline.add("pledge_check_failed",
                        f"未履行告知承诺：{zh_list([mat.display_name for mat in missing])}；"
                        f"结果证照 {result.result_certificate} {named(CERT_STATE_ZH, target)}",
                        f"{reason}; {result.result_certificate} {target.lower()}",
                        status="REVOKED", reasons=[reason])

    def facts(self, applicant: ApplicantFacts, materials: Pulled) -> dict[str, Any]:
        today = workflow.now().astimezone(CHINA_TZ).date()
        facts = rules.build_facts(applicant, materials, today)
        for code, uri in self.uploads.items():
            facts[f"materials.{code}.upload"] = uri
        for mat in self.pledged:
            facts[f"materials.{mat.code}.pledged"] = True
        return facts

    def names(self, codes: list[str]) -> list[str]:
        """The (Chinese) names of the matter's materials among ``codes``; anything else (an
        officer's description) as it is."""
        names = {m.code: m.display_name for m in self.matter.materials}
        return [names.get(c, c) for c in codes]
