"""Ids for the rows ingest and the engine insert: time-ordered, so inserts stay local.

A delivery or execution id is the key of its table's primary index (on SQLite the
``executions`` table *is* that index). Random ids (UUID version 4) scatter each insert
onto its own leaf page, so every row of a group commit dirties, writes and later
checkpoints one more page, and a big table's working set outgrows the page cache.
Ids that start with the creation time put a burst's rows next to each other at the
right edge of the index: a batch touches a handful of pages whatever the table's size.

:func:`new_row_id` returns a UUID version 7 (RFC 9562) as 32 lowercase hex digits,
the same shape as the ``uuid4().hex`` ids stored before, which stay valid: the first
48 bits are the Unix time in milliseconds, the rest random apart from the version and
variant bits. Ids of one millisecond are in random order and ids of different
processes or hosts interleave by their clocks; nothing relies on ids for order (the API
orders by timestamps), the order is only there for the indexes. The 74 random bits keep
ids of one millisecond apart without any shared counter between processes. The bits are
set here because the standard library makes version 7 UUIDs only from Python 3.14
(``uuid.uuid7``; before, ``uuid.UUID(version=7)`` is refused).
"""

from __future__ import annotations

import secrets
import time

_VERSION_7 = 0x7 << 76
_VARIANT_RFC = 0x2 << 62


def new_row_id() -> str:
    """A new time-ordered id: a UUID version 7 as 32 lowercase hex digits."""
    millis = time.time_ns() // 1_000_000
    random = secrets.randbits(74)  # 12 bits go after the version, 62 after the variant
    high, low = random >> 62, random & ((1 << 62) - 1)
    value = (millis & 0xFFFF_FFFF_FFFF) << 80 | _VERSION_7 | high << 64 | _VARIANT_RFC | low
    return f"{value:032x}"
