"""GetStatistics' rules: who sees which figures, and how they are counted (applications
by status; of the decided ones, the on-time rate, average working days and rating)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable

from govflow import auth
from govflow.errors import PermissionDenied
from services.matters import working_days as wd
from services.matters.domain.applications import Application, aware


@dataclasses.dataclass(frozen=True, slots=True)
class StatusCount:
    matter_code: str
    agency: str
    status: str
    count: int


@dataclasses.dataclass
class MatterStatistics:
    """One matter at one agency (the fields of the MatterStatistics message)."""

    matter: str
    agency: str
    counts: dict[str, int] = dataclasses.field(default_factory=dict)
    on_time_rate: float = 0.0
    average_working_days: float = 0.0
    decided: int = 0
    average_rating: float = 0.0


def scope(p: auth.Principal, f: dict[str, str]) -> dict[str, str]:
    """The filter narrowed to what ``p`` may see: officials their own agency's figures,
    administrators and services everything; anyone else nothing (PERMISSION_DENIED)."""
    if p.kind == auth.OFFICIAL:
        if f.get("agency", p.agency) != p.agency:
            raise PermissionDenied("officials see their own agency's figures",
                                   reason="AGENCY_ONLY")
        return {**f, "agency": p.agency}
    if not (p.is_admin or p.kind == auth.SERVICE):
        raise PermissionDenied("statistics are for officials and administrators",
                               reason="OFFICIALS_ONLY")
    return f


def _utc(t: dt.datetime) -> dt.datetime:
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


def years_needed(decided: Iterable[Application]) -> set[int]:
    """The calendar years (mainland time) the decided applications' durations span."""
    return {_utc(t).astimezone(wd.CHINA_TZ).year for a in decided
            for t in (a.create_time, a.decided_time) if t is not None}


def compute(counts: Iterable[StatusCount], decided: Iterable[Application],
            calendar: wd.Calendar) -> list[MatterStatistics]:
    """The figures per (matter, agency), in that order; working days on ``calendar``."""
    out: dict[tuple[str, str], MatterStatistics] = {}
    for c in counts:
        item = out.setdefault((c.matter_code, c.agency),
                              MatterStatistics(matter=f"matters/{c.matter_code}", agency=c.agency))
        item.counts[c.status] = c.count
    sums: dict[tuple[str, str], list[float]] = {}
    for a in decided:
        if a.decided_time is None:
            continue  # not decided: not counted here
        acc = sums.setdefault((a.matter_code, a.agency), [0, 0, 0, 0, 0])
        end, due = _utc(a.decided_time), aware(a.due_time)
        acc[0] += 1
        acc[1] += 1 if due is None or end <= due else 0
        acc[2] += wd.working_days_between(_utc(a.create_time), end, calendar)
        if a.rating:
            acc[3] += a.rating
            acc[4] += 1
    for key, (n, on_time, days, rating_sum, rated) in sums.items():
        found = out.get(key)
        if found is None:
            continue
        found.decided = int(n)
        found.on_time_rate = on_time / n
        found.average_working_days = days / n
        found.average_rating = rating_sum / rated if rated else 0.0
    return [out[k] for k in sorted(out)]
