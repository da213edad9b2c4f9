"""What every runner receives and returns.

A runner is a function ``run(action, ctx) -> RunResult``. It never touches the
executions table itself: it writes output through ``ctx.output`` (persisted in
small batches as it happens) and reports the outcome; the engine records it and
decides about retries. A runner must return promptly once ``ctx.cancelled`` is
set, and must never raise for a failure of the work itself.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from app.config import Settings

if TYPE_CHECKING:
    from app.outbound.breakers import BreakerRegistry


class OutputSink(Protocol):
    """Where a runner sends output lines, in arrival order."""

    def line(self, stream: str, text: str) -> None:
        """One line of ``stdout``/``stderr`` (without its newline)."""

    def lines(self, stream: str, texts: list[str]) -> None:
        """Several lines of one stream, in order (cheaper than one call each)."""

    @property
    def full(self) -> bool:
        """True once output has gone past the limit: every later line is dropped."""

    def discard(self, byte_count: int) -> None:
        """Count output that was read past the limit and thrown away unsplit."""

    def system(self, text: str) -> None:
        """A line from Hookrunner itself about the run (stream ``system``)."""


@dataclass
class RunContext:
    execution_id: str
    delivery_id: str | None
    trigger: str
    request_id: str | None
    raw_body: bytes
    content_type: str | None
    template_context: dict[str, Any]
    secrets: list[str]  # values to mask in anything shown to people
    output: OutputSink
    settings: Settings
    breakers: BreakerRegistry
    cancelled: threading.Event = field(default_factory=threading.Event)


@dataclass
class RunResult:
    status: str  # succeeded | failed | timed_out | cancelled
    exit_code: int | None = None
    error: str | None = None
    details: dict[str, Any] = field(default_factory=dict)  # merged into the report
    retryable: bool = True  # False when another attempt cannot change the outcome
