"""The hook's command as a Hookrunner command action.

Contract: :func:`_action` runs ``execute-command`` (from
``command-working-directory`` when relative, as webhook does) with
``pass-arguments-to-command`` as its arguments, ``pass-environment-to-command``
as its environment (``HOOK_`` and the name by default) and
``pass-file-to-command`` as files; a day stands for webhook's missing timeout
and stderr is merged into the output, as webhook reads both as one. A hook
without a command is :class:`_Unconvertible`.
"""

from __future__ import annotations

from typing import Any

from app.triggers.hooks_import.names import _env_name
from app.triggers.hooks_import.parameters import _arguments, _name_of, _value_template
from app.triggers.hooks_import.scalars import _literal, _scalar, _Unconvertible

ENV_PREFIX = "HOOK_"
COMMAND_TIMEOUT_SECONDS = 86400  # webhook has no timeout: a day stands for "none"


def _action(hook: dict[str, Any], notes: list[str]) -> dict[str, Any]:
    command = _scalar(hook.get("execute-command"))
    if not command.strip():
        raise _Unconvertible("execute-command: missing (webhook cannot run this hook either)")
    if " " in command:
        notes.append(
            "execute-command names a program with spaces in its path; webhook and Hookrunner"
            " both run it as one path (arguments go in pass-arguments-to-command)"
        )
    cwd = _scalar(hook.get("command-working-directory"))
    program = command
    if cwd and not command.startswith("/"):
        program = cwd.rstrip("/") + "/" + command  # webhook runs it from the directory
    argv = [_literal(program)]
    for i, argument in enumerate(_arguments(hook, "pass-arguments-to-command")):
        argv.append(_value_template(argument, f"pass-arguments-to-command[{i}]", notes))
    env: dict[str, str] = {}
    maybe_absent: list[str] = []
    for i, argument in enumerate(_arguments(hook, "pass-environment-to-command")):
        where = f"pass-environment-to-command[{i}]"
        wanted = _scalar(argument.get("envname")) or ENV_PREFIX + _name_of(argument)
        name = _env_name(wanted, where, notes)
        if name in env:
            notes.append(f"{where}: {name} is given twice; the last one is kept")
        env[name] = _value_template(argument, where, notes)
        if argument.get("source") in ("payload", "header", "url", "query"):
            maybe_absent.append(name)
    if maybe_absent:
        notes.append(
            f"pass-environment-to-command: {', '.join(maybe_absent)} set to '' when the request"
            " lacks the value (webhook leaves the variable unset)"
        )
    files: dict[str, dict[str, Any]] = {}
    for i, argument in enumerate(_arguments(hook, "pass-file-to-command")):
        where = f"pass-file-to-command[{i}]"
        wanted = _scalar(argument.get("envname")) or ENV_PREFIX + _name_of(argument).upper()
        name = _env_name(wanted, where, notes)
        spec: dict[str, Any] = {"content": _value_template(argument, where, notes)}
        if argument.get("base64decode") is True:
            spec["base64"] = True
        files[name] = spec
    action: dict[str, Any] = {
        "type": "command",
        "argv": argv,
        "timeout_seconds": COMMAND_TIMEOUT_SECONDS,
        "stderr": "merge",  # webhook reads stdout and stderr as one output
    }
    if env:
        action["env"] = env
    if files:
        action["files"] = files
    if cwd:
        action["cwd"] = cwd
    return action
