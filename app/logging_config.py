"""Process-wide logging: one JSON (or text) line per record, always with ids.

Every record passes :class:`ContextFilter`, which copies ``request_id`` (and,
inside an execution, ``execution_id`` and ``trigger``) from the context
variables in :mod:`app.context`. JSON lines come from python-json-logger and
always carry ``timestamp, level, logger, message, request_id``.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any

from pythonjsonlogger.json import JsonFormatter

from app.context import execution_id_var, request_id_var, trigger_var

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"


class ContextFilter(logging.Filter):
    """Attach the current request id, execution id and trigger to each record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        execution_id = execution_id_var.get()
        if execution_id is not None:
            record.execution_id = execution_id
            record.trigger = trigger_var.get()
        return True


class _Formatter(JsonFormatter):
    def add_fields(
        self, log_record: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        super().add_fields(log_record, record, message_dict)
        log_record["timestamp"] = datetime.fromtimestamp(record.created, UTC).isoformat(
            timespec="milliseconds"
        )
        log_record["level"] = record.levelname
        log_record["logger"] = record.name
        log_record.setdefault("request_id", None)


def json_formatter() -> logging.Formatter:
    return _Formatter("%(message)s", reserved_attrs=[*_RESERVED], json_ensure_ascii=False)


# LogRecord attributes that never become JSON fields of their own.
_RESERVED = (
    *("args", "asctime", "created", "exc_info", "exc_text", "filename", "funcName"),
    *("levelname", "levelno", "lineno", "module", "msecs", "message", "msg", "name"),
    *("pathname", "process", "processName", "relativeCreated", "stack_info", "thread"),
    *("threadName", "taskName"),
)


def configure_logging(log_format: str = "json", level: str = "INFO") -> None:
    """Install one stderr handler on the root logger; idempotent."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_hookrunner", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler._hookrunner = True  # type: ignore[attr-defined]
    handler.addFilter(ContextFilter())
    if log_format == "json":
        handler.setFormatter(json_formatter())
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    root.addHandler(handler)
    root.setLevel(level)
    # Gunicorn's and Werkzeug's own access logs would duplicate ours in another format.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
