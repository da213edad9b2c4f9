"""Triggers as the ingest path uses them: parsed and compiled once, cached per process.

A lookup costs no SQL while its entry is fresh. Entries go stale two ways:

* **at once** when any process changes a trigger: :class:`~app.triggers.admin.TriggerAdmin`
  notifies :data:`~app.live.notifier.TRIGGERS`, which this process hears directly and
  other processes and hosts through the store's notifier backend (doorbell or
  ``LISTEN/NOTIFY``); every entry is then re-checked on its next lookup;
* **after** :data:`REVALIDATE_SECONDS` in any case, so a lost notification or a change
  written past Hookrunner is seen within a second.

Re-checking reads the row (one indexed SELECT) and compiles again only when its
``updated_at`` moved.
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass

import jmespath
from jmespath.parser import ParsedResult

from app.ingest.signatures import AuthSpec, signature_header_names
from app.live.notifier import TRIGGERS, Notifier
from app.store import Database
from app.store import triggers as triggers_sql
from app.triggers.schema import TriggerDocument

REVALIDATE_SECONDS = 1.0


@dataclass(frozen=True)
class CompiledTrigger:
    document: TriggerDocument
    updated_at: str
    auth: AuthSpec
    filter: ParsedResult | None
    dedup_mode: str  # auto | payload | none | jmespath
    dedup_expression: ParsedResult | None
    credential_headers: frozenset[str]
    # Whether the action's templates read ``headers`` or ``query``: then the values the
    # stored delivery shows redacted are kept for the execution (see deliveries.credentials).
    templates_read_request: bool = False

    @property
    def name(self) -> str:
        return self.document.name

    @property
    def enabled(self) -> bool:
        return self.document.enabled


def compile_trigger(document: TriggerDocument, updated_at: str) -> CompiledTrigger:
    auth = AuthSpec(
        scheme=document.auth.scheme,
        secrets=tuple(document.auth.secrets),
        tolerance_seconds=document.auth.tolerance_seconds,
        header=document.auth.header,
        algorithm=document.auth.algorithm,
        encoding=document.auth.encoding,
        prefix=document.auth.prefix,
    )
    mode, _, expression = document.dedup.key.partition(":")
    return CompiledTrigger(
        document=document,
        updated_at=updated_at,
        auth=auth,
        filter=jmespath.compile(document.filter) if document.filter else None,
        dedup_mode=mode,
        dedup_expression=jmespath.compile(expression) if mode == "jmespath" else None,
        credential_headers=signature_header_names(auth),
        templates_read_request=_reads_request(document),
    )


_REQUEST_IN_TEMPLATE = re.compile(r"\{[{%][^}]*\b(?:headers|query)\b")


def _reads_request(document: TriggerDocument) -> bool:
    """Whether any template of the action names ``headers`` or ``query``."""
    return bool(_REQUEST_IN_TEMPLATE.search(json.dumps(document.action.model_dump(mode="json"))))


@dataclass
class _Entry:
    compiled: CompiledTrigger
    checked_at: float  # time.monotonic() of the last read of its row
    generation: int  # the registry's generation when it was checked


class TriggerRegistry:
    """Per-process cache of compiled triggers; see the module docstring for freshness."""

    def __init__(self, db: Database, notifier: Notifier | None = None) -> None:
        self._db = db
        self._cache: dict[str, _Entry] = {}
        self._lock = threading.Lock()
        self._generation = 0
        if notifier is not None:
            notifier.watch(TRIGGERS, self.invalidate)

    def invalidate(self) -> None:
        """Some trigger changed somewhere: re-check every entry on its next lookup."""
        with self._lock:
            self._generation += 1

    def get(self, name: str) -> CompiledTrigger:
        """The current trigger; raises TriggerNotFound."""
        entry = self._cache.get(name)
        now = time.monotonic()
        if (
            entry is not None
            and entry.generation == self._generation
            and now - entry.checked_at < REVALIDATE_SECONDS
        ):
            return entry.compiled
        generation = self._generation  # read before the row: a change after it is not lost
        try:
            row = triggers_sql.get(self._db, name)
        except Exception:
            with self._lock:
                self._cache.pop(name, None)
            raise
        if entry is not None and entry.compiled.updated_at == row.updated_at:
            compiled = entry.compiled
        else:
            compiled = compile_trigger(
                TriggerDocument.model_validate_json(row.document), row.updated_at
            )
        with self._lock:
            self._cache[name] = _Entry(compiled, now, generation)
        return compiled
