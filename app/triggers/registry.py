"""Triggers as the ingest path uses them: parsed once, cached per process.

Each lookup still reads the row (one indexed SELECT), so a change made by any
worker is seen at once; only the pydantic validation and the compilation of
JMESPath expressions are skipped while ``updated_at`` is unchanged.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import jmespath
from jmespath.parser import ParsedResult

from app.ingest.signatures import AuthSpec, signature_header_names
from app.store import Database
from app.store import triggers as triggers_sql
from app.triggers.schema import TriggerDocument


@dataclass(frozen=True)
class CompiledTrigger:
    document: TriggerDocument
    updated_at: str
    auth: AuthSpec
    filter: ParsedResult | None
    dedup_mode: str  # auto | payload | none | jmespath
    dedup_expression: ParsedResult | None
    credential_headers: frozenset[str]

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
    )


class TriggerRegistry:
    """Per-process cache of compiled triggers keyed by name and ``updated_at``."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._cache: dict[str, CompiledTrigger] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> CompiledTrigger:
        """The current trigger; raises TriggerNotFound."""
        row = triggers_sql.get(self._db, name)
        cached = self._cache.get(name)
        if cached is not None and cached.updated_at == row.updated_at:
            return cached
        compiled = compile_trigger(
            TriggerDocument.model_validate_json(row.document), row.updated_at
        )
        with self._lock:
            self._cache[name] = compiled
        return compiled
