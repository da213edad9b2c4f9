"""UTC timestamps as stored and served: ISO 8601 with microseconds and ``Z``.

The fixed-width form sorts lexicographically in time order, so SQL can compare
stored timestamps as text (``expires_at <= ?``) on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def utc_now() -> datetime:
    return datetime.now(UTC)


def to_iso(moment: datetime) -> str:
    """Format an aware datetime as stored text (``isoformat`` is several times faster)."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")[:-6] + "Z"


def utc_now_iso(offset_seconds: float = 0.0) -> str:
    """Now (plus an optional offset) as stored text."""
    return to_iso(utc_now() + timedelta(seconds=offset_seconds))


def parse_iso(text: str) -> datetime:
    """Parse any ISO 8601 timestamp; naive values are taken as UTC.

    Raises ValueError for malformed text.
    """
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def ms_between(start: str | None, end: str | None) -> float | None:
    """Milliseconds from one ISO timestamp to another (None when either is missing)."""
    if not start or not end:
        return None
    return round((parse_iso(end) - parse_iso(start)).total_seconds() * 1000, 3)
