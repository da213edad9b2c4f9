"""Trigger files: the YAML or JSON form of triggers kept under version control.

Reading (:func:`load_documents`):

* A file holds trigger documents (the same JSON as ``POST /admin/triggers``) as a
  list, as ``{"triggers": [...]}``, as one document, or as several YAML documents
  separated by ``---`` (each a document or a list). ``.json`` files are parsed as
  JSON, anything else as YAML (a superset of JSON).
* ``${NAME}`` in any string value is replaced by the environment variable
  ``NAME`` when the file is read (secrets need never be written in clear);
  ``$${`` stands for a literal ``${``. Every missing variable is reported, with
  the trigger and field that names it, and then nothing is applied.

Writing (:func:`export_documents`): stored triggers as documents without default
values, every secret replaced by a ``${...}`` placeholder whose name is derived
from the trigger (``deploy`` -> ``DEPLOY_SECRET``, ``DEPLOY_SIGNING_SECRET``,
...), and literal ``${`` in other values escaped, so that applying the export
with those variables set gives back the same triggers.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from app.redaction import is_sensitive_header, redact_url
from app.triggers.schema import TriggerDocument

_REFERENCE = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class TriggersFileError(ValueError):
    """The file cannot be applied; ``problems`` lists every reason, one line each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def _parse(text: str, is_json: bool) -> list[Any]:
    try:
        if is_json:
            return [json.loads(text)]
        return [item for item in yaml.safe_load_all(text) if item is not None]
    except (ValueError, yaml.YAMLError) as exc:
        kind = "JSON" if is_json else "YAML"
        raise TriggersFileError([f"not valid {kind}: {str(exc).splitlines()[0]}"]) from None


def _documents(parsed: list[Any]) -> list[Any]:
    documents: list[Any] = []
    for item in parsed:
        if isinstance(item, dict) and set(item) == {"triggers"}:
            item = item["triggers"]
        if isinstance(item, list):
            documents.extend(item)
        else:
            documents.append(item)
    return documents


def _resolve(value: Any, env: Mapping[str, str], where: str, missing: list[str]) -> Any:
    if isinstance(value, str):

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name is None:
                return "${"
            if name not in env:
                missing.append(f"{where}: environment variable {name} is not set")
                return ""
            return env[name]

        return _REFERENCE.sub(substitute, value)
    if isinstance(value, dict):
        return {key: _resolve(item, env, f"{where}.{key}", missing) for key, item in value.items()}
    if isinstance(value, list):
        return [_resolve(item, env, f"{where}[{i}]", missing) for i, item in enumerate(value)]
    return value


def label(index: int, document: Any) -> str:
    """How problems name a document: ``triggers[2] (deploy)``."""
    name = document.get("name") if isinstance(document, dict) else None
    return f"triggers[{index}]" + (f" ({name})" if isinstance(name, str) else "")


def parse_documents(text: str, env: Mapping[str, str], *, is_json: bool) -> list[dict[str, Any]]:
    """The trigger documents of a file's text with ``${...}`` resolved from ``env``.

    Raises TriggersFileError listing every problem (parse error, an entry that is
    not a mapping or has no name, a name given twice, a missing variable).
    """
    documents = _documents(_parse(text, is_json))
    problems: list[str] = []
    resolved: list[dict[str, Any]] = []
    seen: set[str] = set()
    for index, document in enumerate(documents):
        where = label(index, document)
        if not isinstance(document, dict):
            problems.append(f"{where}: a trigger document must be a mapping")
            continue
        name = document.get("name")
        if not isinstance(name, str) or not name:
            problems.append(f"{where}: name is required")
            continue
        if name in seen:
            problems.append(f"{where}: the name {name!r} is given twice")
        seen.add(name)
        resolved.append(_resolve(document, env, where, problems))
    if problems:
        raise TriggersFileError(problems)
    return resolved


def load_documents(path: Path, env: Mapping[str, str]) -> list[dict[str, Any]]:
    """:func:`parse_documents` of the file at ``path``; an unreadable file is a problem too."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TriggersFileError([f"cannot read {path}: {exc}"]) from None
    return parse_documents(text, env, is_json=path.suffix.lower() == ".json")


def variable_prefix(name: str) -> str:
    """``deploy-prod`` -> ``DEPLOY_PROD``: the start of a trigger's placeholder names."""
    return re.sub(r"[^A-Z0-9]", "_", name.upper())


def _escape(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("${", "$${")
    if isinstance(value, dict):
        return {key: _escape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_escape(item) for item in value]
    return value


def _placeholders(document: TriggerDocument, out: dict[str, Any], names: list[str]) -> None:
    """Put ``${...}`` placeholders where ``document`` has secrets; record their names."""
    prefix = variable_prefix(document.name)

    def placeholder(suffix: str) -> str:
        names.append(f"{prefix}_{suffix}")
        return "${" + f"{prefix}_{suffix}" + "}"

    if document.auth.secrets:
        out["auth"]["secrets"] = [
            placeholder("SECRET" if i == 0 else f"SECRET_{i + 1}")
            for i in range(len(document.auth.secrets))
        ]
    action = document.action
    if action.type == "http":
        if action.signing_secret:
            out["action"]["signing_secret"] = placeholder("SIGNING_SECRET")
        if redact_url(action.url) != action.url:
            out["action"]["url"] = placeholder("URL")
        for header in action.headers:
            if is_sensitive_header(header):
                suffix = "HEADER_" + variable_prefix(header)
                out["action"]["headers"][header] = placeholder(suffix)
    notify = document.notify
    if notify is not None:
        if notify.signing_secret:
            out["notify"]["signing_secret"] = placeholder("NOTIFY_SIGNING_SECRET")
        if notify.url and redact_url(notify.url) != notify.url:
            out["notify"]["url"] = placeholder("NOTIFY_URL")


def export_documents(documents: list[TriggerDocument]) -> tuple[list[dict[str, Any]], list[str]]:
    """Exportable documents and the environment variables they reference, in order."""
    exported: list[dict[str, Any]] = []
    names: list[str] = []
    for document in documents:
        out = _escape(document.model_dump(exclude_defaults=True))
        out = {"name": document.name, **out}
        out.setdefault("auth", {})
        out["auth"].setdefault("scheme", document.auth.scheme)
        _placeholders(document, out, names)
        exported.append(out)
    return exported, names


def render(documents: list[dict[str, Any]], variables: list[str], *, as_json: bool) -> str:
    """The text of an exported file (YAML with a header comment, or JSON)."""
    if as_json:
        return json.dumps({"triggers": documents}, indent=2) + "\n"
    header = [
        "# Hookrunner triggers, exported by `hookrunner export` (secrets left out).",
        "# Apply with `hookrunner apply -f <this file>` after setting:",
        *(f"#   {name}" for name in variables),
    ]
    if not variables:
        header[-1] = "# Apply with `hookrunner apply -f <this file>`."
    body = yaml.safe_dump({"triggers": documents}, sort_keys=False, allow_unicode=True)
    return "\n".join(header) + "\n" + body
