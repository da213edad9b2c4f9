"""The trigger document: what a trigger verifies, filters, deduplicates and runs.

:class:`TriggerDocument` is the stored and validated form (secrets included).
Secrets are write-only: :func:`public_view` is the only shape the API returns.
Besides ``auth.secrets``, an HTTP action's ``signing_secret`` and
``notify.signing_secret`` (shown as ``has_signing_secret``), an HTTP action's
credentials are shown masked: the URL's user-info and credential query values
(:func:`app.redaction.redact_url`) and the values of credential headers such as
``Authorization`` (:func:`app.redaction.is_sensitive_header`) read ``[redacted]``.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any, Literal

import jmespath
from jmespath.exceptions import JMESPathError
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from app.redaction import REDACTED, is_sensitive_header, redact_url
from app.triggers.response_schema import (
    HEADER_VALUE,
    METHODS,
    FileSpec,
    Method,
    PayloadOptions,
    ResponseSpec,
    StrictModel,
    check_file_names,
)
from app.triggers.rules_schema import check_rules, mask_rule_secrets, restore_rule_secrets
from app.triggers.templates import TemplateRenderError, compile_template

NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
_HEADER_NAME = r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,128}$"
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")

Scheme = Literal["github", "stripe", "slack", "standard", "hmac", "token", "none"]


def _check_template(value: str) -> str:
    try:
        compile_template(value)
    except TemplateRenderError as exc:
        raise ValueError(str(exc)) from None
    return value


def _check_quiet_template(value: str, what: str) -> str:
    """As :func:`_check_template`, for text that may hold a credential (an environment
    value, a URL, a header value): the error names ``what``, never the text itself."""
    try:
        compile_template(value)
    except TemplateRenderError:
        raise ValueError(
            f"the template of {what} does not compile (its text is not repeated here:"
            " it may hold a credential)"
        ) from None
    return value


def _no_nul(value: str, what: str) -> str:
    if "\x00" in value:
        raise ValueError(f"{what} holds a NUL character, which no program argument can")
    return value


def _check_jmespath(expression: str) -> str:
    try:
        jmespath.compile(expression)
    except JMESPathError as exc:
        raise ValueError(f"invalid JMESPath expression: {exc}") from None
    return expression


def _check_network(value: str) -> str:
    try:
        return str(ipaddress.ip_network(value.strip(), strict=False))
    except ValueError:
        raise ValueError(f"not an IP network (CIDR): {value[:64]!r}") from None


class Auth(StrictModel):
    """How requests prove they come from the sender."""

    scheme: Scheme
    secrets: list[Annotated[str, Field(min_length=1, max_length=4096)]] = Field(
        default_factory=list, max_length=10, description="Write-only; any one may match."
    )
    tolerance_seconds: int = Field(300, ge=1, le=86400)
    header: str | None = Field(None, pattern=_HEADER_NAME, description="hmac/token header")
    algorithm: Literal["sha1", "sha256", "sha512"] = "sha256"
    encoding: Literal["hex", "base64"] = "hex"
    prefix: str = Field("", max_length=64)
    allow_ips: list[str] | None = Field(
        None, max_length=256, description="IPv4/IPv6 CIDRs; other sources get 403"
    )

    @field_validator("allow_ips")
    @classmethod
    def _networks(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else [_check_network(item) for item in value]

    @model_validator(mode="after")
    def _secrets_required(self) -> Auth:
        if self.scheme != "none" and not self.secrets:
            raise ValueError(f"scheme {self.scheme!r} needs at least one secret")
        if self.scheme == "hmac" and not self.header:
            raise ValueError("scheme 'hmac' needs the header that carries the signature")
        return self


class Dedup(StrictModel):
    """Which key identifies a repeated delivery, and for how long."""

    key: str = Field(
        "auto", description="auto | payload | none | jmespath:<expression over body/headers/query>"
    )
    window_seconds: int | None = Field(None, ge=1, le=90 * 86400)

    @field_validator("key")
    @classmethod
    def _known_mode(cls, value: str) -> str:
        if value in ("auto", "payload", "none"):
            return value
        if value.startswith("jmespath:") and value[len("jmespath:") :].strip():
            _check_jmespath(value[len("jmespath:") :])
            return value
        raise ValueError("must be auto, payload, none or jmespath:<expression>")


class CommandAction(StrictModel):
    """Run a local program (argv list, never a shell)."""

    type: Literal["command"]
    argv: list[Annotated[str, Field(max_length=65536)]] = Field(min_length=1, max_length=256)
    env: dict[str, Annotated[str, Field(max_length=65536)]] = Field(default_factory=dict)
    cwd: str | None = Field(None, max_length=4096)
    stdin: Literal["payload", "none"] = "none"
    timeout_seconds: int = Field(600, ge=1, le=7 * 86400)
    max_output_bytes: int = Field(1024 * 1024, ge=1024, le=256 * 1024 * 1024)
    stderr: Literal["separate", "merge"] = Field(
        "separate", description="merge: stderr into the stdout pipe, exact order of both"
    )
    on_output_limit: Literal["drain", "stop"] = Field(
        "drain", description="past max_output_bytes: drain and drop the rest, or stop"
    )
    files: dict[str, FileSpec] = Field(
        default_factory=dict,
        max_length=32,
        description="Temporary files (removed afterwards), their paths in these variables.",
    )

    @field_validator("files")
    @classmethod
    def _file_names(cls, value: dict[str, FileSpec]) -> dict[str, FileSpec]:
        return check_file_names(value)

    @model_validator(mode="after")
    def _files_apart_from_env(self) -> CommandAction:
        both = sorted(set(self.files) & set(self.env))
        if both:
            raise ValueError(f"{', '.join(both)}: set by both env and files")
        return self

    @field_validator("argv")
    @classmethod
    def _argv_templates(cls, value: list[str]) -> list[str]:
        if not value[0].strip():
            raise ValueError("argv[0] must name a program")
        return [_check_template(_no_nul(item, f"argv[{n}]")) for n, item in enumerate(value)]

    @field_validator("env")
    @classmethod
    def _env_templates(cls, value: dict[str, str]) -> dict[str, str]:
        for name, template in value.items():
            if not _ENV_NAME.match(name):
                raise ValueError(f"invalid environment variable name {name!r}")
            _check_quiet_template(_no_nul(template, f"env {name}"), f"env {name}")
        return value


class HttpAction(StrictModel):
    """Forward the webhook to another HTTP endpoint."""

    type: Literal["http"]
    url: str = Field(pattern=r"^https?://[^\s]+$", max_length=2048)
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "POST"
    headers: dict[Annotated[str, Field(pattern=_HEADER_NAME)], str] = Field(default_factory=dict)
    body: str | None = Field(None, description="Template; the original body when omitted.")
    signing_secret: str | None = Field(
        None, min_length=1, description="Write-only; signs forwards with Standard Webhooks."
    )
    timeout_seconds: float = Field(30, gt=0, le=600)
    max_response_bytes: int = Field(64 * 1024, ge=0, le=16 * 1024 * 1024)

    @field_validator("url")
    @classmethod
    def _url_template(cls, value: str) -> str:
        return _check_quiet_template(value, "url")

    @field_validator("headers")
    @classmethod
    def _header_templates(cls, value: dict[str, str]) -> dict[str, str]:
        for name, template in value.items():
            if not HEADER_VALUE.fullmatch(template):
                raise ValueError(
                    f"header {name}: a header value holds printable ASCII only (no line breaks)"
                )
            _check_quiet_template(template, f"header {name}")
        return value

    @field_validator("body")
    @classmethod
    def _body_template(cls, value: str | None) -> str | None:
        return None if value is None else _check_template(value)


Action = Annotated[CommandAction | HttpAction, Field(discriminator="type")]


class Concurrency(StrictModel):
    max: int = Field(1, ge=1, le=1000)
    on_busy: Literal["queue", "reject", "replace"] = "queue"
    queue_max: int = Field(100, ge=0, le=100_000)


class Retry(StrictModel):
    max_attempts: int = Field(1, ge=1, le=50)
    backoff_seconds: float = Field(10, ge=0, le=86400)
    max_backoff_seconds: float = Field(3600, ge=0, le=7 * 86400)


NotifyStatus = Literal["failed", "timed_out", "interrupted", "cancelled", "succeeded"]
_NOTIFY_DEFAULT: tuple[NotifyStatus, ...] = ("failed", "timed_out")


class Notify(StrictModel):
    """Post a signed event when an execution ends in one of ``on`` (see app.execution.alerts)."""

    on: list[NotifyStatus] = Field(default_factory=lambda: list(_NOTIFY_DEFAULT))
    url: str | None = Field(
        None,
        pattern=r"^https?://[^\s]+$",
        max_length=2048,
        description="ALERT_WEBHOOK_URL if unset",
    )
    signing_secret: str | None = Field(
        None, min_length=1, description="Write-only; Standard Webhooks signature of the event."
    )


class TriggerDocument(StrictModel):
    """A trigger as created with POST /admin/triggers."""

    name: str = Field(pattern=NAME_PATTERN)
    description: str = Field("", max_length=2000)
    enabled: bool = True
    auth: Auth
    require_json: bool = Field(False, description="Answer 400 invalid_json to non-JSON bodies.")
    filter: str | None = Field(None, max_length=4096, description="JMESPath; falsy = ignore")
    dedup: Dedup = Field(default_factory=Dedup)  # type: ignore[arg-type]
    action: Action
    concurrency: Concurrency = Field(default_factory=Concurrency)  # type: ignore[arg-type]
    retry: Retry = Field(default_factory=Retry)  # type: ignore[arg-type]
    retention_days: int = Field(30, ge=1, le=3650)
    notify: Notify | None = Field(None, description="Failure notifications")
    methods: list[Method] = Field(
        default_factory=lambda: ["POST"],  # type: ignore[arg-type]
        min_length=1,
        description="HTTP methods accepted.",
    )
    rules: dict[str, Any] | None = Field(
        None, description="Request conditions checked at ingest (app.triggers.rules_schema)."
    )
    payload: PayloadOptions | None = None
    response: ResponseSpec | None = None

    @field_validator("methods", mode="before")
    @classmethod
    def _upper_methods(cls, value: Any) -> Any:
        if isinstance(value, list):
            value = [item.upper() if isinstance(item, str) else item for item in value]
            return [method for method in METHODS if method in value] or value
        return value

    @field_validator("rules")
    @classmethod
    def _rules_valid(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if value is None else check_rules(value)

    @field_validator("filter")
    @classmethod
    def _filter_compiles(cls, value: str | None) -> str | None:
        return None if value is None else _check_jmespath(value)


class TriggerPatch(BaseModel):
    """Fields to change; omitted fields keep their value. Omitted secrets are kept."""

    model_config = ConfigDict(extra="allow")


def _keep_http_credentials(current: HttpAction, patch: dict[str, Any]) -> dict[str, Any]:
    """An HTTP action patch with the stored credentials put back where it has masks.

    ``signing_secret`` and ``headers`` left out keep the stored ones; a header whose
    value is the ``[redacted]`` mask keeps its stored value; a ``url`` equal to the
    masked stored URL is the stored URL. A changed URL must carry its credentials.
    """
    value = dict(patch)
    if "signing_secret" not in value:
        value["signing_secret"] = current.signing_secret
    if "headers" not in value:
        value["headers"] = dict(current.headers)
    elif isinstance(value["headers"], dict):
        stored = {name.lower(): text for name, text in current.headers.items()}
        value["headers"] = {
            name: stored.get(name.lower(), text) if text == REDACTED else text
            for name, text in value["headers"].items()
        }
    if value.get("url") == redact_url(current.url):
        value["url"] = current.url
    return value


def merge_patch(current: TriggerDocument, patch: dict[str, Any]) -> dict[str, Any]:
    """The document that results from applying ``patch`` (validate it afterwards).

    Top-level fields are replaced; an ``auth`` patch that leaves out ``secrets``
    keeps the stored ones, and an HTTP ``action`` patch keeps the stored signing
    secret and credentials it leaves out or sends back masked
    (:func:`_keep_http_credentials`), because clients never see them.
    """
    merged = current.model_dump()
    for field, value in patch.items():
        if field == "auth" and isinstance(value, dict) and "secrets" not in value:
            value = {**value, "secrets": current.auth.secrets}
        if (
            field == "action"
            and isinstance(value, dict)
            and isinstance(current.action, HttpAction)
            and value.get("type", "http") == "http"
        ):
            value = _keep_http_credentials(current.action, value)
        if (
            field == "notify"
            and isinstance(value, dict)
            and current.notify is not None
            and "signing_secret" not in value
        ):
            value = {**value, "signing_secret": current.notify.signing_secret}
        if field == "rules" and value is not None:
            value = restore_rule_secrets(value, current.rules)
        merged[field] = value
    return merged


def public_view(document: TriggerDocument) -> dict[str, Any]:
    """The document as the API shows it: secrets replaced by ``has_secret`` flags,
    an HTTP action's credentials masked."""
    view = document.model_dump()
    if view["notify"] is not None:
        view["notify"]["has_signing_secret"] = view["notify"].pop("signing_secret") is not None
        if view["notify"]["url"]:
            view["notify"]["url"] = redact_url(view["notify"]["url"])
    secrets = view["auth"].pop("secrets")
    view["auth"]["has_secret"] = bool(secrets)
    view["auth"]["secret_count"] = len(secrets)
    if view.get("rules") is not None:
        view["rules"] = mask_rule_secrets(view["rules"])
    if view["action"]["type"] == "http":
        action = view["action"]
        action["has_signing_secret"] = action.pop("signing_secret") is not None
        action["url"] = redact_url(action["url"])
        action["headers"] = {
            name: REDACTED if is_sensitive_header(name) else text
            for name, text in action["headers"].items()
        }
    return view
