"""The words timeline messages are made of, in Simplified Chinese (the primary language)
beside the English ones: names of the codes the workflow knows (assurance levels, roles,
certificate states, decisions, statuses) and how a time reads in Chinese.

Pure functions of their arguments, so the workflow may call them (no clock, no I/O).
"""

from __future__ import annotations

import datetime as dt

from workflows.models import CHINA_TZ

ASSURANCE_ZH = {"account": "账号认证", "real_name": "实名认证", "face": "人脸核验"}
ROLE_ZH = {"acceptor": "受理人员", "reviewer": "审核人员", "approver": "审批人员",
           "supervisor": "部门负责人", "admin": "管理员"}
CERT_STATE_ZH = {"SUSPENDED": "已中止", "REVOKED": "已撤销", "EXPIRED": "已过期"}
DECISION_ZH = {"APPROVE": "同意", "REJECT": "不予批准", "REQUEST_SUPPLEMENT": "要求补正材料"}
STATUS_ZH = {"COMPLETED": "已办结", "APPROVED": "已审批通过", "REJECTED": "未予批准",
             "WITHDRAWN": "已撤回", "FAILED": "办理失败", "REVOKED": "已撤销"}
# The time limits a calendar's publication may move (Clock.label), by label.
CLOCK_ZH = {"promised": "承诺办结时限", "supplement": "补正期限", "pledge check": "承诺核查时间"}
PROVISIONAL_ZH = "暂按周一至周五计算：相关年度的节假日安排尚未发布"
PROVISIONAL_EN = ("provisional: counted Monday to Friday where no holiday calendar is "
                  "published yet")


def zh_time(when: dt.datetime) -> str:
    """``when`` as it reads in China: Beijing time to the minute."""
    return when.astimezone(CHINA_TZ).strftime("%Y-%m-%d %H:%M")


def named(words: dict[str, str], code: str) -> str:
    """The Chinese name of ``code`` (the code itself when there is none)."""
    return words.get(code, code)


def zh_list(items: list[str]) -> str:
    return "、".join(items)
