"""Run a local program for an execution: argv only, never a shell.

Contract:

* argv and env values are rendered templates; each rendered value is exactly
  one argument (``; rm -rf /`` arrives as that literal string).
* The child gets a minimal environment - ``PATH``, ``HOME``, ``LANG`` - plus the
  trigger's ``env`` and ``HOOKRUNNER_EXECUTION_ID``, ``HOOKRUNNER_DELIVERY_ID``,
  ``HOOKRUNNER_TRIGGER``, ``HOOKRUNNER_REQUEST_ID`` and
  ``HOOKRUNNER_PAYLOAD_PATH`` (a private temp file with the raw body, removed
  afterwards). The payload goes to stdin only when ``stdin: payload``.
* ``files``: each entry's rendered content is written to a file of its own
  (mode 0600, named after its variable) in a private directory (0700) made
  for this run, and the variable holds the file's path. The directory goes
  once the command has ended, however it ended (exit, timeout, cancel, engine
  shutdown). After a hard kill of the engine the lease reaper of the engine
  that replaces it on this host removes it (:func:`remove_files_of`). A
  content that does not render (or is not base64 when it says so) fails the
  execution before anything is written or started.
* The child leads its own process group (session). Timeout and cancellation
  signal the whole group: SIGTERM, then SIGKILL after a grace period to every
  process still in the group (whether or not the leader has exited), so
  grandchildren die too, also those that ignore SIGTERM. While it runs the group
  is registered with this worker's guard (:mod:`app.execution.runners.guard`),
  which kills it should the worker die first.
* stdout and stderr are read by one loop (:mod:`app.execution.runners.pipes`)
  into the output sink, in the order it reads them - the exact order of both
  with ``stderr: merge`` (one pipe); output past ``max_output_bytes`` is
  drained unsplit, and with ``on_output_limit: stop`` the group is stopped
  then (the execution fails, without retry).
"""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import shutil
import signal
import tempfile
import threading
import time
from typing import IO

from app.context import start_thread
from app.execution.runners import guard, spawn
from app.execution.runners import pipes as pipes_reader
from app.execution.runners.base import RunContext, RunResult
from app.triggers.schema import CommandAction
from app.triggers.templates import (
    RenderedCommand,
    TemplateRenderError,
    mask_secrets,
    render_command,
)

log = logging.getLogger(__name__)

KILL_GRACE_SECONDS = 5.0
_DRAIN_SECONDS = 2.0  # how long to wait for pipes a lingering grandchild keeps open
_POLL_SECONDS = 0.05


def child_environment(
    rendered_env: dict[str, str],
    ctx: RunContext,
    payload_path: str,
    file_paths: dict[str, str] | None = None,
) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/"),
        "LANG": os.environ.get("LANG", "C.UTF-8"),
    }
    env.update(rendered_env)
    env.update(file_paths or {})
    env.update(
        HOOKRUNNER_EXECUTION_ID=ctx.execution_id,
        HOOKRUNNER_DELIVERY_ID=ctx.delivery_id or "",
        HOOKRUNNER_TRIGGER=ctx.trigger,
        HOOKRUNNER_REQUEST_ID=ctx.request_id or "",
        HOOKRUNNER_PAYLOAD_PATH=payload_path,
    )
    return env


def _feed(pipe: IO[bytes], data: bytes) -> None:
    with contextlib.suppress(BrokenPipeError, OSError), pipe:
        pipe.write(data)


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def group_has_live_members(pgid: int) -> bool:
    """Whether any process of group ``pgid`` still runs (zombies do not count).

    Orphaned grandchildren that were killed may stay zombies for a while (or for
    good, under a PID 1 that does not reap), and ``killpg(pgid, 0)`` still
    finds those; ``/proc`` tells them apart.
    """
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        entries = os.listdir("/proc")
    except OSError:  # no /proc: trust killpg
        return True
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as stat:
                fields = stat.read().rpartition(")")[2].split()
        except OSError:  # exited meanwhile
            continue
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] != "Z":
            return True
    return False


def _stop_group(pgid: int, exited: threading.Event) -> None:
    """SIGTERM the group; after the grace period SIGKILL it, whoever is left.

    The SIGKILL goes to the whole group even when the leader has exited: a
    grandchild that ignores SIGTERM must not outlive a timeout or a cancel.
    It is skipped only when the whole group is gone before the grace ends.
    """
    _signal_group(pgid, signal.SIGTERM)
    deadline = time.monotonic() + KILL_GRACE_SECONDS
    while time.monotonic() < deadline:
        exited.wait(_POLL_SECONDS)
        if exited.is_set() and not group_has_live_members(pgid):
            break
    else:
        _signal_group(pgid, signal.SIGKILL)
    exited.wait()


def _supervise(
    child: spawn.Child,
    action: CommandAction,
    ctx: RunContext,
    exit_codes: list[int],
    output_full: threading.Event,
) -> str | None:
    """Wait for exit, timeout, cancellation or a full output with ``on_output_limit: stop``.

    Returns "timed_out", "cancelled" or "output_limit" when it stopped the
    group, else None. The exit code is appended to ``exit_codes`` once the
    process has exited.
    """
    stopped = _watch(child, action, ctx, output_full)
    exit_codes.append(child.wait())
    return stopped


def _watch(
    child: spawn.Child, action: CommandAction, ctx: RunContext, output_full: threading.Event
) -> str | None:
    exited = child.exited
    deadline = time.monotonic() + action.timeout_seconds
    while not exited.wait(min(_POLL_SECONDS, max(0.0, deadline - time.monotonic()))):
        if ctx.cancelled.is_set():
            ctx.output.system("cancel requested: stopping the process group")
            _stop_group(child.pid, exited)
            return "cancelled"
        if time.monotonic() >= deadline:
            ctx.output.system(
                f"timed out after {action.timeout_seconds} s: stopping the process group"
            )
            _stop_group(child.pid, exited)
            return "timed_out"
        if action.on_output_limit == "stop" and output_full.is_set():
            ctx.output.system(
                f"output reached max_output_bytes ({action.max_output_bytes}): "
                "stopping the process group"
            )
            _stop_group(child.pid, exited)
            return "output_limit"
    return None


def run_command(action: CommandAction, ctx: RunContext) -> RunResult:
    try:
        rendered = render_command(action, ctx.template_context)
    except TemplateRenderError as exc:
        ctx.output.system(mask_secrets(f"not started: {exc}", ctx.secrets))
        return RunResult("failed", error=str(exc), retryable=False)
    details: dict[str, object] = {"argv": mask_secrets(rendered.argv, ctx.secrets)}
    if rendered.files:
        details["files"] = rendered.shown()["files"]
    if ctx.cancelled.is_set():
        return RunResult("cancelled", details=details)
    files_dir = None
    fd, payload_path = tempfile.mkstemp(prefix="hookrunner-payload-")
    try:
        with os.fdopen(fd, "wb") as payload_file:
            payload_file.write(ctx.raw_body)
        file_paths: dict[str, str] = {}
        if rendered.files:
            files_dir = tempfile.mkdtemp(prefix=f"{_FILES_PREFIX}{ctx.execution_id}-")
            try:
                file_paths = write_files(files_dir, rendered.files)
            except OSError as exc:
                message = f"cannot write the files: {exc.strerror or exc}"
                ctx.output.system(message)
                return RunResult("failed", error=message, details=details)
        return _run(action, ctx, rendered, payload_path, details, file_paths)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(payload_path)
        if files_dir is not None:
            shutil.rmtree(files_dir, ignore_errors=True)


_FILES_PREFIX = "hookrunner-files-"


def remove_files_of(execution_id: str) -> None:
    """Remove the files directory a dead process left behind for ``execution_id``."""
    pattern = os.path.join(tempfile.gettempdir(), f"{_FILES_PREFIX}{glob.escape(execution_id)}-*")
    for directory in glob.glob(pattern):
        shutil.rmtree(directory, ignore_errors=True)


def write_files(directory: str, files: dict[str, bytes]) -> dict[str, str]:
    """Write each file (0600) into ``directory``; the variable name -> path."""
    paths = {}
    for name, content in files.items():
        path = os.path.join(directory, name)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "wb") as file:
            file.write(content)
        paths[name] = path
    return paths


def _run(
    action: CommandAction,
    ctx: RunContext,
    rendered: RenderedCommand,
    payload_path: str,
    details: dict[str, object],
    file_paths: dict[str, str],
) -> RunResult:
    argv = rendered.argv
    env = child_environment(rendered.env, ctx, payload_path, file_paths)
    try:
        child = spawn.start(
            argv,
            env,
            action.cwd,
            with_stdin=action.stdin == "payload",
            merge_stderr=action.stderr == "merge",
            on_spawned=_guard_group,
        )
    except OSError as exc:
        message = f"cannot start {argv[0]!r}: {exc.strerror or exc}"
        ctx.output.system(message)
        return RunResult("failed", error=message, details=details, retryable=False)
    except ValueError as exc:  # e.g. a NUL byte in the cwd: no attempt can start this
        message = f"cannot start {argv[0]!r}: {exc}"
        ctx.output.system(message)
        return RunResult("failed", error=message, details=details, retryable=False)
    details["pid"] = child.pid
    try:
        return _follow(child, action, ctx, details)
    finally:
        guard.release(child.pid)


def _guard_group(pid: int) -> None:
    """Register the new command's process group with the guard (called on spawn)."""
    try:
        guard.watch(pid)
    except OSError:  # the command still runs, unguarded should this worker die
        log.warning("cannot start the process-group guard", exc_info=True)


def _follow(
    child: spawn.Child, action: CommandAction, ctx: RunContext, details: dict[str, object]
) -> RunResult:
    """Read the child's output until it exits (or is stopped); its result."""
    pipes = {"stdout": child.stdout}
    if child.stderr is not None:
        pipes["stderr"] = child.stderr
    output_full, stop_reading = threading.Event(), threading.Event()
    reader = start_thread(
        lambda: pipes_reader.pump(pipes, ctx.output, stop_reading, output_full.set),
        name=f"hookrunner-output-{child.pid}",
    )
    stdin = child.stdin
    if stdin is not None:
        start_thread(lambda: _feed(stdin, ctx.raw_body), name=f"hookrunner-stdin-{child.pid}")
    exit_codes: list[int] = []
    stopped = _supervise(child, action, ctx, exit_codes, output_full)
    reader.join(_DRAIN_SECONDS)
    if reader.is_alive():
        _signal_group(child.pid, signal.SIGKILL)  # a background grandchild held the pipes
        reader.join(_DRAIN_SECONDS)
        stop_reading.set()  # held open from outside the group: stop reading them
        reader.join()
    exit_code = exit_codes[0]
    details["exit_code"] = exit_code
    if stopped == "output_limit":
        error = f"stopped: output reached max_output_bytes ({action.max_output_bytes})"
        return RunResult(
            "failed", exit_code=exit_code, error=error, details=details, retryable=False
        )
    if stopped is not None:
        return RunResult(
            stopped, exit_code=exit_code, details=details, error=stopped.replace("_", " ")
        )
    if exit_code == 0:
        return RunResult("succeeded", exit_code=0, details=details)
    reason = (
        f"killed by signal {-exit_code}" if exit_code < 0 else f"exited with status {exit_code}"
    )
    return RunResult("failed", exit_code=exit_code, error=reason, details=details)
