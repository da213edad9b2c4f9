"""Each hook as one trigger document and one report; the whole file's hooks.

Contract: :func:`convert_hooks` turns each hook into one trigger document
(plain data, what ``hookrunner apply -f`` takes) and one
:class:`~app.triggers.hooks_import.report.HookReport`. The conversion is pure:
no store, no environment, no clock. A document is checked as ``apply`` would
check it (with a stand-in for every ``${NAME}``); what ``apply`` would refuse
is an error of that hook, which then has no document. Properties webhook does
not read are noted and ignored. Two hooks with one id, or with one trigger
name, are refused (which one keeps the name: :func:`convert_hooks`).
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import ValidationError

from app.triggers.hooks_import.action import _action
from app.triggers.hooks_import.names import trigger_name
from app.triggers.hooks_import.report import HookReport, ImportResult
from app.triggers.hooks_import.request import _methods, _payload
from app.triggers.hooks_import.response import _response
from app.triggers.hooks_import.rules import _has_or, _rule
from app.triggers.hooks_import.scalars import _flag, _scalar, _Unconvertible
from app.triggers.schema import TriggerDocument

_REFERENCE = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)\}")  # as app.triggers.files
HOOK_KEYS = frozenset(
    {
        "id",
        "execute-command",
        "command-working-directory",
        "response-message",
        "response-headers",
        "include-command-output-in-response",
        "include-command-output-in-response-on-error",
        "pass-environment-to-command",
        "pass-arguments-to-command",
        "pass-file-to-command",
        "parse-parameters-as-json",
        "trigger-rule",
        "trigger-rule-mismatch-http-response-code",
        "trigger-signature-soft-failures",
        "incoming-payload-content-type",
        "success-http-response-code",
        "http-methods",
    }
)


def convert_hook(hook: Any, index: int) -> tuple[dict[str, Any] | None, HookReport]:
    """One hook as a trigger document (None when it cannot be converted) and its report."""
    written_id = _scalar(hook.get("id")) if isinstance(hook, dict) else ""
    hook_id = written_id.replace("$${", "${")  # the id senders use (read_hooks escaped it)
    report = HookReport(hook_id=hook_id or f"hooks[{index}]", name=None)
    if not isinstance(hook, dict):
        report.errors.append("a hook must be a mapping")
        return None, report
    if not hook_id:
        report.errors.append("id: missing")
        return None, report
    report.name = trigger_name(hook_id)
    if report.name is None:
        report.errors.append(f"id {hook_id!r} cannot be made a trigger name")
        return None, report
    if report.name != hook_id:
        report.notes.append(
            f"id {hook_id!r} is not a valid trigger name: the trigger is {report.name!r}"
        )
    for key in sorted(set(hook) - HOOK_KEYS):
        report.notes.append(f"{key}: not a hook property webhook reads; ignored (as by webhook)")
    notes = report.notes
    try:
        soft = _flag(hook, "trigger-signature-soft-failures")
        rule = hook.get("trigger-rule")
        rules = None if rule is None else _rule(rule, "trigger-rule", soft, notes)
        if soft and (rules is None or not _has_or(rules)):
            notes.append("trigger-signature-soft-failures: no 'or' rule, so it changes nothing")
        document: dict[str, Any] = {
            "name": report.name,
            "description": f"Imported from adnanh/webhook hook {written_id!r}",
            "auth": {"scheme": "none"},
            "dedup": {"key": "none"},
            "methods": _methods(hook, notes),
            "payload": _payload(hook, notes),
            "action": _action(hook, notes),
            "response": _response(hook, rules is not None, notes),
        }
    except _Unconvertible as exc:
        report.errors.append(str(exc))
        return None, report
    if rules is not None:
        document["rules"] = rules
    problems = _validation_problems(document)
    if problems:
        report.errors.extend(problems)
        return None, report
    return document, report


def _placeholders_filled(value: Any) -> Any:
    """``value`` as ``apply`` would see it, with a stand-in for every ``${NAME}``."""
    if isinstance(value, str):
        return _REFERENCE.sub(lambda m: "${" if m.group(1) is None else "x", value)
    if isinstance(value, dict):
        return {key: _placeholders_filled(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_placeholders_filled(item) for item in value]
    return value


def _validation_problems(document: dict[str, Any]) -> list[str]:
    """Why ``apply`` would refuse the document (what the conversion could not make valid)."""
    try:
        TriggerDocument.model_validate(_placeholders_filled(document))
    except ValidationError as exc:
        return [
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
            for error in exc.errors()
        ]
    return []


def convert_hooks(hooks: list[Any]) -> ImportResult:
    """Every hook converted (see the module docstring).

    Two hooks that end up with one name: a hook whose id is that name keeps it,
    otherwise the first in the file does; the other is refused (rename one).
    """
    converted = [convert_hook(hook, index) for index, hook in enumerate(hooks)]
    # A hook whose id is already a valid name keeps it (its /hooks/<id> reaches it exactly).
    taken: dict[str, str] = {
        report.hook_id: report.hook_id
        for document, report in converted
        if document is not None and report.name == report.hook_id
    }
    documents: list[dict[str, Any]] = []
    reports: list[HookReport] = []
    seen: set[str] = set()
    for document, report in converted:
        if report.hook_id in seen:
            report.errors.append(f"id {report.hook_id!r} is given twice; webhook serves the first")
            document = None
        seen.add(report.hook_id)
        if document is None:
            pass
        elif report.name is not None and taken.get(report.name, report.hook_id) != report.hook_id:
            first = taken[report.name]
            report.errors.append(
                f"id {report.hook_id!r} gives the trigger name {report.name!r} already used by"
                f" hook {first!r}; rename one of them"
            )
            document = None
        elif report.name is not None:
            taken[report.name] = report.hook_id
        if document is not None:
            documents.append(document)
        reports.append(report)
    return ImportResult(documents, reports)
