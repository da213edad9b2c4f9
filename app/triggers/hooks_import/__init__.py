"""Converting an adnanh/webhook hooks file into Hookrunner trigger documents.

Contract (``hookrunner import-hooks``): :func:`read_hooks` reads the file the
way webhook does, :func:`convert_hooks` turns each hook into one trigger
document and one report (nothing is dropped without a line in the report),
:func:`render_triggers` and :func:`report_lines` write the triggers file and
the report. The conversion is pure: no store, no environment, no clock. Every
string that came from the file has ``${`` written as ``$${`` (so ``apply``
keeps it literal) and is put into templated fields as a literal (Jinja syntax
in it is not evaluated).

One module per job, each stating its contract:

* :mod:`.reading`: the file read as webhook reads it (YAML quirks, tabs,
  ``-template`` getenv).
* :mod:`.scalars`: single values as webhook's fields read them (Go-like
  numbers), literal templates, and the "cannot be converted" error.
* :mod:`.names`: trigger names from hook ids, environment variable names.
* :mod:`.parameters`: webhook's value sources as templates and rule sources.
* :mod:`.rules`: ``trigger-rule`` as Hookrunner rules.
* :mod:`.request`: ``http-methods`` and how bodies are read.
* :mod:`.action`: the command, its arguments, environment and files.
* :mod:`.response`: the answers, as webhook gives them.
* :mod:`.convert`: one hook, then all of them (checks, clashing names).
* :mod:`.report`: the per-hook report and its text.
* :mod:`.render`: the triggers file text.
"""

from __future__ import annotations

from app.triggers.hooks_import.convert import convert_hooks
from app.triggers.hooks_import.names import trigger_name
from app.triggers.hooks_import.reading import HooksFileError, read_hooks
from app.triggers.hooks_import.render import render_triggers
from app.triggers.hooks_import.report import EVERY_HOOK, ImportResult, report_lines
from app.triggers.hooks_import.response import (
    COMMAND_ERROR_BODY,
    MISMATCH_BODY,
    RULE_ERROR_BODY,
)

__all__ = [
    "COMMAND_ERROR_BODY",
    "EVERY_HOOK",
    "MISMATCH_BODY",
    "RULE_ERROR_BODY",
    "HooksFileError",
    "ImportResult",
    "convert_hooks",
    "read_hooks",
    "render_triggers",
    "report_lines",
    "trigger_name",
]
