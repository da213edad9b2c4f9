"""What arrived and what is remembered: deliveries and live dedup keys, for operators.

The admin routes read deliveries and dedup keys through :class:`IngestHistory`;
bodies are shown as UTF-8 text when they are, base64 otherwise, and headers and
query parameters are already redacted when stored. Forgetting a dedup key makes
the next identical delivery run again.
"""

from __future__ import annotations

import base64
from dataclasses import asdict
from typing import Any

from app.errors import NotFound
from app.store import Database, dedup_keys, deliveries


def body_view(body: bytes) -> dict[str, Any]:
    try:
        return {"body": body.decode("utf-8"), "body_encoding": "utf-8"}
    except UnicodeDecodeError:
        return {"body": base64.b64encode(body).decode(), "body_encoding": "base64"}


class IngestHistory:
    def __init__(self, db: Database) -> None:
        self.db = db

    def deliveries(self, **filters: Any) -> list[dict[str, Any]]:
        """One page of delivery summaries, newest first (no headers or bodies)."""
        return deliveries.list_recent(self.db, **filters)

    def delivery(self, delivery_id: str) -> dict[str, Any]:
        """One delivery with its headers, body and report; raises NotFound."""
        item = deliveries.get(self.db, delivery_id)
        return item.api_view() | {"body_size": len(item.body)} | body_view(item.body)

    def replays(self, delivery_id: str) -> list[dict[str, Any]]:
        """The replays of a delivery (summaries, oldest first)."""
        return deliveries.replays_of(self.db, delivery_id)

    def dedup_keys(
        self, trigger: str | None, after: tuple[str, str] | None, limit: int
    ) -> list[dict[str, Any]]:
        rows = dedup_keys.list_for_trigger(self.db, trigger, after=after, limit=limit)
        return [asdict(row) for row in rows]

    def forget_key(self, trigger: str, key: str) -> None:
        """Raises NotFound when no such key is remembered."""
        if not dedup_keys.delete(self.db, trigger, key):
            raise NotFound("No such dedup key.")
