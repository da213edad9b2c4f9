"""Reading a hooks file the way webhook does.

Contract: :func:`read_hooks` reads the file with a YAML parser (a superset of
JSON, so "JSON" files written with YAML flow syntax load too) whose scalars
resolve as webhook's parser (Go yaml.v2) resolves them; JSON indented with
tabs, which webhook's parser takes and PyYAML does not, is read as JSON. With
``template`` (webhook's ``-template`` flag) the text is first expanded as a
template, where ``{{ getenv "NAME" }}`` becomes ``${NAME}``, which ``hookrunner
apply`` reads from the environment. Any other template action is a file-level
problem. Every string that came from the file has ``${`` written as ``$${`` (so
``apply`` keeps it literal). A file that cannot be read raises
:class:`HooksFileError`, one line per problem.
"""

from __future__ import annotations

import json
import re
from typing import Any, ClassVar

import yaml

from app.triggers.hooks_import.names import _ENV_NAME

# {{ getenv "NAME" }}, optionally piped to js (escaping for a JSON string, which the
# JSON parser undoes: the value is the variable's either way)
_GETENV = re.compile(r"\{\{-?\s*getenv\s+(?:\"([^\"]*)\"|`([^`]*)`)\s*(?:\|\s*js\s*)?-?\}\}")
_ACTION = re.compile(r"\{\{.*?\}\}", re.DOTALL)
_ENV_OPEN, _ENV_CLOSE = "\ue000", "\ue001"  # marks a getenv while the file is parsed
_MARKED = re.compile(f"{_ENV_OPEN}([A-Za-z_][A-Za-z0-9_]*){_ENV_CLOSE}")


class HooksFileError(ValueError):
    """The file cannot be read as a hooks file; ``problems`` lists why, one line each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def _escape_dollar(value: Any) -> Any:
    """``${`` as ``$${`` in every string (apply would read it as a variable), getenv marks
    as ``${NAME}``."""
    if isinstance(value, str):
        return _MARKED.sub(r"${\1}", value.replace("${", "$${"))
    if isinstance(value, dict):
        return {key: _escape_dollar(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_escape_dollar(item) for item in value]
    return value


def _expand_template(text: str) -> tuple[str, list[str]]:
    """The ``-template`` expansion of webhook: getenv calls marked, other actions reported."""
    problems: list[str] = []

    def getenv(match: re.Match[str]) -> str:
        name = match.group(1) if match.group(1) is not None else match.group(2)
        if not _ENV_NAME.match(name):
            problems.append(f"getenv {name!r}: not an environment variable name")
            return ""
        return f"{_ENV_OPEN}{name}{_ENV_CLOSE}"

    expanded = _GETENV.sub(getenv, text)
    for action in _ACTION.findall(expanded):
        problems.append(f'template action {action!r}: only {{{{ getenv "NAME" }}}} is converted')
    return expanded, problems


class _PeerLoader(yaml.SafeLoader):
    """YAML scalars resolved as webhook's parser (Go yaml.v2) resolves them.

    Like PyYAML it reads YAML 1.1, with two differences that change values:
    ``y``/``Y``/``n``/``N`` are booleans too (so a ``name: n`` is ``"false"``),
    and base-60 numbers do not exist (``10:30`` stays text).
    """

    bool_values: ClassVar[dict[str, bool]] = {
        **yaml.SafeLoader.bool_values,
        "y": True,
        "n": False,
    }


_BOOL, _INT, _FLOAT = (f"tag:yaml.org,2002:{kind}" for kind in ("bool", "int", "float"))
_PeerLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in (_BOOL, _INT, _FLOAT)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_PeerLoader.add_implicit_resolver(
    _BOOL,
    re.compile(
        r"^(?:[yYnN]|yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$"
    ),
    list("yYnNtTfFoO"),
)
_PeerLoader.add_implicit_resolver(
    _INT,
    re.compile(r"^(?:[-+]?0b[01_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+)$"),
    list("-+0123456789"),
)
_PeerLoader.add_implicit_resolver(
    _FLOAT,
    re.compile(
        r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?|[-+]?\.[0-9_]+(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)


def read_hooks(text: str, *, template: bool = False) -> list[Any]:
    """The hooks of a file's text (a list of mappings); raises HooksFileError.

    With ``template``, the text is first expanded like webhook's ``-template``
    flag (see the module docstring). The result has ``${`` escaped and getenv
    calls as ``${NAME}``, ready for :func:`convert_hooks`.
    """
    if template:
        text, problems = _expand_template(text)
        if problems:
            raise HooksFileError(problems)
    try:
        parsed = yaml.load(text, Loader=_PeerLoader)  # noqa: S506 - a SafeLoader
    except yaml.YAMLError as exc:
        try:  # JSON indented with tabs: webhook's parser takes it, PyYAML does not
            parsed = json.loads(text)
        except ValueError:
            detail = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
            problems = [f"not valid YAML or JSON: {detail}"]
            if not template and _ACTION.search(text):
                problems.append(
                    "the file holds {{ ... }} actions: if webhook reads it with -template,"
                    " import it with --template"
                )
            raise HooksFileError(problems) from None
    if parsed is None:
        return []
    if not isinstance(parsed, list):
        raise HooksFileError(["a hooks file is a list of hooks"])
    hooks = _escape_dollar(parsed)
    assert isinstance(hooks, list)
    return hooks
