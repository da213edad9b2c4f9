"""Load generators for bench/ingest.py, all bounded and aimed at 127.0.0.1 only.

* :func:`run_wrk`: closed loop at saturation with wrk and ``bench/ingest.lua``
  (the preferred tool). Its request counts are exact, but wrk 4 applies a
  coordinated-omission correction to its latency histogram after the run
  (``stats_correct``: every sample longer than the per-connection request
  interval adds synthetic samples), so its percentiles are *corrected*, not
  observed; when a server stalls some connections (gevent does, see
  bench/README.md) they are far above what any client saw. ``latency_kind``
  says which kind a result holds; the observed mean is connections / req/s.
* :func:`run_python_closed_loop`: a fallback when wrk is missing - one thread
  and keep-alive connection per simulated client. Much weaker than wrk (the GIL
  caps it), so its numbers are flagged and are not comparable with wrk's.
* :func:`run_fixed_rate`: open loop at a fixed rate (wrk cannot do that and
  wrk2 is not packaged in Debian). Request *i* is due at ``t0 + i / rate``; a
  pool of sender threads takes due requests from a queue, and latency is
  measured from the due time (so a stalled server is not hidden by the client
  slowing down: no coordinated omission) as well as from the actual send.

Every request body comes from a pool file written by :mod:`signing`.
"""

from __future__ import annotations

import http.client
import json
import queue
import shutil
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from signing import BodyTemplate, Delivery

WRK_LUA = Path(__file__).resolve().parent / "ingest.lua"
WRK_INSTALL_HINT = "apt-get update && apt-get install -y wrk"
_JSON_MARK = "BENCH_JSON "


@dataclass(frozen=True)
class LoadSpec:
    host: str
    port: int
    path: str
    pool: Path
    template: BodyTemplate
    threads: int
    connections: int
    duration_s: float
    cpu: int | None = None  # pin the load generator to this CPU


@dataclass
class LoadResult:
    tool: str
    latency_kind: str  # "corrected" (wrk) or "observed"
    connections: int
    requests: int
    duration_s: float
    rps: float
    latency_ms: dict[str, float]
    statuses: dict[str, int]
    socket_errors: dict[str, int]
    wrapped: int
    pool: int
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def little_mean_ms(self) -> float:
        """Observed mean latency by Little's law: connections kept busy / throughput."""
        return round(self.connections / self.rps * 1000, 3) if self.rps else 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"little_mean_ms": self.little_mean_ms}


def wrk_path() -> str | None:
    return shutil.which("wrk")


def _pin(cpu: int | None) -> list[str]:
    return ["taskset", "-c", str(cpu)] if cpu is not None and shutil.which("taskset") else []


def run_wrk(spec: LoadSpec, log_path: Path) -> LoadResult:
    """One wrk run; wrk's stdout goes to ``log_path``; the Lua JSON line is parsed."""
    prefix, suffix = spec.pool.parent / "body.prefix", spec.pool.parent / "body.suffix"
    command = [
        *_pin(spec.cpu),
        "wrk",
        f"--threads={spec.threads}",
        f"--connections={spec.connections}",
        f"--duration={max(1, round(spec.duration_s))}s",
        "--timeout=10s",
        "--latency",
        f"--script={WRK_LUA}",
        f"http://{spec.host}:{spec.port}{spec.path}",
        "--",
        str(spec.pool),
        str(prefix),
        str(suffix),
        str(spec.threads),
    ]
    completed = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=spec.duration_s + 120,
        check=False,
    )
    log_path.write_text(" ".join(command) + "\n" + completed.stdout + completed.stderr)
    lines = [line for line in completed.stdout.splitlines() if line.startswith(_JSON_MARK)]
    if completed.returncode != 0 or not lines:
        raise RuntimeError(f"wrk failed ({completed.returncode}); see {log_path}")
    raw = json.loads(lines[-1][len(_JSON_MARK) :])
    return _from_wrk(raw, spec.connections)


def _from_wrk(raw: dict[str, Any], connections: int) -> LoadResult:
    duration = raw["duration_us"] / 1e6
    latency = {name: value / 1000 for name, value in raw["latency_us"].items()}
    return LoadResult(
        tool="wrk",
        latency_kind="corrected",
        connections=connections,
        requests=raw["requests"],
        duration_s=round(duration, 3),
        rps=round(raw["requests"] / duration, 1),
        latency_ms={name: round(value, 3) for name, value in latency.items()},
        statuses={str(code): n for code, n in raw["statuses"].items()},
        socket_errors={k: v for k, v in raw["errors"].items() if k != "status"},
        wrapped=raw["wrapped"],
        pool=raw["pool"],
        raw=raw,
    )


# --- plain HTTP/1.1 client helpers -------------------------------------------------------


def read_pool(pool: Path, template: BodyTemplate) -> list[Delivery]:
    """The deliveries of a pool file, bodies rebuilt as the Lua script does."""
    items: list[Delivery] = []
    with pool.open(encoding="ascii") as lines:
        for line in lines:
            delivery_id, signature = line.split()
            items.append(Delivery(delivery_id, signature, template.body(delivery_id)))
    return items


def post(conn: http.client.HTTPConnection, path: str, item: Delivery) -> int:
    """POST one delivery on a keep-alive connection; returns the status."""
    conn.request("POST", path, body=item.body, headers=item.headers())
    response = conn.getresponse()
    response.read()
    return response.status


def percentiles_ms(samples: Sequence[float]) -> dict[str, float]:
    """Nearest-rank percentiles of latencies given in seconds, in milliseconds."""
    if not samples:
        return {}
    ordered = sorted(samples)

    def rank(p: float) -> float:
        index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))
        return round(ordered[index] * 1000, 3)

    return {
        "mean": round(sum(ordered) / len(ordered) * 1000, 3),
        "p50": rank(50),
        "p90": rank(90),
        "p99": rank(99),
        "p999": rank(99.9),
        "max": round(ordered[-1] * 1000, 3),
    }


class _Tally:
    """Thread-safe counters shared by the sender threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.statuses: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.latencies: list[float] = []
        self.service: list[float] = []

    def record(self, status: int, latency: float, service: float | None = None) -> None:
        with self.lock:
            self.statuses[str(status)] += 1
            self.latencies.append(latency)
            if service is not None:
                self.service.append(service)

    def error(self, exc: BaseException) -> None:
        with self.lock:
            self.errors[type(exc).__name__] += 1


def _send(
    conn: http.client.HTTPConnection, spec_host: str, spec_port: int, path: str, item: Delivery
) -> tuple[http.client.HTTPConnection, int]:
    """Send, reconnecting once if the kept-alive connection was closed before sending."""
    try:
        return conn, post(conn, path, item)
    except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
        conn.close()
        conn = http.client.HTTPConnection(spec_host, spec_port, timeout=10)
        return conn, post(conn, path, item)


# --- fallback closed loop ----------------------------------------------------------------


def run_python_closed_loop(spec: LoadSpec) -> LoadResult:
    """Closed loop with one thread per connection (capped at 64) until the deadline."""
    items = read_pool(spec.pool, spec.template)
    connections = min(spec.connections, 64)
    started = time.perf_counter()
    outcome = run_count(
        spec.host, spec.port, spec.path, items, connections, timeout_s=spec.duration_s
    )
    elapsed = time.perf_counter() - started
    return LoadResult(
        tool="python-closed-loop",
        latency_kind="observed",
        connections=connections,
        requests=len(outcome.answers),
        duration_s=round(elapsed, 3),
        rps=round(len(outcome.answers) / elapsed, 1),
        latency_ms=percentiles_ms([a.done_at - a.sent_at for a in outcome.answers]),
        statuses=outcome.statuses(),
        socket_errors=outcome.errors,
        wrapped=0,
        pool=len(items),
    )


def run_load(spec: LoadSpec, log_path: Path) -> LoadResult:
    """wrk when installed, else the bounded Python fallback."""
    if wrk_path() is not None:
        return run_wrk(spec, log_path)
    return run_python_closed_loop(spec)


# --- fixed-rate open loop ----------------------------------------------------------------


@dataclass
class FixedRateResult:
    rate: float
    duration_s: float
    sent: int
    achieved_rps: float
    latency_ms: dict[str, float]  # from the due time (includes any queueing in the client)
    service_ms: dict[str, float]  # from the actual send
    statuses: dict[str, int]
    errors: dict[str, int]
    max_send_lag_ms: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_fixed_rate(
    host: str,
    port: int,
    path: str,
    items: Sequence[Delivery],
    rate: float,
    duration_s: float,
    senders: int = 16,
) -> FixedRateResult:
    """Send ``rate`` requests/s for ``duration_s`` (bounded by ``len(items)``)."""
    count = min(len(items), int(rate * duration_s))
    due: queue.Queue[tuple[float, Delivery] | None] = queue.Queue()
    tally = _Tally()
    lag = [0.0]

    def sender() -> None:
        conn = http.client.HTTPConnection(host, port, timeout=10)
        while (job := due.get()) is not None:
            due_at, item = job
            sent_at = time.perf_counter()
            lag[0] = max(lag[0], sent_at - due_at)
            try:
                conn, status = _send(conn, host, port, path, item)
            except (OSError, http.client.HTTPException) as exc:
                tally.error(exc)
                conn.close()
                conn = http.client.HTTPConnection(host, port, timeout=10)
                continue
            done = time.perf_counter()
            tally.record(status, done - due_at, done - sent_at)
        conn.close()

    workers = [threading.Thread(target=sender, daemon=True) for _ in range(senders)]
    for worker in workers:
        worker.start()
    started = time.perf_counter()
    for index in range(count):
        due_at = started + index / rate
        pause = due_at - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
        due.put((due_at, items[index]))
    for _ in workers:
        due.put(None)
    for worker in workers:
        worker.join(timeout=30)
    elapsed = time.perf_counter() - started
    return FixedRateResult(
        rate=rate,
        duration_s=round(elapsed, 3),
        sent=count,
        achieved_rps=round(len(tally.latencies) / elapsed, 1),
        latency_ms=percentiles_ms(tally.latencies),
        service_ms=percentiles_ms(tally.service),
        statuses=dict(tally.statuses),
        errors=dict(tally.errors),
        max_send_lag_ms=round(lag[0] * 1000, 3),
    )


# --- a fixed number of requests, closed loop or paced --------------------------------------


@dataclass(frozen=True)
class Answer:
    """One request of :func:`run_count`: wall-clock times (``time.time()``), status, body."""

    sent_at: float
    done_at: float
    status: int
    body: bytes


@dataclass
class CountResult:
    answers: list[Answer]
    errors: dict[str, int]
    client_cpu_s: float  # CPU time of this process during the run (is the client the limit?)

    @property
    def first_sent(self) -> float:
        return min(answer.sent_at for answer in self.answers)

    @property
    def last_done(self) -> float:
        return max(answer.done_at for answer in self.answers)

    def statuses(self) -> dict[str, int]:
        return dict(Counter(str(answer.status) for answer in self.answers))


def run_count(
    host: str,
    port: int,
    path: str,
    items: Sequence[Delivery],
    concurrency: int,
    rate: float | None = None,
    timeout_s: float = 120,
) -> CountResult:
    """Send every item once from ``concurrency`` keep-alive connections; keep each answer.

    Closed loop (each connection sends its next request when the previous one is
    answered) or, with ``rate``, paced: item *i* is not sent before t0 + i / rate.
    Stops at ``timeout_s`` even if items are left.
    """
    answers: list[Answer | None] = [None] * len(items)
    errors: Counter[str] = Counter()
    lock = threading.Lock()
    indexes = iter(range(len(items)))
    started = time.perf_counter()
    deadline = started + timeout_s

    def client() -> None:
        conn = http.client.HTTPConnection(host, port, timeout=timeout_s)
        while time.perf_counter() < deadline:
            with lock:
                index = next(indexes, None)
            if index is None:
                break
            if rate is not None and (pause := started + index / rate - time.perf_counter()) > 0:
                time.sleep(pause)
            item = items[index]
            sent_at = time.time()
            try:
                conn.request("POST", path, body=item.body, headers=item.headers())
                response = conn.getresponse()
                body = response.read()
            except (OSError, http.client.HTTPException) as exc:
                with lock:
                    errors[type(exc).__name__] += 1
                conn.close()
                conn = http.client.HTTPConnection(host, port, timeout=timeout_s)
                continue
            answers[index] = Answer(sent_at, time.time(), response.status, body)
        conn.close()

    cpu_before = time.process_time()
    threads = [threading.Thread(target=client, daemon=True) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout_s + 30)
    return CountResult(
        answers=[answer for answer in answers if answer is not None],
        errors=dict(errors),
        client_cpu_s=round(time.process_time() - cpu_before, 3),
    )
