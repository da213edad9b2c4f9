"""Names: trigger names made from hook ids, and environment variable names.

Contract: a hook keeps its id as the trigger name when the id is a valid name;
otherwise :func:`trigger_name` makes it one (lower case, other characters
``-``, at most 64). The same function maps ``/hooks/<id>`` to a trigger when
``HOOKS_URL_PREFIX`` is set, so a hook stays reachable at its old address; two
ids that map to one name are refused (see :mod:`app.triggers.hooks_import.convert`).
:func:`_env_name` makes a variable name valid in the same way, with a note.
"""

from __future__ import annotations

import re

from app.triggers.schema import NAME_PATTERN

_NAME = re.compile(NAME_PATTERN)
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


def trigger_name(hook_id: str) -> str | None:
    """The trigger name for a hook id: the id when valid, else made valid; None if impossible.

    Lower case; characters other than ``a-z 0-9 _ -`` become ``-``; leading
    ``-``/``_`` are dropped; at most 64 characters.
    """
    if _NAME.match(hook_id):
        return hook_id
    name = re.sub(r"[^a-z0-9_-]", "-", hook_id.lower()).lstrip("-_")[:64]
    return name if name and _NAME.match(name) else None


def _env_name(wanted: str, where: str, notes: list[str]) -> str:
    if _ENV_NAME.match(wanted):
        return wanted
    fixed = re.sub(r"[^A-Za-z0-9_]", "_", wanted)[:128]
    if not _ENV_NAME.match(fixed):
        fixed = "_" + fixed[:127]
    notes.append(f"{where}: variable {wanted!r} is not a valid name; it is {fixed!r}")
    return fixed
