"""Matters' rules in plain Python — no gRPC, no SQL, no Temporal:

- ``definition``    the matter definition: YAML parsed and validated into ``MatterSpec``
- ``applications``  applications and tasks as dataclasses; who may see and act on what,
                    submission, one result per holder, ratings, how tasks move
- ``statistics``    who sees which figures and how they are counted
- the working-day rules are in ``services/matters/working_days.py``

The rules used across the service are re-exported here (``domain.may_see``)."""

from services.matters.domain.applications import (
    DECIDED_STATUSES,
    TERMINAL,
    aware,
    check_applicant_kind,
    check_may_rate,
    check_not_in_life_event,
    check_official,
    check_pledges,
    check_rating,
    holding_key,
    is_party,
    may_see,
    needs_follow_up,
    refuse_if_held,
    require_party,
    same_request,
    submission_request,
)

__all__ = ["DECIDED_STATUSES", "TERMINAL", "aware", "check_applicant_kind", "check_may_rate",
           "check_not_in_life_event", "check_official", "check_pledges", "check_rating",
           "holding_key", "is_party", "may_see", "needs_follow_up", "refuse_if_held",
           "require_party", "same_request", "submission_request"]
