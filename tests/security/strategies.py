"""Hypothesis strategies that build any request message from its proto descriptor: random
and boundary strings (unicode, NUL, control and bidi characters, very long), names that look
like resources (and some that are real), ints at their boundaries, enums out of range,
timestamps out of range, nested messages, repeated fields and maps."""

from __future__ import annotations

import base64
from collections.abc import Sequence

from google.protobuf import descriptor, message, message_factory
from hypothesis import strategies as st

F = descriptor.FieldDescriptor

INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)
UINT32 = (0, 2**32 - 1)
UINT64 = (0, 2**64 - 1)
# Timestamp seconds protobuf calls valid: 0001-01-01 .. 9999-12-31.
TS_MIN, TS_MAX = -62135596800, 253402300799

RESOURCE_PREFIXES = (
    "persons/", "organisations/", "agencies/", "partners/", "applications/", "tasks/",
    "matters/", "certificates/", "certificateTypes/", "consents/", "signingKeys/",
    "accessRecords/",
)

BOUNDARY_STRINGS = (
    "", " ", "\x00", "a\x00b", "\t\n\r", "-", "*", "%", "_", "..", "../../etc/passwd",
    "' OR '1'='1", "\"; DROP TABLE persons; --", "%s%s%n", "{{7*7}}", "${jndi:ldap://x}",
    "\u202e\u202d", "\ufeff", "\u200b", "名字", "🙂" * 3, "𝕏", "null", "None", "true", "0",
    "-1", "9" * 40, "1e309", "NaN", "X" * 18, "44030419700101999X", "91440300MA5FLT8K25",
    "a=b", "a=b AND c=d", "status=OPEN AND status=CLOSED", " AND ", "=", "key=", "=value",
    "((((status=OPEN))))", "status=" + "(" * 500, ("a=b AND " * 300) + "a=b",
    "x" * 129, "x" * 201, "x" * 513, "x" * 1001, "x" * 2001, "字" * 700, "𝕏" * 3000,
    "x" * 70000, "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", "Bearer x",
    "- [" * 2000, "a: &a [1]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: [*b,*b,*b,*b,*b,*b,*b,*b]\n",
    "[" * 5000 + "]" * 5000, "{a: 1, a: 2}", "!!python/object/apply:os.system ['true']",
    "code: x\ndisplay_name: y\n", "\x7f\x1b[31m",
)

def _token(doc: str) -> str:
    return base64.urlsafe_b64encode(doc.encode()).decode().rstrip("=")


# Forged page tokens: offsets out of range or of the wrong type.
BOUNDARY_STRINGS += tuple(_token(d) for d in (
    '{"o": 100000000000000000000000000000}', '{"o": -1}', '{"o": "5"}', '{"o": 1e308}',
    '{"o": 9223372036854775808}', '{"o": true}', '[1]', '"x"', '{"o": 3}'))

_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)


def strings(pool: Sequence[str] = ()) -> st.SearchStrategy[str]:
    """Random text, boundary strings, resource-like names and known real names."""
    options = [
        _text,
        st.sampled_from(BOUNDARY_STRINGS),
        st.builds(lambda p, t: p + t, st.sampled_from(RESOURCE_PREFIXES), _text),
        st.builds(lambda p, n: p + "x" * n, st.sampled_from(RESOURCE_PREFIXES),
                  st.sampled_from((0, 1, 127, 128, 129, 600, 3000))),
    ]
    if pool:
        options.append(st.sampled_from(list(pool)))
    return st.one_of(*options)


def _ints(lo: int, hi: int) -> st.SearchStrategy[int]:
    edges = sorted({v for v in (lo, lo + 1, -1, 0, 1, 2, 5, 100, 101, 1000, 10**6, hi - 1, hi)
                    if lo <= v <= hi})
    return st.one_of(st.sampled_from(edges), st.integers(lo, hi))


def _enum(field: descriptor.FieldDescriptor) -> st.SearchStrategy[int]:
    known = [v.number for v in field.enum_type.values]
    return st.one_of(st.sampled_from(known),
                     st.sampled_from([-1, max(known) + 1, 99, INT32[0], INT32[1]]))


def _timestamp(cls: type[message.Message]) -> st.SearchStrategy[message.Message]:
    seconds = st.one_of(
        st.sampled_from([0, -1, 1, TS_MIN, TS_MIN - 1, TS_MAX, TS_MAX + 1, INT64[0], INT64[1],
                         1767225600, 4102444800, 32503680000, -2208988800]),
        st.integers(TS_MIN, TS_MAX), st.integers(*INT64))
    nanos = st.one_of(st.sampled_from([0, 999_999_999, 1_000_000_000, -1, INT32[1]]),
                      st.integers(*INT32))
    return st.builds(lambda s, n: cls(seconds=s, nanos=n), seconds, nanos)


def _scalar(field: descriptor.FieldDescriptor, pool: Sequence[str],
            depth: int) -> st.SearchStrategy[object]:
    t = field.type
    if t == F.TYPE_STRING:
        return strings(pool)
    if t == F.TYPE_BYTES:
        return st.one_of(st.binary(max_size=64), st.just(b"\x00" * 5000))
    if t == F.TYPE_BOOL:
        return st.booleans()
    if t in (F.TYPE_INT32, F.TYPE_SINT32, F.TYPE_SFIXED32):
        return _ints(*INT32)
    if t in (F.TYPE_INT64, F.TYPE_SINT64, F.TYPE_SFIXED64):
        return _ints(*INT64)
    if t in (F.TYPE_UINT32, F.TYPE_FIXED32):
        return _ints(*UINT32)
    if t in (F.TYPE_UINT64, F.TYPE_FIXED64):
        return _ints(*UINT64)
    if t in (F.TYPE_DOUBLE, F.TYPE_FLOAT):
        return st.floats(allow_nan=True, allow_infinity=True, width=32 if t == F.TYPE_FLOAT else 64)
    if t == F.TYPE_ENUM:
        return _enum(field)
    if t == F.TYPE_MESSAGE:
        return messages(field.message_type, pool, depth + 1)
    raise AssertionError(f"unhandled field type {t} of {field.full_name}")


def messages(desc: descriptor.Descriptor, pool: Sequence[str] = (),
             depth: int = 0) -> st.SearchStrategy[message.Message]:
    """Any message of type ``desc``: each field absent or set to a random/boundary value."""
    cls = message_factory.GetMessageClass(desc)
    if desc.full_name == "google.protobuf.Timestamp":
        return _timestamp(cls)
    if depth > 4:
        return st.just(cls())
    parts: dict[str, st.SearchStrategy[object]] = {}
    for field in desc.fields:
        if field.type == F.TYPE_MESSAGE and field.message_type.GetOptions().map_entry:
            key_f = field.message_type.fields_by_name["key"]
            val_f = field.message_type.fields_by_name["value"]
            value: st.SearchStrategy[object] = st.one_of(
                st.dictionaries(_scalar(key_f, pool, depth), _scalar(val_f, pool, depth),
                                max_size=4),
                st.just({f"k{i}": "v" for i in range(150)}))
        elif field.is_repeated:
            elem = _scalar(field, pool, depth)
            value = st.one_of(st.lists(elem, max_size=4),
                              st.builds(lambda e: [e] * 150, elem))
        else:
            value = _scalar(field, pool, depth)
        parts[field.name] = st.one_of(st.none(), value)

    def build(values: dict[str, object]) -> message.Message:
        msg = cls()
        for name, v in values.items():
            if v is None:
                continue
            field = desc.fields_by_name[name]
            target = getattr(msg, name)
            if field.type == F.TYPE_MESSAGE and field.message_type.GetOptions().map_entry:
                val_f = field.message_type.fields_by_name["value"]
                for k, item in v.items():  # type: ignore[attr-defined]
                    if val_f.type == F.TYPE_MESSAGE:
                        target[k].CopyFrom(item)
                    else:
                        target[k] = item
            elif field.is_repeated:
                if field.type == F.TYPE_MESSAGE:
                    for item in v:  # type: ignore[attr-defined]
                        target.add().CopyFrom(item)
                else:
                    target.extend(v)  # type: ignore[arg-type]
            elif field.type == F.TYPE_MESSAGE:
                target.CopyFrom(v)  # type: ignore[arg-type]
            else:
                setattr(msg, name, v)
        return msg

    return st.fixed_dictionaries(parts).map(build)
