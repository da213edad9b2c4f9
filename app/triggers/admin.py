"""Managing triggers: create, read, change and delete, with the rules that apply to each.

The admin API calls these, and so do ``PUT /admin/triggers/<name>`` and
triggers-as-code (``hookrunner apply``), so every path gives the same
validation errors. The rules: a trigger's name never changes; a change is a
merge patch over the stored document, validated whole, and secrets or
credentials left out of it are kept; a replacement (:meth:`TriggerAdmin.replace`)
is a whole document - fields left out take their defaults - except that
write-only secrets left out are kept the same way; views never carry secrets
(``public_view``).
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from app.errors import TriggerExists, TriggerNotFound, ValidationFailed
from app.live.notifier import TRIGGERS, Notifier
from app.store import Database
from app.store import triggers as triggers_sql
from app.triggers.schema import TriggerDocument, TriggerPatch, merge_patch, public_view


def view(row: triggers_sql.TriggerRow) -> dict[str, Any]:
    """What the API shows of a stored trigger (secrets only as ``has_secret``)."""
    document = TriggerDocument.model_validate_json(row.document)
    return {**public_view(document), "created_at": row.created_at, "updated_at": row.updated_at}


class TriggerAdmin:
    """``notifier``, when given, hears of every change (:data:`TRIGGERS`), so every
    process's cached compiled triggers are re-checked at once."""

    def __init__(self, db: Database, notifier: Notifier | None = None) -> None:
        self.db = db
        self.notifier = notifier

    def _changed(self) -> None:
        if self.notifier is not None:
            self.notifier.notify(TRIGGERS)

    def list(self) -> list[dict[str, Any]]:
        return [view(row) for row in triggers_sql.list_all(self.db)]

    def get(self, name: str) -> dict[str, Any]:
        """Raises TriggerNotFound."""
        return view(triggers_sql.get(self.db, name))

    def create(self, document: TriggerDocument) -> dict[str, Any]:
        """Raises TriggerExists."""
        row = triggers_sql.insert(
            self.db,
            document.name,
            document.description,
            document.enabled,
            document.model_dump_json(),
        )
        self._changed()
        return view(row)

    def patch(self, name: str, patch: TriggerPatch) -> dict[str, Any]:
        """Merge ``patch`` into the stored document; raises ValidationFailed, TriggerNotFound."""
        current = TriggerDocument.model_validate_json(triggers_sql.get(self.db, name).document)
        changes = patch.model_dump()
        if changes.get("name", name) != name:
            raise ValidationFailed(
                details=[
                    {"path": "name", "message": "a trigger cannot be renamed", "type": "value"}
                ]
            )
        try:
            document = TriggerDocument.model_validate(merge_patch(current, changes))
        except ValidationError as exc:
            raise ValidationFailed.from_pydantic(exc) from None
        row = triggers_sql.update(
            self.db, name, document.description, document.enabled, document.model_dump_json()
        )
        self._changed()
        return view(row)

    def stored(self, name: str) -> TriggerDocument | None:
        """The stored document with its secrets (None when there is no such trigger)."""
        try:
            return TriggerDocument.model_validate_json(triggers_sql.get(self.db, name).document)
        except TriggerNotFound:
            return None

    def replacement(self, name: str, fields: dict[str, Any]) -> TriggerDocument:
        """The document that :meth:`replace` would store; raises ValidationFailed.

        ``fields`` is a whole trigger document (its ``name``, when given, must be
        ``name``). Secrets it leaves out are taken from the stored trigger.
        """
        if fields.get("name", name) != name:
            raise ValidationFailed(
                details=[
                    {"path": "name", "message": "must be the name in the path", "type": "value"}
                ]
            )
        fields = {**fields, "name": name}
        current = self.stored(name)
        if current is not None:
            merged = merge_patch(current, fields)
            fields = {field: value for field, value in merged.items() if field in fields}
        try:
            return TriggerDocument.model_validate(fields)
        except ValidationError as exc:
            raise ValidationFailed.from_pydantic(exc) from None

    def replace(self, name: str, fields: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """Create or replace the trigger ``name``; ``(view, created)``. Raises ValidationFailed.

        A replacement equal to the stored document writes nothing (``updated_at``
        stays, the compiled trigger stays cached).
        """
        document = self.replacement(name, fields)
        current = self.stored(name)
        if current is None:
            try:
                return self.create(document), True
            except TriggerExists:  # created meanwhile (another worker applying the same file)
                current = self.stored(name)
        if current == document:
            return self.get(name), False
        row = triggers_sql.update(
            self.db, name, document.description, document.enabled, document.model_dump_json()
        )
        self._changed()
        return view(row), False

    def delete(self, name: str) -> None:
        """Delete the trigger and its dedup keys; raises TriggerNotFound."""
        triggers_sql.delete(self.db, name)
        self._changed()
