"""Per-stage cost of Hookrunner's ingest hot path, in process, no HTTP.

Times each stage of ``POST /webhooks/<trigger>`` in microseconds per operation
so the hot path can be tuned where it matters:

* ``hmac_sha256_1k``: the bare HMAC-SHA256 over the body (the floor);
* ``verify_github_1k``: ``signatures.verify`` for the github scheme, 1 KiB body,
  werkzeug request headers (as the route passes them);
* ``inbound_build``: the route's header lower-casing, query dict, timestamp;
* ``trigger_lookup``: ``TriggerRegistry.get`` (one indexed SELECT + cache check);
* ``parse_and_dedup_key``: ``ExecutionService.evaluate`` (JSON parse, filter,
  dedup key derivation);
* ``write_txn_empty``: ``BEGIN IMMEDIATE; COMMIT`` through ``Database.write``;
* ``dispatch_webhook_event``: the whole record step (evaluate, report, dedup
  claim, admission, delivery and queued execution inserts, commit) on a temp
  SQLite file, the queue drained between batches of 100;
* ``admission_count_q<N>``: the per-trigger running/queued count that the
  ingest transaction runs (``on_busy`` admission) with N executions queued;
* ``jsonify_202``: building the 202 response body;
* ``json_log_format``: formatting one access-log record with the app's JSON
  formatter; ``access_log_emit``: the full ``logger.info`` to a file;
* ``full_request_hookrunner`` / ``full_request_bare``: one whole request
  through Flask's test client (WSGI, no sockets), for the framework overhead.

gevent's monkey patching is applied first, as in a Gunicorn gevent worker, and
the execution engine is off (nothing runs executions). Each stage runs several
batches; the median batch is reported (and the best, to show the noise). The
slow stages are also timed call by call (p50/p99/max): SQLite's WAL
checkpoints show there. Usage::

    python bench/stages.py [--scale 1.0] [--output bench/out/stages-<time>.json]
    # measure a committed snapshot instead of the working tree:
    PYTHONPATH=/tmp/hr-snap python bench/stages.py

The ``app`` package imported (and so the code measured) is recorded in the output.
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import hashlib  # noqa: E402
import hmac  # noqa: E402
import logging  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import asdict, dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, TextIO  # noqa: E402

import harness  # noqa: E402
import machine  # noqa: E402
import signing  # noqa: E402
from bare_app import app as bare_app  # noqa: E402
from flask import Flask, jsonify  # noqa: E402
from flask.testing import FlaskClient  # noqa: E402
from werkzeug.datastructures import EnvironHeaders  # noqa: E402
from werkzeug.test import EnvironBuilder  # noqa: E402

import app as app_package  # noqa: E402
from app import create_app  # noqa: E402
from app.clock import utc_now_iso  # noqa: E402
from app.config import Settings  # noqa: E402
from app.ingest import signatures  # noqa: E402
from app.ingest.inbound import InboundRequest, query_dict  # noqa: E402
from app.logging_config import ContextFilter, json_formatter  # noqa: E402
from app.store import get_db  # noqa: E402
from app.store import triggers as triggers_sql  # noqa: E402
from app.triggers.registry import CompiledTrigger  # noqa: E402
from app.triggers.schema import TriggerDocument  # noqa: E402
from app.wiring import execution_service, trigger_registry  # noqa: E402

QUEUE_DEPTHS = (0, 1_000, 10_000)
_ACCEPTED = {
    "status": "accepted",
    "delivery_id": "0" * 32,
    "execution_id": "1" * 32,
    "request_id": "bench-request-id",
    "stream_url": "/admin/executions/" + "1" * 32 + "/stream",
}
_ACCESS_FIELDS = {
    "method": "POST",
    "path": "/webhooks/bench",
    "status": 202,
    "duration_ms": 0.73,
    "remote_addr": "127.0.0.1",
}


@dataclass(frozen=True)
class Sizes:
    """How many calls each kind of stage makes."""

    fast: int  # per batch, for microsecond stages
    slow: int  # per batch, for stages that write or run a whole request
    repeats: int  # batches of fast stages; slow stages run 10x as many, smaller, batches


@dataclass(frozen=True)
class StageResult:
    stage: str
    us_per_op: float  # median batch
    best_us_per_op: float
    iterations: int
    repeats: int
    # per-call distribution, for the stages timed one call at a time
    p50_us: float | None = None
    p99_us: float | None = None
    max_us: float | None = None


# --- timing ------------------------------------------------------------------------------


def _rank_us(ordered_ns: list[int], pct: float) -> float:
    index = min(len(ordered_ns) - 1, max(0, round(pct / 100 * len(ordered_ns) + 0.5) - 1))
    return round(ordered_ns[index] / 1000, 1)


def _run_batch(op: Callable[[Any], object], batch: list[Any], calls: list[int] | None) -> float:
    """Run one batch; returns microseconds per call (appends each call's ns to ``calls``)."""
    started = time.perf_counter_ns()
    if calls is None:
        for item in batch:
            op(item)
    else:
        for item in batch:
            call_started = time.perf_counter_ns()
            op(item)
            calls.append(time.perf_counter_ns() - call_started)
    return (time.perf_counter_ns() - started) / len(batch) / 1000


def time_stage(
    name: str,
    op: Callable[[Any], object],
    iterations: int,
    repeats: int,
    make_input: Callable[[], Any] | None = None,
    before_batch: Callable[[], None] | None = None,
    per_call: bool = False,
) -> StageResult:
    """Time ``op(input)`` in ``repeats`` batches of ``iterations`` after a warm-up.

    Inputs (e.g. unique deliveries) are all made before the clock starts, and
    ``before_batch`` (e.g. draining the queue) runs outside the clock, so only
    ``op`` is measured. ``per_call`` also times each call (p50/p99/max), which
    shows stalls such as SQLite's WAL checkpoints that a mean hides.
    """
    warmup = max(1, iterations // 10)
    total = warmup + iterations * repeats
    inputs = [make_input() for _ in range(total)] if make_input else [None] * total
    for item in inputs[:warmup]:
        op(item)
    batches: list[float] = []
    calls: list[int] | None = [] if per_call else None
    for batch_no in range(repeats):
        start = warmup + batch_no * iterations
        if before_batch is not None:
            before_batch()
        batches.append(_run_batch(op, inputs[start : start + iterations], calls))
    distribution: tuple[float | None, ...] = (None, None, None)
    if calls:
        calls.sort()
        distribution = (_rank_us(calls, 50), _rank_us(calls, 99), round(calls[-1] / 1000, 1))
    return StageResult(
        name,
        round(statistics.median(batches), 2),
        round(min(batches), 2),
        iterations,
        repeats,
        *distribution,
    )


# --- inputs ------------------------------------------------------------------------------


def request_environ(item: signing.Delivery, path: str) -> dict[str, Any]:
    builder = EnvironBuilder(path=path, method="POST", data=item.body, headers=item.headers())
    try:
        return builder.get_environ()
    finally:
        builder.close()


def inbound_from(item: signing.Delivery) -> InboundRequest:
    """What the route builds from a request, built the same way."""
    headers = EnvironHeaders(request_environ(item, "/webhooks/bench"))
    return InboundRequest(
        method="POST",
        headers={key.lower(): value for key, value in headers.items()},
        query=query_dict([]),
        body=item.body,
        content_type="application/json",
        request_id="bench-request-id",
        received_at=utc_now_iso(),
        verification=signatures.Verification("github", 0, None),
    )


def build_app(workdir: Path) -> tuple[Flask, TextIO]:
    """Hookrunner on a temp DB with the trigger created; logs to a file, like the server."""
    overrides: dict[str, Any] = {
        "database_url": f"sqlite:///{workdir / 'stages.db'}",
        "scheduler_enabled": False,
    }
    if "engine_enabled" in {field.name for field in dataclasses.fields(Settings)}:
        overrides["engine_enabled"] = False  # measure ingest alone; nothing runs executions
    app = create_app(overrides)
    log_file = (workdir / "stages.log").open("w", encoding="utf-8")
    for handler in logging.getLogger().handlers:
        if getattr(handler, "_hookrunner", False) and isinstance(handler, logging.StreamHandler):
            handler.setStream(log_file)
    with app.app_context():
        document = TriggerDocument.model_validate(signing.TRIGGER_DOCUMENT)
        triggers_sql.insert(get_db(), document.name, "", True, document.model_dump_json())
    return app, log_file


def drain_queue(app: Flask) -> None:
    """Mark queued executions done (untimed), so the queue depth stays small."""
    with app.app_context(), get_db().write() as conn:
        conn.execute("UPDATE executions SET status = 'succeeded' WHERE status = 'queued'")


def access_record() -> logging.LogRecord:
    record = logging.LogRecord("hookrunner.access", logging.INFO, __file__, 0, "request", (), None)
    record.__dict__.update(_ACCESS_FIELDS)
    ContextFilter().filter(record)
    return record


# --- stages ------------------------------------------------------------------------------


def signature_stages(template: signing.BodyTemplate, sizes: Sizes) -> list[StageResult]:
    item = signing.delivery(template)
    key = signing.SECRET.encode()
    spec = signatures.AuthSpec("github", (signing.SECRET,))
    headers = EnvironHeaders(request_environ(item, "/webhooks/bench"))

    def raw_hmac(_: None) -> bytes:
        return hmac.new(key, item.body, hashlib.sha256).digest()

    def verify(_: None) -> object:
        return signatures.verify(spec, headers, item.body)

    return [
        time_stage("hmac_sha256_1k", raw_hmac, sizes.fast, sizes.repeats),
        time_stage("verify_github_1k", verify, sizes.fast, sizes.repeats),
    ]


def app_stages(app: Flask, template: signing.BodyTemplate, sizes: Sizes) -> list[StageResult]:
    item = signing.delivery(template)
    environ_headers = EnvironHeaders(request_environ(item, "/webhooks/bench"))
    with app.app_context():
        registry, service, db = trigger_registry(), execution_service(), get_db()
        trigger: CompiledTrigger = registry.get(signing.TRIGGER)
        inbound = inbound_from(item)

        def build(_: None) -> InboundRequest:
            return InboundRequest(
                method="POST",
                headers={key.lower(): value for key, value in environ_headers.items()},
                query=query_dict([]),
                body=item.body,
                content_type="application/json",
                request_id="bench-request-id",
                received_at=utc_now_iso(),
            )

        def empty_txn(_: None) -> None:
            with db.write():
                pass

        def new_inbound() -> InboundRequest:
            return inbound_from(signing.delivery(template))

        def dispatch(request: InboundRequest) -> object:
            return service.dispatch_webhook_event(trigger, request)

        fast, repeats = sizes.fast, sizes.repeats
        return [
            time_stage("inbound_build", build, fast, repeats),
            time_stage("trigger_lookup", lambda _: registry.get(signing.TRIGGER), fast, repeats),
            time_stage(
                "parse_and_dedup_key", lambda _: service.evaluate(trigger, inbound), fast, repeats
            ),
            time_stage("write_txn_empty", empty_txn, sizes.slow, repeats),
            time_stage(
                "dispatch_webhook_event",
                dispatch,
                max(10, sizes.slow // 20),
                repeats * 10,
                new_inbound,
                lambda: drain_queue(app),
                per_call=True,
            ),
            time_stage("jsonify_202", lambda _: jsonify(_ACCEPTED), fast, repeats),
        ]


def admission_stages(app: Flask, template: signing.BodyTemplate, sizes: Sizes) -> list[StageResult]:
    """The admission count run inside every ingest transaction, at growing queue depths.

    Only for code that has it (``app.store.execution_queue.count_active``).
    """
    try:
        from app.store.execution_queue import count_active
    except ImportError:
        return []
    results: list[StageResult] = []
    with app.app_context():
        service, db = execution_service(), get_db()
        trigger = trigger_registry().get(signing.TRIGGER)

        def count(_: None) -> object:
            with db.read() as conn:
                return count_active(conn, signing.TRIGGER)

        drain_queue(app)
        queued = 0
        for depth in QUEUE_DEPTHS:
            for _ in range(depth - queued):
                service.dispatch_webhook_event(trigger, inbound_from(signing.delivery(template)))
            queued = depth
            results.append(
                time_stage(f"admission_count_q{depth}", count, sizes.slow, sizes.repeats)
            )
    drain_queue(app)
    return results


def log_stages(sizes: Sizes) -> list[StageResult]:
    formatter = json_formatter()
    record = access_record()
    logger = logging.getLogger("hookrunner.access")

    def emit(_: None) -> None:
        logger.info("request", extra=_ACCESS_FIELDS)

    def format_line(_: None) -> str:
        return formatter.format(record)

    return [
        time_stage("json_log_format", format_line, sizes.fast, sizes.repeats),
        time_stage("access_log_emit", emit, sizes.fast, sizes.repeats),
    ]


def full_request_stages(
    app: Flask, template: signing.BodyTemplate, sizes: Sizes
) -> list[StageResult]:
    hookrunner_client, bare_client = app.test_client(), bare_app.test_client()

    def post(client: FlaskClient, path: str, item: signing.Delivery) -> None:
        response = client.post(path, data=item.body, headers=item.headers())
        if response.status_code != 202:
            raise RuntimeError(f"unexpected {response.status_code}: {response.get_data()[:200]!r}")

    def make() -> signing.Delivery:
        return signing.delivery(template)

    batch, repeats = max(10, sizes.slow // 20), sizes.repeats * 10
    return [
        time_stage(
            "full_request_hookrunner",
            lambda item: post(hookrunner_client, "/webhooks/bench", item),
            batch,
            repeats,
            make,
            lambda: drain_queue(app),
            per_call=True,
        ),
        time_stage(
            "full_request_bare",
            lambda item: post(bare_client, "/bare", item),
            batch,
            repeats,
            make,
            per_call=True,
        ),
    ]


# --- report ------------------------------------------------------------------------------


def _cell(value: float | None, width: int) -> str:
    return f"{value:>{width}.1f}" if value is not None else " " * width


def print_table(results: list[StageResult]) -> None:
    header = (
        f"{'stage':<26} {'us/op':>9} {'best':>9} {'calls':>12}"
        f" {'p50 us':>8} {'p99 us':>8} {'max us':>9}"
    )
    print(header)
    print("-" * len(header))
    for result in results:
        calls = f"{result.iterations} x {result.repeats}"
        print(
            f"{result.stage:<26} {result.us_per_op:>9.2f} {result.best_us_per_op:>9.2f}"
            f" {calls:>12} {_cell(result.p50_us, 8)} {_cell(result.p99_us, 8)}"
            f" {_cell(result.max_us, 9)}"
        )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="multiply call counts")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--body-bytes", type=int, default=1024)
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=60,
        help="wait up to this many seconds for other processes to go quiet first (0 = no)",
    )
    harness.add_output_arg(parser)
    args = parser.parse_args(argv)
    if not 0.01 <= args.scale <= 20 or not 1 <= args.repeats <= 50:
        parser.error("--scale must be 0.01..20 and --repeats 1..50")
    return args


def measure(workdir: Path, template: signing.BodyTemplate, sizes: Sizes) -> list[StageResult]:
    app, log_file = build_app(workdir)
    try:
        results = signature_stages(template, sizes)
        results += app_stages(app, template, sizes)
        results += admission_stages(app, template, sizes)
        with app.app_context():
            results += log_stages(sizes)
        results += full_request_stages(app, template, sizes)
        with app.app_context():
            get_db().close()
    finally:
        log_file.close()
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = Sizes(
        fast=max(10, int(20_000 * args.scale)),
        slow=max(20, int(2_000 * args.scale)),
        repeats=args.repeats,
    )
    template = signing.make_template(args.body_bytes)
    workdir = Path(tempfile.mkdtemp(prefix="hookrunner-stages-"))
    waited = harness.quiet([], min(args.quiet_wait, 600.0))
    try:
        before = machine.cpu_sample([])
        results = measure(workdir, template, sizes)
        foreign = machine.foreign_cpus(before, machine.cpu_sample([]))
        described = machine.describe(workdir, Path(app_package.__file__).resolve().parents[1])
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print_table(results)
    if foreign > harness.FOREIGN_CPU_LIMIT:
        print(f"FLAG: other processes used {foreign:.2f} CPUs during the run")
    harness.write_results(
        "stages",
        harness.output_path("stages", args.output),
        {
            "machine": described,
            "body_bytes": len(template.body("0" * 36)),
            "gevent_patched": True,
            "foreign_cpus": foreign,
            "quiet_waited_s": waited,
            "stages": [asdict(result) for result in results],
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
