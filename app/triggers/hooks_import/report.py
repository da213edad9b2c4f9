"""What the import says about each hook.

Contract: one :class:`HookReport` per hook: the name given, the differences
that remain (``notes``) and, for a hook that cannot be converted at all, the
reasons (``errors``; that hook has no document). Nothing is dropped without a
line in the report. :class:`ImportResult` holds the documents and the reports
in file order; :func:`report_lines` is the report for people, ending with the
differences that hold for every converted hook (:data:`EVERY_HOOK`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Differences that hold for every converted hook (the README's "What stays different").
EVERY_HOOK = (
    "commands get Hookrunner's minimal environment, not webhook's whole one: add the"
    " variables they need to action.env (${NAME} is read when the file is applied)",
    "executions are queued, one at a time per trigger (concurrency.max: 1), where webhook"
    " starts every command at once",
)


@dataclass
class HookReport:
    """What became of one hook: its trigger name, remaining differences, or why not."""

    hook_id: str
    name: str | None
    notes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def converted(self) -> bool:
        return not self.errors

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.hook_id,
            "name": self.name,
            "converted": self.converted,
            "notes": self.notes,
            "errors": self.errors,
        }


@dataclass
class ImportResult:
    """The trigger documents (converted hooks only) and a report per hook, in file order."""

    documents: list[dict[str, Any]]
    reports: list[HookReport]

    @property
    def failed(self) -> list[HookReport]:
        return [report for report in self.reports if not report.converted]


def report_lines(result: ImportResult) -> list[str]:
    """The report for people: one block per hook."""
    lines: list[str] = []
    for report in result.reports:
        if report.converted:
            lines.append(f"ok   {report.hook_id} -> {report.name}")
        else:
            lines.append(f"FAIL {report.hook_id}: not converted")
        lines += [f"     error: {error}" for error in report.errors]
        lines += [f"     note: {note}" for note in report.notes]
    converted = len(result.reports) - len(result.failed)
    lines.append(f"{converted} of {len(result.reports)} hook(s) converted")
    if result.documents:
        lines += [f"every hook: {note}" for note in EVERY_HOOK]
    return lines
