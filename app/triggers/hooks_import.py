"""Converting an adnanh/webhook hooks file into Hookrunner trigger documents.

Contract (``hookrunner import-hooks``):

* :func:`read_hooks` reads the file the way webhook does: with a YAML parser
  (a superset of JSON, so "JSON" files written with YAML flow syntax load too),
  after expanding it as a template when ``template`` is set (webhook's
  ``-template`` flag), where ``{{ getenv "NAME" }}`` becomes ``${NAME}``, which
  ``hookrunner apply`` reads from the environment. Any other template action is
  a file-level problem.
* :func:`convert_hooks` turns each hook into one trigger document (plain data,
  what ``hookrunner apply -f`` takes) and one :class:`HookReport`: the name
  given, the differences that remain (``notes``) and, for a hook that cannot be
  converted at all, the reasons (``errors``; that hook has no document). Nothing
  is dropped without a line in the report.
* The conversion is pure: no store, no environment, no clock. Every string that
  came from the file has ``${`` written as ``$${`` (so ``apply`` keeps it
  literal) and is put into templated fields as a literal (Jinja syntax in it is
  not evaluated).

Names: a hook keeps its id as the trigger name when the id is a valid name;
otherwise :func:`trigger_name` makes it one (lower case, other characters
``-``, at most 64). The same function maps ``/hooks/<id>`` to a trigger when
``HOOKS_URL_PREFIX`` is set, so a hook stays reachable at its old address; two
ids that map to one name are refused.

Answers: a converted trigger answers as webhook does. Success: the hook's
``success-http-response-code`` (default 200) with ``response-message``; with
``include-command-output-in-response`` it waits for the command (``response.mode:
wait``) and answers its combined output, or 500 with webhook's fixed text (or
the output, with ``include-command-output-in-response-on-error``). Rules not
satisfied: ``trigger-rule-mismatch-http-response-code`` (default 200) with
``Hook rules were not satisfied.``; a wrong signature: 500 with ``Error occurred
while evaluating hook rules.``. ``response-headers`` go on the answers of a
triggered hook (success and command failure), not on refusals, as in webhook.
"""

from __future__ import annotations

import decimal
import ipaddress
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, ClassVar

import yaml
from pydantic import ValidationError

from app.triggers.response_schema import METHODS
from app.triggers.schema import NAME_PATTERN, TriggerDocument

MISMATCH_BODY = "Hook rules were not satisfied."
RULE_ERROR_BODY = "Error occurred while evaluating hook rules."
COMMAND_ERROR_BODY = (
    "Error occurred while executing the hook's command. Please check your logs for more details."
)
ENV_PREFIX = "HOOK_"
COMMAND_TIMEOUT_SECONDS = 86400  # webhook has no timeout: a day stands for "none"
WAIT_TIMEOUT_SECONDS = 3600  # the longest wait a trigger may ask for
WAIT_OUTPUT_BYTES = 1024 * 1024

# Differences that hold for every converted hook (the README's "What stays different").
EVERY_HOOK = (
    "commands get Hookrunner's minimal environment, not webhook's whole one: add the"
    " variables they need to action.env (${NAME} is read when the file is applied)",
    "executions are queued, one at a time per trigger (concurrency.max: 1), where webhook"
    " starts every command at once",
)
_NAME = re.compile(NAME_PATTERN)
_REFERENCE = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)\}")  # as app.triggers.files
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
# {{ getenv "NAME" }}, optionally piped to js (escaping for a JSON string, which the
# JSON parser undoes: the value is the variable's either way)
_GETENV = re.compile(r"\{\{-?\s*getenv\s+(?:\"([^\"]*)\"|`([^`]*)`)\s*(?:\|\s*js\s*)?-?\}\}")
_ACTION = re.compile(r"\{\{.*?\}\}", re.DOTALL)
_ENV_OPEN, _ENV_CLOSE = "\ue000", "\ue001"  # marks a getenv while the file is parsed
_MARKED = re.compile(f"{_ENV_OPEN}([A-Za-z_][A-Za-z0-9_]*){_ENV_CLOSE}")
_JINJA = ("{{", "{%", "{#")

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
_HMAC_TYPES = {
    "payload-hmac-sha1": "hmac-sha1",
    "payload-hmac-sha256": "hmac-sha256",
    "payload-hmac-sha512": "hmac-sha512",
    "payload-hash-sha1": "hmac-sha1",
    "payload-hash-sha256": "hmac-sha256",
    "payload-hash-sha512": "hmac-sha512",
}


class HooksFileError(ValueError):
    """The file cannot be read as a hooks file; ``problems`` lists why, one line each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class _Unconvertible(Exception):
    """A hook part that has no Hookrunner equivalent; the hook is not converted."""


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


def trigger_name(hook_id: str) -> str | None:
    """The trigger name for a hook id: the id when valid, else made valid; None if impossible.

    Lower case; characters other than ``a-z 0-9 _ -`` become ``-``; leading
    ``-``/``_`` are dropped; at most 64 characters.
    """
    if _NAME.match(hook_id):
        return hook_id
    name = re.sub(r"[^a-z0-9_-]", "-", hook_id.lower()).lstrip("-_")[:64]
    return name if name and _NAME.match(name) else None


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
            raise HooksFileError([f"not valid YAML or JSON: {detail}"]) from None
    if parsed is None:
        return []
    if not isinstance(parsed, list):
        raise HooksFileError(["a hooks file is a list of hooks"])
    hooks = _escape_dollar(parsed)
    assert isinstance(hooks, list)
    return hooks


def _literal(text: str) -> str:
    """``text`` as a template that renders to exactly ``text``."""
    if not any(marker in text for marker in _JINJA):
        return text
    if "{% endraw %}" not in text:
        return "{% raw %}" + text + "{% endraw %}"
    return "{{ " + json.dumps(text) + " }}"


def _go_float(value: float) -> str:
    """``value`` as Go's ``strconv.FormatFloat(value, 'g', -1, 64)`` writes it (``2``,
    ``1.5``, ``1e+06``): how webhook turns a YAML number into a string field."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "-0" if math.copysign(1, value) < 0 else "0"
    sign, digit_tuple, exponent = decimal.Decimal(repr(value)).as_tuple()
    assert isinstance(exponent, int)
    digits = "".join(map(str, digit_tuple)).rstrip("0") or "0"
    exponent += len(digit_tuple) - len(digits)
    point = len(digits) + exponent  # where the decimal point goes in digits
    negative = "-" if sign else ""
    if point - 1 < -4 or point - 1 >= 6:  # webhook's %e form
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        power = point - 1
        return f"{negative}{mantissa}e{'-' if power < 0 else '+'}{abs(power):02d}"
    if point <= 0:
        return f"{negative}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return negative + digits + "0" * (point - len(digits))
    return f"{negative}{digits[:point]}.{digits[point:]}"


def _scalar(value: Any) -> str:
    """A YAML scalar as webhook's string fields read it (``true``, ``42``, ``2`` for
    ``2.0``, '' for null)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return _go_float(value)
    if isinstance(value, dict | list):
        raise _Unconvertible(f"{json.dumps(value)[:80]} where a string is expected")
    return str(value)


def _name_of(argument: dict[str, Any]) -> str:
    return _scalar(argument.get("name"))


def _check_argument(argument: Any, where: str) -> dict[str, Any]:
    if not isinstance(argument, dict):
        raise _Unconvertible(f"{where}: an argument must be a mapping with source and name")
    if argument.get("headers-to-add-to-signature-payload"):
        raise _Unconvertible(f"{where}: headers-to-add-to-signature-payload has no equivalent")
    return argument


def _value_template(argument: dict[str, Any], where: str, notes: list[str]) -> str:
    """A template rendering what webhook's argument gives (missing: '')."""
    source, name = _scalar(argument.get("source")), _name_of(argument)
    quoted = json.dumps(name)
    if source == "header":
        return f"{{{{ headers | field({json.dumps(name.lower())}) }}}}"
    if source in ("url", "query"):
        return f"{{{{ query | field({quoted}) }}}}"
    if source == "payload":
        return f"{{{{ body | field({quoted}) }}}}"
    if source == "string":
        return _literal(name)
    if source == "raw-request-body":
        return "{{ raw_body }}"
    if source == "request":
        if name.lower() == "method":
            return "{{ request.method }}"
        if name.lower() == "remote-addr":
            notes.append(f"{where}: the client address comes without the ':port' webhook adds")
            return "{{ request.remote_addr }}"
        raise _Unconvertible(f"{where}: request value {name!r} (method or remote-addr)")
    if source == "entire-payload":
        return "{{ body | text" + _GO_JSON_ESCAPES + " }}"
    if source == "entire-headers":
        notes.append(f"{where}: header names are lower-case (webhook writes X-Hub-Signature)")
        return "{{ headers | text" + _GO_JSON_ESCAPES + " }}"
    if source == "entire-query":
        return "{{ query | text" + _GO_JSON_ESCAPES + " }}"
    raise _Unconvertible(f"{where}: unknown source {source!r}")


def _rule_source(argument: Any, where: str, notes: list[str]) -> str:
    """The rules ``source`` for a webhook parameter."""
    argument = _check_argument(argument, where)
    source, name = _scalar(argument.get("source")), _name_of(argument)
    prefixed = {"header": "header", "url": "query", "query": "query", "payload": "payload"}
    if source in prefixed:
        if not name:
            raise _Unconvertible(f"{where}: a {source} parameter needs a name")
        return f"{prefixed[source]}:{name}"
    if source == "string":
        return f"string:{name}"
    if source == "request" and name.lower() == "method":
        return "method"
    if source == "request" and name.lower() == "remote-addr":
        notes.append(f"{where}: the client address is matched without the ':port' webhook adds")
        return "remote_addr"
    plain = {
        "raw-request-body": "raw_body",
        "entire-payload": "body",
        "entire-headers": "headers",
        "entire-query": "query",
    }
    if source in plain:
        if source == "entire-headers":
            notes.append(f"{where}: header names are lower-case in the JSON text")
        return plain[source]
    raise _Unconvertible(f"{where}: unknown parameter source {source!r}")


# Go's JSON writer escapes these characters in strings; so do imported templates, so that
# scripts get the text they got from webhook.
_GO_JSON_ESCAPES = (
    r' | replace("&", "\\u0026") | replace("<", "\\u003c") | replace(">", "\\u003e")'
    r' | replace("\u2028", "\\u2028") | replace("\u2029", "\\u2029")'
)
_ALWAYS = {"match": {"type": "value", "source": "string:", "value": ""}}


def _rule(node: Any, where: str, soft: bool, notes: list[str]) -> dict[str, Any]:
    """A webhook rule as a Hookrunner rules node (see app.triggers.rules_schema)."""
    if not isinstance(node, dict):
        raise _Unconvertible(f"{where}: a rule must be a mapping")
    for key in ("and", "or", "not", "match"):  # webhook's order when several are set
        if node.get(key) is not None:
            break
    else:
        notes.append(f"{where}: an empty rule never matches (as in webhook)")
        return {"not": _ALWAYS}
    extra = set(node) - {"and", "or", "not", "match"}
    if extra or len([k for k in node if node[k] is not None]) > 1:
        notes.append(f"{where}: only {key!r} is read (webhook ignores the other keys too)")
    value = node[key]
    if key in ("and", "or"):
        if not isinstance(value, list):
            raise _Unconvertible(f"{where}.{key}: needs a list of rules")
        if not value:
            notes.append(f"{where}.{key}: an empty list is {key == 'and'} (as in webhook)")
            return _ALWAYS if key == "and" else {"not": _ALWAYS}
        children = [
            _rule(child, f"{where}.{key}[{i}]", soft, notes) for i, child in enumerate(value)
        ]
        if key == "or" and soft:
            return {"or": children, "soft_signature_failures": True}
        return {key: children}
    if key == "not":
        return {"not": _rule(value, f"{where}.not", soft, notes)}
    return {"match": _match(value, f"{where}.match", notes)}


def _has_or(node: Any) -> bool:
    if isinstance(node, dict):
        return "or" in node or any(_has_or(child) for child in node.values())
    if isinstance(node, list):
        return any(_has_or(child) for child in node)
    return False


def _match(match: Any, where: str, notes: list[str]) -> dict[str, Any]:
    if not isinstance(match, dict):
        raise _Unconvertible(f"{where}: a match must be a mapping")
    kind = _scalar(match.get("type"))
    if kind == "ip-whitelist":
        return {"type": "ip", "cidrs": _ip_ranges(_scalar(match.get("ip-range")), where, notes)}
    if kind == "scalr-signature":
        return {"type": "scalr", "secret": _secret(match, where)}
    source = _rule_source(match.get("parameter"), f"{where}.parameter", notes)
    if kind == "value":
        return {"type": "value", "source": source, "value": _scalar(match.get("value"))}
    if kind == "regex":
        pattern = _scalar(match.get("regex"))
        try:
            re.compile(pattern)
        except re.error as exc:
            raise _Unconvertible(f"{where}: regex {pattern!r} is not valid here: {exc}") from None
        return {"type": "regex", "source": source, "regex": pattern}
    if kind in _HMAC_TYPES:
        if kind.startswith("payload-hash-"):
            notes.append(f"{where}: {kind} is webhook's deprecated name of {_HMAC_TYPES[kind]}")
        return {"type": _HMAC_TYPES[kind], "source": source, "secret": _secret(match, where)}
    raise _Unconvertible(f"{where}: unknown match type {kind!r}")


def _secret(match: dict[str, Any], where: str) -> str:
    secret = _scalar(match.get("secret"))
    if not secret:
        raise _Unconvertible(f"{where}: a signature match without a secret always fails")
    return secret


def _ip_ranges(text: str, where: str, notes: list[str]) -> list[str]:
    cidrs = []
    for item in text.split():
        try:
            if "/" in item:
                cidrs.append(str(ipaddress.ip_network(item, strict=False)))
                continue
            address = ipaddress.ip_address(item)
        except ValueError:
            raise _Unconvertible(f"{where}: {item!r} is not an IP address or range") from None
        if address.version == 6:
            notes.append(
                f"{where}: {item} is matched exactly (/128); webhook reads a plain IPv6 "
                "address as the whole /32 range around it"
            )
        cidrs.append(f"{address}/{address.max_prefixlen}")
    if not cidrs:
        raise _Unconvertible(f"{where}: ip-whitelist without an ip-range")
    return cidrs


def _flag(hook: dict[str, Any], key: str) -> bool:
    value = hook.get(key)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise _Unconvertible(f"{key}: {value!r} is not true or false")
    return value


def _status(hook: dict[str, Any], key: str, default: int) -> int:
    value = hook.get(key)
    if value is None or value == 0:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Unconvertible(f"{key}: {value!r} is not a status code")
    if not 200 <= value <= 599:
        raise _Unconvertible(f"{key}: {value} (Hookrunner answers 200-599)")
    return value


def _arguments(hook: dict[str, Any], key: str) -> list[dict[str, Any]]:
    value = hook.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise _Unconvertible(f"{key}: must be a list")
    return [_check_argument(item, f"{key}[{i}]") for i, item in enumerate(value)]


def _env_name(wanted: str, where: str, notes: list[str]) -> str:
    if _ENV_NAME.match(wanted):
        return wanted
    fixed = re.sub(r"[^A-Za-z0-9_]", "_", wanted)[:128]
    if not _ENV_NAME.match(fixed):
        fixed = "_" + fixed[:127]
    notes.append(f"{where}: variable {wanted!r} is not a valid name; it is {fixed!r}")
    return fixed


def _methods(hook: dict[str, Any], notes: list[str]) -> list[str]:
    value = hook.get("http-methods")
    if not value:
        return list(METHODS)
    if not isinstance(value, list):
        raise _Unconvertible("http-methods: must be a list")
    methods = []
    for item in value:
        method = _scalar(item).strip().upper()
        if method in METHODS:
            methods.append(method)
        else:
            notes.append(f"http-methods: {method!r} is not served by Hookrunner")
    if not methods:
        raise _Unconvertible("http-methods: none of them is served by Hookrunner")
    return methods


def _payload(hook: dict[str, Any], notes: list[str]) -> dict[str, Any]:
    """How webhook reads bodies: JSON, forms as fields, XML, multipart."""
    payload: dict[str, Any] = {"xml": True, "multipart": True, "form_payload": "keep"}
    content_type = _scalar(hook.get("incoming-payload-content-type"))
    if content_type:
        payload["content_type"] = content_type
    fields = []
    for i, argument in enumerate(_arguments(hook, "parse-parameters-as-json")):
        source, name = _scalar(argument.get("source")), _name_of(argument)
        if source == "payload" and name and "." not in name:
            fields.append(name)
        else:
            notes.append(
                f"parse-parameters-as-json[{i}]: only top-level payload fields are decoded;"
                f" {source} {name!r} stays text"
            )
    if fields:
        payload["json_fields"] = fields
    return payload


def _response(hook: dict[str, Any], has_rules: bool, notes: list[str]) -> dict[str, Any]:
    headers: dict[str, str] = {}
    raw_headers = hook.get("response-headers") or []
    if not isinstance(raw_headers, list):
        raise _Unconvertible("response-headers: must be a list of {name, value}")
    for item in raw_headers:
        if not isinstance(item, dict) or not _scalar(item.get("name")):
            raise _Unconvertible("response-headers: each entry needs a name and a value")
        headers[_scalar(item["name"])] = _literal(_scalar(item.get("value")))
    success = _status(hook, "success-http-response-code", 200)
    response: dict[str, Any] = {"status": {"success": success}, "headers": headers}
    message = _scalar(hook.get("response-message"))
    capture = _flag(hook, "include-command-output-in-response")
    on_error = _flag(hook, "include-command-output-in-response-on-error")
    if capture:
        response.update(
            mode="wait",
            timeout_seconds=WAIT_TIMEOUT_SECONDS,
            max_output_bytes=WAIT_OUTPUT_BYTES,
            body="output",
            failure_body="output" if on_error else COMMAND_ERROR_BODY,
        )
        response["status"]["failure"] = 500
        notes.append(
            "include-command-output-in-response: the answer waits for the command at most"
            f" {WAIT_TIMEOUT_SECONDS} s (and RESPONSE_WAIT_MAX_SECONDS), then is 202 while it"
            f" goes on; output beyond {WAIT_OUTPUT_BYTES} bytes is cut"
        )
        if message:
            notes.append("response-message is not sent when the output is (as in webhook)")
    else:
        if on_error:
            notes.append(
                "include-command-output-in-response-on-error has no effect without"
                " include-command-output-in-response (as in webhook)"
            )
        if not message:
            response["body"] = "none"
        elif message in ("none", "output"):  # keywords of response.body: a literal here
            response["body"] = "{{ " + json.dumps(message) + " }}"
        else:
            response["body"] = _literal(message)
    if has_rules:
        mismatch = _status(hook, "trigger-rule-mismatch-http-response-code", 200)
        # webhook sends response-headers only once the hook is triggered.
        response["mismatch"] = {"status": mismatch, "body": MISMATCH_BODY}
        response["rule_error"] = {"status": 500, "body": RULE_ERROR_BODY}
    if not headers:
        del response["headers"]
    return response


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
