"""How an application's path ends other than by its result, and the statuses it ends in.
Pure: passed through the workflow sandbox."""

from __future__ import annotations

from temporalio.exceptions import ApplicationError

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


class CallRefused(ApplicationError):
    """A local activity of the path refused for good. The SDK hands the workflow the
    activity's own ApplicationError there (a regular activity's comes wrapped in an
    ActivityError that names it), so the path names the call itself. Still an
    ApplicationError: one that escapes the path fails the workflow as the refusal would."""

    def __init__(self, activity_type: str, refusal: ApplicationError) -> None:
        super().__init__(refusal.message, *refusal.details, type=refusal.type,
                         non_retryable=True)
        self.activity_type = activity_type
