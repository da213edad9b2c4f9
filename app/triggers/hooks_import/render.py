"""The triggers file that ``hookrunner import-hooks`` writes.

Contract: :func:`render_triggers` writes the converted documents as YAML (a
header comment names the source and the ``${NAME}`` variables to set before
``hookrunner apply``; no anchors or aliases) or as JSON.
"""

from __future__ import annotations

import json
import re
from typing import Any

import yaml

from app.triggers.hooks_import.report import ImportResult


class _PlainDumper(yaml.SafeDumper):
    """YAML without anchors and aliases (repeated headers are written out again)."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def render_triggers(result: ImportResult, *, source: str, as_json: bool) -> str:
    """The triggers file text (YAML with a header comment naming the source, or JSON)."""
    if as_json:
        return json.dumps({"triggers": result.documents}, indent=2) + "\n"
    variables = sorted(
        set(re.findall(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)\}", json.dumps(result.documents)))
    )
    header = [
        f"# Hookrunner triggers converted from the adnanh/webhook hooks file {source}",
        "# by `hookrunner import-hooks`. Apply with `hookrunner apply -f <this file>`"
        + (" after setting:" if variables else "."),
        *(f"#   {name}" for name in variables),
    ]
    body = yaml.dump(
        {"triggers": result.documents},
        Dumper=_PlainDumper,
        sort_keys=False,
        allow_unicode=True,
        width=100,
    )
    return "\n".join(header) + "\n" + body
