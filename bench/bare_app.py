"""The baseline for the ingest benchmark: a bare Flask JSON endpoint.

``POST /bare`` reads the body, parses it as JSON and answers 202
``{"status": "accepted"}``: the least a JSON webhook receiver can do. It is
served by the same Gunicorn configuration as Hookrunner, the positional app
argument overriding ``wsgi_app``::

    GUNICORN_WORKERS=1 python -m gunicorn -c gunicorn.conf.py bench.bare_app:app

No logging, no store, no middleware: the gap between this and Hookrunner's
``POST /webhooks/<trigger>`` is the cost of verifying, deduplicating and
recording a webhook.
"""

from __future__ import annotations

from flask import Flask, Response, jsonify, request

app = Flask(__name__)


@app.post("/bare")
def bare() -> tuple[Response, int]:
    request.get_json(force=True)
    return jsonify({"status": "accepted"}), 202
