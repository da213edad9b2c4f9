"""Runners turn one claimed execution into work: a local command or an HTTP forward.

Every runner has one signature, :data:`Runner`: ``run(action, ctx) -> RunResult``
(see :mod:`app.execution.runners.base`), and says in ``RunResult.retryable``
whether another attempt could change a failure. :func:`runner_for` picks the
runner of an action by its ``type``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from app.execution.runners.base import RunContext, RunResult
from app.execution.runners.command import run_command
from app.execution.runners.http import run_http

Runner = Callable[[Any, RunContext], RunResult]

RUNNERS: dict[str, Runner] = {"command": run_command, "http": run_http}


def runner_for(action_type: str) -> Runner:
    """The runner of ``command`` or ``http`` actions; raises KeyError for another type."""
    return RUNNERS[action_type]
