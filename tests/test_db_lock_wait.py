"""Waiting for another process's SQLite write lock does not freeze a gevent worker."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

# Another process holds BEGIN IMMEDIATE until told to stop; meanwhile one
# greenlet writes (and must wait) while another counts its own turns.
_UNDER_GEVENT = textwrap.dedent(
    """
    from gevent import monkey; monkey.patch_all()
    import json, subprocess, sys, gevent
    from app.errors import ServiceUnavailable
    from app.store import SQLiteDatabase as Database

    path, busy_ms = sys.argv[1], int(sys.argv[2])
    db = Database(path, busy_timeout_ms=busy_ms)
    with db.write() as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS t (v INTEGER)")
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sqlite3, sys; c = sqlite3.connect(sys.argv[1], isolation_level=None);"
         "c.execute('BEGIN IMMEDIATE'); print('held', flush=True); sys.stdin.readline();"
         "c.execute('COMMIT')", path],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"

    outcome = {}
    def write():
        try:
            with db.write() as conn:
                conn.execute("INSERT INTO t VALUES (1)")
            outcome["write"] = "ok"
        except ServiceUnavailable as exc:
            outcome["write"] = f"unavailable: {exc}"

    turns = 0
    def count_turns():
        global turns
        while "write" not in outcome:
            turns += 1
            gevent.sleep(0.01)
            if turns == 30 and busy_ms > 1000:  # let go while the writer is still waiting
                holder.stdin.write("done\\n"); holder.stdin.flush()

    counter = gevent.spawn(count_turns)
    gevent.sleep(0)
    writer = gevent.spawn(write)
    gevent.joinall([writer, counter], timeout=60)
    if holder.poll() is None:
        holder.stdin.write("done\\n"); holder.stdin.flush()
    holder.wait()
    with db.read() as conn:
        rows = conn.execute("SELECT COUNT(*) FROM t").fetchone()[0]
    print(json.dumps({"write": outcome.get("write"), "turns": turns, "rows": rows}))
    """
)


def _run(tmp_path: Path, busy_ms: int) -> dict[str, object]:
    result = subprocess.run(
        [sys.executable, "-c", _UNDER_GEVENT, str(tmp_path / "lock.db"), str(busy_ms)],
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_a_write_waits_for_the_lock_while_other_greenlets_keep_running(tmp_path: Path) -> None:
    seen = _run(tmp_path, busy_ms=30_000)
    assert seen["write"] == "ok"
    assert seen["rows"] == 1
    # The holder lets go only after 30 turns of the other greenlet, which it
    # could not have had if the waiting write blocked the hub.
    assert isinstance(seen["turns"], int) and seen["turns"] >= 30


@pytest.mark.parametrize("busy_ms", [300])
def test_a_lock_held_past_the_busy_timeout_makes_the_store_unavailable(
    tmp_path: Path, busy_ms: int
) -> None:
    seen = _run(tmp_path, busy_ms=busy_ms)
    assert str(seen["write"]).startswith("unavailable: store unavailable: database is locked")
    assert seen["rows"] == 0
    assert isinstance(seen["turns"], int) and seen["turns"] > 0
