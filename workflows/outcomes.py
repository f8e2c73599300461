"""How an application's path ends other than by its result, and the statuses it ends in.
Pure: passed through the workflow sandbox."""

from __future__ import annotations

DECIDED = {"APPROVED", "COMPLETED", "REJECTED", "WITHDRAWN", "REVOKED", "FAILED"}
OPEN_TASK = ("OPEN", "CLAIMED")
# The withdrawal reasons the platform gives (an applicant's own stays as written).
WITHDRAW_ZH = {"withdrawn by the applicant": "申请人主动撤回", "life event withdrawn": "一件事已撤回"}


class Refused(Exception):
    """The application ends refused, with reasons (English, as recorded on the
    application) and the same in Chinese for the timeline (``reasons_zh``; by default the
    reasons themselves, for words people wrote, such as an officer's)."""

    def __init__(self, reasons: list[str], reasons_zh: list[str] | None = None) -> None:
        super().__init__("; ".join(reasons))
        self.reasons = reasons
        self.reasons_zh = reasons_zh if reasons_zh is not None else reasons


class Withdrawn(Exception):
    """The applicant withdrew; undo and end."""
