"""Pagination for every List RPC: page sizes and opaque page tokens."""

from __future__ import annotations

import base64
import json

from govflow.errors import InvalidArgument

DEFAULT_PAGE_SIZE = 20
# Larger page sizes are capped to this, not refused (AIP-158): a client asking for 10 000
# gets 100 and a next_page_token. Negative sizes are INVALID_ARGUMENT.
MAX_PAGE_SIZE = 100
# A page token is ours, but a hostile client can forge one; offsets beyond this are refused.
MAX_OFFSET = 1_000_000
# A filter is at most this long and has at most this many ``key=value`` terms.
MAX_FILTER_CHARS = 1000
MAX_FILTER_TERMS = 8


def page(page_size: int, page_token: str) -> tuple[int, int]:
    """Returns (offset, limit). Sizes above the maximum are capped, as AIP-158 says."""
    if page_size < 0:
        raise InvalidArgument(fields={"page_size": "must not be negative"})
    limit = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    if not page_token:
        return 0, limit
    try:
        data = json.loads(base64.urlsafe_b64decode(page_token.encode() + b"==="))
        raw = data["o"]
        if not isinstance(raw, int) or isinstance(raw, bool):
            raise ValueError
        offset = raw
        if not 0 <= offset <= MAX_OFFSET:
            raise ValueError
    except Exception as exc:
        raise InvalidArgument(fields={"page_token": "not a token from a previous page"}) from exc
    return offset, limit


def next_token(offset: int, limit: int, returned: int) -> str:
    if returned < limit:
        return ""
    # The same bytes as json.dumps({"o": n}), without building an encoder per page.
    return base64.urlsafe_b64encode(f'{{"o": {offset + returned}}}'.encode()).decode().rstrip("=")


def parse_filter(text: str, allowed: set[str]) -> dict[str, str]:
    """Parses ``a=b AND c=d``: at most MAX_FILTER_TERMS terms, each key once; unknown keys,
    malformed terms (no ``=``, or more than one, as in ``a=b OR c=d``) and over-long filters
    are INVALID_ARGUMENT naming ``filter``."""
    out: dict[str, str] = {}
    if not text.strip():
        return out
    if len(text) > MAX_FILTER_CHARS:
        raise InvalidArgument(fields={"filter": f"longer than {MAX_FILTER_CHARS} characters"})
    terms = text.split(" AND ")
    if len(terms) > MAX_FILTER_TERMS:
        raise InvalidArgument(fields={"filter": f"more than {MAX_FILTER_TERMS} terms"})
    for term in terms:
        key, sep, value = term.strip().partition("=")
        key, value = key.strip(), value.strip().strip('"')
        if not sep or not key or not value or "=" in value:
            raise InvalidArgument(fields={"filter": f"term {term.strip()!r} is not key=value"})
        if key not in allowed:
            raise InvalidArgument(
                fields={"filter": f"unknown key {key!r}; allowed: {', '.join(sorted(allowed))}"})
        if key in out:
            raise InvalidArgument(fields={"filter": f"key {key!r} given twice"})
        out[key] = value
    return out
