"""Govflow's Temporal data converter decodes exactly what the SDK's default does (same
payload bytes, same objects, same failures)."""

from __future__ import annotations

import dataclasses
import datetime
import inspect
import types
import typing
from typing import Any

import pytest
from temporalio.api.common.v1 import Payload
from temporalio.converter import DataConverter

from govflow.temporal_data import DATA_CONVERTER
from workflows import models

MODELS = [c for _, c in inspect.getmembers(models, inspect.isclass)
          if dataclasses.is_dataclass(c) and c.__module__ == models.__name__]


def filled(hint: Any, depth: int = 0) -> Any:
    """A value of the hint with every field set (not left at its default)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is str:
        return f"s{depth}"
    if hint is bool:
        return True
    if hint is int:
        return 7 + depth
    if hint is float:
        return 1.5
    if hint is Any:
        return {"any": [1, "two"]}
    if origin is list:
        return [filled(args[0], depth + 1), filled(args[0], depth + 2)]
    if origin is dict:
        return {"k": filled(args[1], depth + 1)}
    if origin in (typing.Union, types.UnionType):
        return filled(next(a for a in args if a is not type(None)), depth)
    if dataclasses.is_dataclass(hint):
        hints = typing.get_type_hints(hint)
        return hint(**{f.name: filled(hints[f.name], depth + 1)
                       for f in dataclasses.fields(hint) if f.init})
    raise AssertionError(f"no sample for {hint!r}")


def test_every_model_is_covered() -> None:
    assert {"ApplicationInput", "TaskRecord", "OfficerAction", "Event", "MatterSpec"} <= \
        {c.__name__ for c in MODELS}


@pytest.mark.parametrize("cls", MODELS, ids=lambda c: c.__name__)
def test_models_encode_and_decode_as_the_sdk_default(cls: type) -> None:
    value = filled(cls)
    ours, sdk = DATA_CONVERTER.payload_converter, DataConverter.default.payload_converter
    payloads = ours.to_payloads([value])
    assert payloads == sdk.to_payloads([value])  # the same bytes on the wire
    decoded = ours.from_payloads(payloads, [cls])[0]
    assert decoded == value
    assert decoded == sdk.from_payloads(payloads, [cls])[0]
    assert type(decoded) is cls
    # A second decode (through the cached plan) gives the same again.
    assert ours.from_payloads(payloads, [cls])[0] == value


def json_payload(text: str) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=text.encode())


def test_unknown_keys_are_ignored_and_defaults_apply_as_the_sdk_does() -> None:
    p = json_payload('{"task": "tasks/1", "officer": "persons/a", "agency": "agencies/x", '
                     '"roles": ["r"], "later_field": 1}')
    ours = DATA_CONVERTER.payload_converter.from_payloads([p], [models.OfficerAction])[0]
    assert ours == models.OfficerAction(task="tasks/1", officer="persons/a",
                                        agency="agencies/x", roles=["r"])
    assert ours == DataConverter.default.payload_converter.from_payloads(
        [p], [models.OfficerAction])[0]


@pytest.mark.parametrize("text, names", [
    ('{"task": "tasks/1", "officer": "persons/a", "agency": "agencies/x"}', "roles"),
    ('{"task": 5, "officer": "persons/a", "agency": "agencies/x", "roles": []}', "task"),
    ('{"task": "t", "officer": "o", "agency": "a", "roles": [3]}', "roles"),
    ('["not", "an", "object"]', "not dict"),
])
def test_bad_payloads_fail_as_the_sdk_default_does(text: str, names: str) -> None:
    p = json_payload(text)
    with pytest.raises((TypeError, RuntimeError)) as ours:
        DATA_CONVERTER.payload_converter.from_payloads([p], [models.OfficerAction])
    with pytest.raises((TypeError, RuntimeError)) as sdk:
        DataConverter.default.payload_converter.from_payloads([p], [models.OfficerAction])
    assert type(ours.value) is type(sdk.value)
    chain = []
    err: BaseException | None = ours.value
    while err is not None:
        chain.append(str(err))
        err = err.__cause__
    assert names in " / ".join(chain)


@dataclasses.dataclass
class WithLateField:
    a: str
    b: int = dataclasses.field(default=0, init=False)


def test_fields_outside_init_are_restored() -> None:
    v = WithLateField("x")
    v.b = 4
    p = DATA_CONVERTER.payload_converter.to_payloads([v])
    assert DATA_CONVERTER.payload_converter.from_payloads(p, [WithLateField])[0].b == 4


@dataclasses.dataclass
class Inner:
    when: datetime.datetime
    tags: set[str]
    pair: tuple[int, int]


@dataclasses.dataclass
class Outer:
    inner: Inner
    by_key: dict[str, Inner]
    items: list[Inner | None]
    late: WithLateField
    text: str = "é \u2028 \"q\""


def test_shallow_encoding_writes_what_asdict_writes() -> None:
    """Values asdict treats specially (nested dataclasses in lists, dicts and tuples, sets,
    datetimes, fields outside init, None) come out as the same bytes."""
    inner = Inner(datetime.datetime(2026, 12, 3, 9, 30, tzinfo=datetime.UTC),
                  {"b"}, (1, 2))
    late = WithLateField("x")
    late.b = 9
    value = Outer(inner, {"k": inner}, [inner, None], late)
    ours = DATA_CONVERTER.payload_converter.to_payloads([value, [value, 3], None])
    assert ours == DataConverter.default.payload_converter.to_payloads([value, [value, 3], None])
    assert b'"b":9' in ours[0].data and b'"tags":["b"]' in ours[0].data
    # What the SDK cannot encode (here a dataclass's class, not an instance), neither do we.
    for conv in (DATA_CONVERTER.payload_converter, DataConverter.default.payload_converter):
        with pytest.raises(TypeError):
            conv.to_payloads([Inner])


def test_field_hints_are_resolved_once_per_class() -> None:
    from govflow import temporal_data

    p = DATA_CONVERTER.payload_converter.to_payloads([filled(models.TaskRecord)])
    DATA_CONVERTER.payload_converter.from_payloads(p, [models.TaskRecord])
    plan = temporal_data._PLANS[models.TaskRecord]
    assert [name for name, _, _, _ in plan] == [f.name for f in dataclasses.fields(models.TaskRecord)]
    DATA_CONVERTER.payload_converter.from_payloads(p, [models.TaskRecord])
    assert temporal_data._PLANS[models.TaskRecord] is plan
