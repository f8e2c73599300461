"""The data converter every Govflow Temporal client and worker uses.

It is the SDK's default (JSON on the wire, the same payloads byte for byte, so histories
written before it replay unchanged) with one addition through the SDK's own extension
point, a ``JSONTypeConverter``: a dataclass's field type hints are resolved once per class
instead of at every payload. The SDK's ``value_to_type`` calls ``typing.get_type_hints`` on
each dataclass it decodes, which with postponed annotations (``from __future__ import
annotations`` in workflows/models.py) evaluates every field's annotation string again:
115 µs for one TaskRecord here, most of the matters service's own time in a DecideTask
(py-spy during `govflow bench --only decision`), and a share of every activity's.

Encoding keeps the SDK's JSON encoder and bytes but turns a dataclass into a shallow dict
of its fields (the encoder recurses into the values itself) instead of the SDK's
``dataclasses.asdict``, which deep-copies every value and calls ``isinstance`` several
times per field. Inside the workflow sandbox ``isinstance`` is a thread-local wrapper that
unwraps both arguments, so asdict was ~23% of the decision Update's activation CPU
(cProfile in the worker during figure 3 of docs/performance.md).
"""

from __future__ import annotations

import dataclasses
import typing
import weakref
from collections.abc import Sequence
from typing import Any

from temporalio.client import Client, Interceptor
from temporalio.converter import (
    AdvancedJSONEncoder,
    CompositePayloadConverter,
    DataConverter,
    DefaultPayloadConverter,
    JSONPlainPayloadConverter,
    JSONTypeConverter,
    value_to_type,
)
from temporalio.runtime import Runtime
from temporalio.service import TLSConfig

# Field plans by class, shared by every converter in the process (the workflow sandbox makes
# a converter per workflow run). Weak: classes the sandbox imports afresh for a run (modules
# not passed through) go with it. Each field: name, hint, whether it is an __init__
# argument, and for the commonest hints (str, list[str], bool, int) the exact type of the
# raw JSON value that is taken as it is (as the SDK would return it), else None.
Plan = tuple[tuple[str, Any, bool, type | None], ...]
_PLANS: weakref.WeakKeyDictionary[type, Plan] = weakref.WeakKeyDictionary()


def _exact(hint: Any) -> type | None:
    if hint is str or hint is bool or hint is int:
        return hint
    if typing.get_origin(hint) is list and typing.get_args(hint) == (str,):
        return list  # of str, checked item by item
    return None


class DataclassFields(JSONTypeConverter):
    """Decodes dataclasses as the SDK does (fields by name, unknown keys ignored, missing
    required fields fail at construction, init=False fields restored), with each class's
    field hints resolved once. Any other hint is left to the SDK.

    Inside the workflow sandbox every ``isinstance`` is a wrapper that unwraps both of its
    arguments, and the SDK's ``value_to_type`` makes a dozen such checks per value (this
    converter's own among them, as the SDK asks it first about every nested value), so
    the checks here are on ``type(x) is ...`` and values of exactly the field's type skip
    ``value_to_type``: decoding an OfficerAction (three list[str] fields) was a third of
    the decision Update's activation in cProfile."""

    def __init__(self) -> None:
        self._converters: list[JSONTypeConverter] = [self]

    @staticmethod
    def _plan(cls: type) -> Plan:
        plan = _PLANS.get(cls)
        if plan is None:
            hints = typing.get_type_hints(cls)
            plan = tuple((f.name, hints[f.name], f.init, _exact(hints[f.name]))
                         for f in dataclasses.fields(cls))
            _PLANS[cls] = plan
        return plan

    def to_typed_value(self, hint: type, value: Any) -> Any:
        # type(hint) is type: a plain class (generic aliases, unions and classes with their
        # own metaclass go to the SDK, which decodes them as it always does).
        if type(hint) is not type or not hasattr(hint, "__dataclass_fields__"):
            return JSONTypeConverter.Unhandled
        if type(value) is not dict and not isinstance(value, dict):
            raise TypeError(f"Cannot convert to dataclass {hint}, value is {type(value)} not dict")
        init: dict[str, Any] = {}
        late: dict[str, Any] = {}
        for name, field_hint, in_init, exact in self._plan(hint):
            raw = value.get(name, dataclasses.MISSING)
            if raw is dataclasses.MISSING:
                continue
            kind = type(raw)
            if kind is exact and (kind is not list or all(type(v) is str for v in raw)):
                converted: Any = list(raw) if kind is list else raw
            else:
                try:
                    converted = value_to_type(field_hint, raw, self._converters)
                except Exception as err:
                    raise TypeError(f"Failed converting field {name} on dataclass {hint}") \
                        from err
            (init if in_init else late)[name] = converted
        obj = hint(**init)
        for name, converted in late.items():
            object.__setattr__(obj, name, converted)
        return obj


# Field names by dataclass, for encoding; None for a class that is not one.
_NAMES: weakref.WeakKeyDictionary[type, tuple[str, ...] | None] = weakref.WeakKeyDictionary()


class ShallowDataclassEncoder(AdvancedJSONEncoder):
    """The SDK's encoder, with dataclasses as {field: value} (no deep copy; nested
    dataclasses, lists, sets and datetimes come back here as the encoder reaches them, so
    the JSON is the same as from ``asdict``)."""

    def default(self, o: Any) -> Any:
        cls = type(o)
        try:
            names = _NAMES[cls]
        except KeyError:
            names = (tuple(f.name for f in dataclasses.fields(cls))
                     if dataclasses.is_dataclass(cls) else None)
            try:
                _NAMES[cls] = names
            except TypeError:  # a type that takes no weak reference
                pass
        if names is None:
            return super().default(o)
        return {name: getattr(o, name) for name in names}


class _JsonPlain(JSONPlainPayloadConverter):
    def __init__(self) -> None:
        super().__init__(encoder=ShallowDataclassEncoder,
                         custom_type_converters=[DataclassFields()])


class PayloadConverter(CompositePayloadConverter):
    """The SDK's default encodings, in its order, with the JSON one encoding dataclasses
    through ShallowDataclassEncoder and decoding them through DataclassFields."""

    def __init__(self) -> None:
        super().__init__(*[
            _JsonPlain() if isinstance(c, JSONPlainPayloadConverter) else c
            for c in DefaultPayloadConverter.default_encoding_payload_converters])


DATA_CONVERTER = dataclasses.replace(DataConverter.default,
                                     payload_converter_class=PayloadConverter)


# The SDK runtime this process's clients use (its metrics endpoint, govflow/metrics.py);
# None: the SDK's default runtime.
_runtime: Runtime | None = None


def use_runtime(runtime: Runtime | None) -> None:
    """Makes ``runtime`` the one every later ``connect`` of this process uses."""
    global _runtime
    _runtime = runtime


async def connect(address: str, namespace: str = "default",
                  interceptors: Sequence[Interceptor] = (), tls: TLSConfig | bool = False
                  ) -> Client:
    """A client with Govflow's converter; ``tls`` as govflow/tls.py ``temporal_tls`` gives."""
    from govflow import tracing

    return await Client.connect(address, namespace=namespace, data_converter=DATA_CONVERTER,
                                interceptors=[*interceptors, *tracing.temporal_interceptors()],
                                runtime=_runtime, tls=tls)


def with_converter(client: Client) -> Client:
    """The same connection, with Govflow's data converter (for clients made elsewhere,
    e.g. a test environment's)."""
    if client.data_converter.payload_converter_class is PayloadConverter:
        return client
    config = client.config()
    config["data_converter"] = DATA_CONVERTER
    return Client(**config)
