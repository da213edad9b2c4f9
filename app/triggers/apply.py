"""Applying a trigger file: plan every change first, then make them (triggers as code).

Protocol (``hookrunner apply``, ``TRIGGERS_FILE`` at start-up):

1. **Validate everything.** Each document becomes the document that
   :meth:`TriggerAdmin.replace` would store (``PUT /admin/triggers/<name>``
   semantics: a whole document, defaults for fields left out, stored write-only
   secrets kept when left out). Any invalid document fails the whole file with
   every problem listed; nothing has been written.
2. **Plan.** Each trigger is ``created``, ``updated`` (with the fields that
   change; secrets are named, never shown), or ``unchanged``; with ``prune``,
   stored triggers missing from the file are ``deleted``.
3. **Apply** the plan through :class:`TriggerAdmin` (unless a dry run). An
   unchanged trigger is not written, so applying the same file twice changes
   nothing, and two processes applying one file at once both succeed.

``TRIGGERS_FILE`` is applied by every process that builds the app
(:func:`apply_at_startup`), without pruning; a file that cannot be applied stops
the start-up with the problems in the message.
"""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.config import ConfigError
from app.errors import TriggerNotFound, ValidationFailed
from app.triggers.admin import TriggerAdmin
from app.triggers.files import TriggersFileError, label, load_documents
from app.triggers.schema import TriggerDocument

log = logging.getLogger(__name__)


@dataclass
class Plan:
    """What applying a file does; ``updated`` maps a name to its changed fields."""

    created: list[str] = field(default_factory=list)
    updated: dict[str, list[str]] = field(default_factory=dict)
    deleted: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    documents: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)

    @property
    def changes(self) -> int:
        return len(self.created) + len(self.updated) + len(self.deleted)

    def summary(self) -> dict[str, Any]:
        """The plan as JSON (``--json``): names only, never a value."""
        return {
            "created": self.created,
            "updated": [{"name": n, "fields": f} for n, f in self.updated.items()],
            "deleted": self.deleted,
            "unchanged": self.unchanged,
        }

    def lines(self) -> list[str]:
        """The plan for people: one line per trigger, in file order, deletions last."""
        out = [f"+ create    {name}" for name in self.created]
        out += [f"~ update    {name}: {', '.join(f)}" for name, f in self.updated.items()]
        out += [f"- delete    {name}" for name in self.deleted]
        out += [f"= unchanged {name}" for name in self.unchanged]
        return out


def changed_fields(current: TriggerDocument, desired: TriggerDocument) -> list[str]:
    """Dotted paths (one level into objects) whose values differ."""
    before, after = current.model_dump(), desired.model_dump()
    changed: list[str] = []
    for key in after:
        old, new = before.get(key), after[key]
        if old == new:
            continue
        if isinstance(old, dict) and isinstance(new, dict):
            changed.extend(
                f"{key}.{sub}"
                for sub in dict.fromkeys([*old, *new])
                if old.get(sub) != new.get(sub)
            )
        else:
            changed.append(key)
    return changed


def plan(admin: TriggerAdmin, documents: list[dict[str, Any]], *, prune: bool) -> Plan:
    """Validate every document and work out the changes; raises TriggersFileError."""
    result = Plan()
    problems: list[str] = []
    for index, fields in enumerate(documents):
        name = str(fields["name"])
        try:
            desired = admin.replacement(name, fields)
        except ValidationFailed as exc:
            for detail in exc.details or [{"path": "", "message": exc.message}]:
                path = f"{detail['path']}: " if detail.get("path") else ""
                problems.append(f"{label(index, fields)}: {path}{detail['message']}")
            continue
        result.documents[name] = fields
        current = admin.stored(name)
        if current is None:
            result.created.append(name)
        elif current == desired:
            result.unchanged.append(name)
        else:
            result.updated[name] = changed_fields(current, desired)
    if problems:
        raise TriggersFileError(problems)
    if prune:
        result.deleted = [
            view["name"] for view in admin.list() if view["name"] not in result.documents
        ]
    return result


def execute(admin: TriggerAdmin, planned: Plan) -> None:
    """Make the planned changes (creations and updates in file order, then deletions)."""
    for name in [*planned.created, *planned.updated]:
        admin.replace(name, planned.documents[name])
    for name in planned.deleted:
        with contextlib.suppress(TriggerNotFound):  # deleted meanwhile: the goal is reached
            admin.delete(name)


def apply_documents(
    admin: TriggerAdmin, documents: list[dict[str, Any]], *, prune: bool = False
) -> Plan:
    """Plan then execute; raises TriggersFileError before any write when invalid."""
    planned = plan(admin, documents, prune=prune)
    execute(admin, planned)
    return planned


def apply_at_startup(admin: TriggerAdmin, path: str) -> Plan:
    """Apply ``TRIGGERS_FILE`` (variables from the environment); raises ConfigError."""
    try:
        applied = apply_documents(admin, load_documents(Path(path), os.environ))
    except TriggersFileError as exc:
        raise ConfigError(f"TRIGGERS_FILE {path}: " + "; ".join(exc.problems)) from None
    log.info(
        "applied TRIGGERS_FILE",
        extra={
            "triggers_file": path,
            "triggers_created": len(applied.created),
            "triggers_updated": len(applied.updated),
            "triggers_unchanged": len(applied.unchanged),
        },
    )
    return applied
