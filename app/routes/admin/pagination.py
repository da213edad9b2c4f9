"""Opaque cursors for list endpoints: ``base64url(json([time, id]))``."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from app import safe_json
from app.clock import to_iso
from app.errors import BadRequest


class InvalidCursor(BadRequest):
    code = "invalid_cursor"
    message = "The cursor is not one this API returned."


class PageQuery(BaseModel):
    limit: int = Field(50, ge=1, le=200)
    cursor: str | None = None


class TimeRangeQuery(PageQuery):
    trigger: str | None = None
    since: datetime | None = Field(None, description="ISO 8601; inclusive")
    until: datetime | None = Field(None, description="ISO 8601; exclusive")

    def range(self) -> tuple[str | None, str | None]:
        return (
            to_iso(self.since) if self.since else None,
            to_iso(self.until) if self.until else None,
        )


def decode_cursor(cursor: str | None) -> tuple[str, str] | None:
    if cursor is None:
        return None
    try:
        value = safe_json.loads(
            base64.urlsafe_b64decode(cursor.encode() + b"=" * (-len(cursor) % 4))
        )
    except (ValueError, binascii.Error) as exc:
        raise InvalidCursor() from exc
    if not (isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value)):
        raise InvalidCursor()
    return value[0], value[1]


def encode_cursor(time_value: str, id_value: str) -> str:
    raw = json.dumps([time_value, id_value], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def paginate(
    fetch: Callable[[tuple[str, str] | None, int], list[dict[str, Any]]],
    query: PageQuery,
    time_key: str,
    id_key: str = "id",
) -> dict[str, Any]:
    """Fetch one row more than asked to know whether a next page exists."""
    rows = fetch(decode_cursor(query.cursor), query.limit + 1)
    items = rows[: query.limit]
    has_more = len(rows) > query.limit
    next_cursor = encode_cursor(items[-1][time_key], items[-1][id_key]) if has_more else None
    return {"items": items, "next_cursor": next_cursor}
