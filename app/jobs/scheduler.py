"""APScheduler wiring: which periodic jobs exist and how one process is elected.

Every worker starts a scheduler (``GeventScheduler`` under Gunicorn's gevent
workers, a thread-based one elsewhere), but each job run first claims the
lease row named after the job for slightly less than its interval
(:func:`app.store.scheduler_leases.try_claim`). Only the claimant runs the body,
so with several workers - or several hosts on one database - each job runs
once per interval. Job bodies live next to what they clean; they must be
idempotent. A failing job is logged and never takes the worker down. Jobs run
outside any request, so their log lines carry ``request_id: null``.
"""

from __future__ import annotations

import atexit
import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from flask import Flask

from app.config import Settings
from app.execution import leases
from app.execution.alerts import FailureAlerts
from app.jobs import metrics, retention
from app.live.notifier import Notifier
from app.store import Database, dedup_keys, ended_sessions
from app.store.scheduler_leases import try_claim
from app.triggers.registry import TriggerRegistry

log = logging.getLogger(__name__)

_EXTENSION = "hookrunner.scheduler"
OWNER = f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class JobContext:
    """What job bodies may use."""

    db: Database
    settings: Settings
    registry: TriggerRegistry
    notifier: Notifier
    alerts: FailureAlerts | None = None  # told of executions the lease reaper ends


@dataclass(frozen=True)
class Job:
    name: str
    interval_seconds: int
    run: Callable[[JobContext], object]


def _reap_leases(ctx: JobContext) -> int:
    return leases.reap(
        ctx.db, ctx.registry, ctx.settings, ctx.notifier, self_owner="scheduler", alerts=ctx.alerts
    )


JOBS: tuple[Job, ...] = (
    Job("dedup_cleanup", 60, lambda ctx: dedup_keys.delete_expired(ctx.db)),
    Job("lease_reaper", 60, _reap_leases),
    Job("metrics_rollup", 3600, lambda ctx: metrics.rollup(ctx.db)),
    Job("retention", 3600, lambda ctx: retention.prune(ctx.db, ctx.registry)),
    Job("ended_sessions_cleanup", 3600, lambda ctx: ended_sessions.delete_expired(ctx.db)),
)


def interval_of(ctx: JobContext, job: Job) -> int:
    return ctx.settings.scheduler_interval_seconds or job.interval_seconds


def run_elected(ctx: JobContext, job: Job, owner: str = OWNER) -> bool:
    """Run ``job`` if this process wins its lease for this interval; never raises."""
    try:
        # Lease slightly shorter than the interval so the next tick can claim it.
        if not try_claim(ctx.db, job.name, owner, interval_of(ctx, job) * 0.9):
            return False
        result = job.run(ctx)
        log.info(
            "scheduled job ran", extra={"job": job.name, "result": str(result), "owner": owner}
        )
        return True
    except Exception:
        log.exception("scheduled job failed", extra={"job": job.name})
        return False


def _new_scheduler() -> BaseScheduler:
    from gevent import monkey

    if monkey.is_module_patched("threading"):
        from apscheduler.schedulers.gevent import GeventScheduler

        return GeventScheduler()
    return BackgroundScheduler(daemon=True)


def init_app(app: Flask, ctx: JobContext) -> None:
    """Start this process's scheduler with every job of :data:`JOBS`."""
    scheduler = _new_scheduler()
    for job in JOBS:
        scheduler.add_job(
            run_elected,
            "interval",
            args=(ctx, job),
            seconds=interval_of(ctx, job),
            id=job.name,
            max_instances=1,
            coalesce=True,
        )
    scheduler.start()
    app.extensions[_EXTENSION] = scheduler
    atexit.register(lambda: scheduler.shutdown(wait=False) if scheduler.running else None)
