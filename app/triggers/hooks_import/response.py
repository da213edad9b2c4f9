"""How a converted trigger answers: as webhook does.

Contract: success is the hook's ``success-http-response-code`` (default 200)
with ``response-message``; with ``include-command-output-in-response`` it waits
for the command (``response.mode: wait``) and answers its combined output, or
500 with webhook's fixed text (or the output, with
``include-command-output-in-response-on-error``). Rules not satisfied:
``trigger-rule-mismatch-http-response-code`` (default 200) with ``Hook rules
were not satisfied.``; a wrong signature: 500 with ``Error occurred while
evaluating hook rules.``. ``response-headers`` go on the answers of a triggered
hook (success and command failure), not on refusals, as in webhook.
"""

from __future__ import annotations

import json
from typing import Any

from app.triggers.hooks_import.scalars import _flag, _literal, _scalar, _Unconvertible

MISMATCH_BODY = "Hook rules were not satisfied."
RULE_ERROR_BODY = "Error occurred while evaluating hook rules."
COMMAND_ERROR_BODY = (
    "Error occurred while executing the hook's command. Please check your logs for more details."
)
WAIT_TIMEOUT_SECONDS = 3600  # the longest wait a trigger may ask for
WAIT_OUTPUT_BYTES = 1024 * 1024


def _status(hook: dict[str, Any], key: str, default: int) -> int:
    value = hook.get(key)
    if value is None or value == 0:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Unconvertible(f"{key}: {value!r} is not a status code")
    if not 200 <= value <= 599:
        raise _Unconvertible(f"{key}: {value} (Hookrunner answers 200-599)")
    return value


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
