"""Trigger fields about how a request is answered and read: ``response``, ``payload``,
``methods``, and a command's ``files``.

``response`` (absent: Hookrunner's JSON acknowledgement, 202):

* ``mode: async`` (default) answers as soon as the delivery is recorded, with
  ``status.success`` (default 202), ``headers`` and ``body`` (a template over the
  request and ``execution_id``; absent: the JSON acknowledgement).
* ``mode: wait`` records the delivery first, then waits up to ``timeout_seconds``
  (never beyond ``RESPONSE_WAIT_MAX_SECONDS``) for the execution to end and
  answers with its result: ``status.success`` (default 200) or ``status.failure``
  (default 500), and ``body`` (``failure_body`` on failure, default ``body``):
  ``"output"`` (the command's output, at most ``max_output_bytes``), ``"none"``,
  or a template that also sees ``output``, ``exit_code``, ``status`` and
  ``error``; absent, the JSON acknowledgement with a ``result`` object. Only
  ``succeeded`` is a success; ``failed``, ``timed_out``, ``cancelled`` and
  ``interrupted`` are failures. A wait that runs out answers 202 with the
  acknowledgement; the execution goes on (:mod:`app.ingest.waits`).
* ``mismatch`` answers a request the filter or the ``rules`` turned away
  (default 202 ``ignored``); ``rule_error`` one whose signature rule failed
  (default 401 ``signature_invalid``).
* Header values are templates of printable ASCII (no line breaks or control
  characters, which would split or break the response); a value that renders
  to anything else is sent empty (:mod:`app.ingest.replies`).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from app.triggers.templates import TemplateRenderError, compile_template

_HEADER_NAME = r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,128}$"
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
Method = Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
BODY_KEYWORDS = ("output", "none")


class StrictModel(BaseModel):
    """A part of a trigger document: unknown keys are refused, and so are values of the
    wrong JSON type (``"no"`` or ``0`` for a boolean, ``"30"``, ``true`` or ``2.0`` for an
    integer), which lax validation would quietly convert. Numbers stay numbers: an integer
    is accepted where a float is asked for."""

    model_config = ConfigDict(extra="forbid", strict=True)


def _template(value: str | None) -> str | None:
    if value is None or value in BODY_KEYWORDS:
        return value
    try:
        compile_template(value)
    except TemplateRenderError as exc:
        raise ValueError(str(exc)) from None
    return value


StatusCode = Annotated[int, Field(ge=200, le=599)]

# What a response header value may hold: printable ASCII and tabs (RFC 9110 field
# values without the obsolete 8-bit text, which servers and clients read apart).
HEADER_VALUE = re.compile(r"[\t\x20-\x7e]*")


def _header_template(value: str) -> str:
    if not HEADER_VALUE.fullmatch(value):
        raise ValueError("a header value holds printable ASCII only (no line breaks)")
    _template(value)
    return value


HeaderTemplate = Annotated[str, Field(max_length=8192), AfterValidator(_header_template)]
ResponseHeaders = dict[Annotated[str, Field(pattern=_HEADER_NAME)], HeaderTemplate]


class Reply(StrictModel):
    """A fixed answer: status, headers, body template (absent: the JSON answer)."""

    status: StatusCode = 202
    headers: ResponseHeaders = Field(default_factory=dict)
    body: str | None = Field(None, max_length=65536)

    @field_validator("body")
    @classmethod
    def _body(cls, value: str | None) -> str | None:
        return _template(value)


class ResponseStatus(StrictModel):
    success: StatusCode | None = Field(None, description="default 202 async, 200 wait")
    failure: StatusCode = 500


class ResponseSpec(StrictModel):
    mode: Literal["async", "wait"] = "async"
    timeout_seconds: float = Field(10, gt=0, le=3600)
    status: ResponseStatus = Field(default_factory=ResponseStatus)  # type: ignore[arg-type]
    headers: ResponseHeaders = Field(default_factory=dict)
    body: str | None = Field(None, max_length=65536, description='"output" | "none" | template')
    failure_body: str | None = Field(None, max_length=65536)
    max_output_bytes: int = Field(64 * 1024, ge=0, le=16 * 1024 * 1024)
    mismatch: Reply | None = None
    rule_error: Reply | None = None

    @field_validator("status", mode="before")
    @classmethod
    def _status_shorthand(cls, value: Any) -> Any:
        return {"success": value} if isinstance(value, int) else value

    @field_validator("body", "failure_body")
    @classmethod
    def _bodies(cls, value: str | None) -> str | None:
        return _template(value)

    @model_validator(mode="after")
    def _async_body(self) -> ResponseSpec:
        if self.mode == "async" and self.body == "output":
            raise ValueError('body "output" needs mode "wait"')
        return self

    def success_status(self) -> int:
        if self.status.success is not None:
            return self.status.success
        return 200 if self.mode == "wait" else 202


class PayloadOptions(StrictModel):
    """How the body is read, beyond JSON and forms (for filters, rules and templates)."""

    content_type: str | None = Field(
        None, max_length=256, description="Read every body as this type, whatever it says."
    )
    xml: bool = Field(
        False, description="XML bodies become objects (attributes '-name', text '#text')."
    )
    multipart: bool = Field(False, description="multipart/form-data fields become the body.")
    form_payload: Literal["unwrap", "keep"] = Field(
        "unwrap", description="keep: a form's lone 'payload' field stays a field"
    )
    json_fields: list[Annotated[str, Field(min_length=1, max_length=256)]] = Field(
        default_factory=list, max_length=64, description="Top-level body fields holding JSON text."
    )


class FileSpec(StrictModel):
    """A temporary file the command gets; its path is in the named variable."""

    content: str = Field(max_length=65536, description="Template")
    base64: bool = Field(False, description="Decode the rendered text as base64.")

    @field_validator("content")
    @classmethod
    def _content(cls, value: str) -> str:
        _template(value)
        return value


def check_file_names(files: dict[str, FileSpec]) -> dict[str, FileSpec]:
    for name in files:
        if not _ENV_NAME.match(name):
            raise ValueError(f"invalid environment variable name {name!r}")
        if name.upper().startswith("HOOKRUNNER_"):
            raise ValueError(f"{name!r}: HOOKRUNNER_ variables are set by Hookrunner")
    return files
