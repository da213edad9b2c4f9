"""The baselines in Hookrunner's own stack: bare Flask endpoints under the same Gunicorn.

``POST /bare`` reads the body, parses it as JSON and answers 202
``{"status": "accepted"}``: the least a JSON webhook receiver can do (the ingest
benchmark's baseline). No logging, no store, no middleware: the gap between this and
Hookrunner's ``POST /webhooks/<trigger>`` is the cost of verifying, deduplicating and
recording a webhook.

``POST /spawn/<hook>`` is the least a Python webhook *runner* can do on this stack (the
dispatch benchmark's floor): check the GitHub HMAC of the body (``BARE_HMAC_SECRET``),
start the hook's command (``BARE_SPAWN_COMMANDS``, a JSON object of argv lists) the way
Hookrunner's engine does (``app.execution.runners.spawn``: ``posix_spawn`` and a libev
child watcher; gevent's own ``subprocess`` forks the worker in Python, several times
slower), read its output and answer 200 with it once it exited - what adnanh/webhook
does with ``include-command-output-in-response``. No record, no queue, no dedup, no
log line: the gap between it and adnanh/webhook is the cost of CPython, Flask and
Gunicorn's gevent worker; the gap between Hookrunner and it is Hookrunner's own. Both are
served with the configuration's ``wsgi_app`` overridden by the positional argument::

    GUNICORN_WORKERS=1 python -m gunicorn -c gunicorn.conf.py bench.bare_app:app
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os

import gevent.os
from flask import Flask, Response, abort, jsonify, request

from app.execution.runners import spawn as spawning

app = Flask(__name__)
_SECRET = os.environ.get("BARE_HMAC_SECRET", "").encode()
_COMMANDS: dict[str, list[str]] = json.loads(os.environ.get("BARE_SPAWN_COMMANDS", "{}"))
_ENV = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}


@app.post("/bare")
def bare() -> tuple[Response, int]:
    request.get_json(force=True)
    return jsonify({"status": "accepted"}), 202


@app.post("/spawn/<hook>")
def spawn(hook: str) -> tuple[bytes, int]:
    argv = _COMMANDS.get(hook)
    if argv is None or not _SECRET:
        abort(404)
    body = request.get_data()
    expected = "sha256=" + hmac.new(_SECRET, body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, request.headers.get("X-Hub-Signature-256", "")):
        abort(403)
    child = spawning.start(argv, _ENV, None, with_stdin=False, merge_stderr=True)
    with child.stdout:
        fd = child.stdout.fileno()
        gevent.os.make_nonblocking(fd)
        chunks = list(iter(lambda: gevent.os.nb_read(fd, 65536), b""))
    child.wait()
    return b"".join(chunks), 200
