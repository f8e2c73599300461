"""``govflow calendar``: publish and read working-day calendars on a running stack.

    govflow calendar import FILE.yaml [--dry-run]  publish one region's year (platform admin)
    govflow calendar list [--region CN]            the published years
    govflow calendar show 2027 [--region CN]        one year's holidays and adjusted working days

``import`` authenticates with Govflow's admin client credentials (settings, or the secrets
``govflow up`` keeps in its data folder). A bad file is refused with every problem named
and nothing is published.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import pathlib
import sys
from typing import Any

import grpc
import yaml
from grpc_status import rpc_status

from govflow import tls
from govflow.errors import InvalidArgument, field_violations
from govflow.grpckit import channel, outgoing_metadata
from govflow.identity.v1 import identity_pb2_grpc
from govflow.matters.v1 import matters_pb2 as mpb
from govflow.matters.v1 import matters_pb2_grpc
from govflow.service_client import ServiceToken
from govflow.settings import Settings
from services.matters.calendars import year_from_entries

_KEYS = {"region", "year", "source", "holidays", "working_days"}


def read_file(path: pathlib.Path) -> tuple[mpb.CalendarYear | None, dict[str, str]]:
    """The year a YAML file describes, checked with the same rules the service applies
    (every problem named, by its place in the file), or the problems."""
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError, ValueError) as err:
        # ValueError: YAML reads 2027-13-01 as a date and fails to build it.
        return None, {str(path): str(err).splitlines()[0]}
    if not isinstance(doc, dict):
        return None, {str(path): "must be a mapping with region, year, holidays, working_days"}
    problems: dict[str, str] = {}
    unknown = sorted(set(map(str, doc)) - _KEYS)
    if unknown:
        problems["(top level)"] = f"unknown keys: {', '.join(unknown)}"
    year = doc.get("year")
    if not isinstance(year, int):
        problems["year"] = "required, a number such as 2027"
        year = 0
    region, source = str(doc.get("region") or ""), str(doc.get("source") or "")
    try:
        days = year_from_entries(region, year, doc.get("holidays"), doc.get("working_days"),
                                 source)
    except InvalidArgument as err:
        problems.update(err.fields)
        return None, problems
    if problems:
        return None, problems
    return mpb.CalendarYear(
        region=days.region, year=days.year, source=days.source,
        holidays=[mpb.CalendarDay(date=d.isoformat(), name=n)
                  for d, n in sorted(days.holidays.items())],
        working_days=[mpb.CalendarDay(date=d.isoformat(), name=n)
                      for d, n in sorted(days.working_days.items())]), {}


def _violations(err: grpc.aio.AioRpcError) -> list[str]:
    status = rpc_status.from_call(err)
    fields = field_violations(status) if status is not None else {}
    return [f"  {field}: {why}" for field, why in fields.items()]


async def import_year(settings: Settings, path: pathlib.Path, *, dry_run: bool) -> int:
    year, problems = read_file(path)
    if year is None or problems:
        print(f"govflow calendar: {path} refused; nothing was published:", file=sys.stderr)
        for field, why in sorted(problems.items()):
            print(f"  {field}: {why}", file=sys.stderr)
        return 1
    creds = tls.channel_credentials(settings)
    async with channel(settings.identity_addr, creds) as ich, \
            channel(settings.matters_addr, creds) as mch:
        token = ServiceToken(identity_pb2_grpc.IdentityServiceStub(ich),
                             settings.admin_client_id, settings.admin_client_secret)
        matters = matters_pb2_grpc.MattersServiceStub(mch)
        try:
            resp = await matters.PublishCalendarYear(
                mpb.PublishCalendarYearRequest(calendar_year=year, validate_only=dry_run),
                metadata=await token.metadata(), timeout=30)
        except grpc.aio.AioRpcError as err:
            print(f"govflow calendar: {path} refused ({err.code().name}); nothing was "
                  f"published: {err.details()}", file=sys.stderr)
            for line in _violations(err):
                print(line, file=sys.stderr)
            return 1
    c = resp.calendar_year
    if dry_run:
        print(f"{path}: {c.region} {c.year} is valid: {len(c.holidays)} holidays, "
              f"{len(c.working_days)} adjusted working days (not published: --dry-run)")
        return 0
    print(f"published {c.name} (revision {c.revision}): {len(c.holidays)} holidays, "
          f"{len(c.working_days)} adjusted working days; {resp.applications_recomputed} open "
          "application(s) with provisional due times asked to recompute them")
    return 0


async def list_years(settings: Settings, region: str) -> int:
    async with channel(settings.matters_addr, tls.channel_credentials(settings)) as ch:
        stub = matters_pb2_grpc.MattersServiceStub(ch)
        token = ""
        while True:
            resp = await stub.ListCalendarYears(mpb.ListCalendarYearsRequest(
                parent=f"calendars/{region}", page_size=100, page_token=token),
                metadata=outgoing_metadata(), timeout=10)
            for y in resp.calendar_years:
                when = y.publish_time.ToDatetime(tzinfo=dt.UTC).isoformat(timespec="seconds")
                print(f"{y.year}  revision {y.revision}  by {y.published_by}  at {when}  {y.source}")
            token = resp.next_page_token
            if not token:
                return 0


async def show_year(settings: Settings, region: str, year: int) -> int:
    async with channel(settings.matters_addr, tls.channel_credentials(settings)) as ch:
        stub = matters_pb2_grpc.MattersServiceStub(ch)
        try:
            resp = await stub.GetCalendarYear(mpb.GetCalendarYearRequest(
                name=f"calendars/{region}/years/{year}"), metadata=outgoing_metadata(), timeout=10)
        except grpc.aio.AioRpcError as err:
            print(f"govflow calendar: {err.details()}", file=sys.stderr)
            return 1
    y = resp.calendar_year
    doc = {"region": y.region, "year": y.year, "source": y.source,
           "holidays": [{"date": d.date, "name": d.name} for d in y.holidays],
           "working_days": [{"date": d.date, "name": d.name} for d in y.working_days]}
    print(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), end="")
    return 0


def command(settings: Settings, args: Any) -> int:
    try:
        if args.calendar_cmd == "import":
            return asyncio.run(import_year(settings, args.file, dry_run=args.dry_run))
        if args.calendar_cmd == "list":
            return asyncio.run(list_years(settings, args.region))
        return asyncio.run(show_year(settings, args.region, args.year))
    except BrokenPipeError:
        # The reader went away (`calendar list | head`): stop quietly, as other tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
