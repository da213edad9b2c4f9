"""``/<HOOKS_URL_PREFIX>/<id>``: adnanh/webhook's URLs served by the webhook route.

With ``HOOKS_URL_PREFIX=hooks`` (webhook's ``-urlprefix``, default ``hooks``),
a request to ``/hooks/<id>`` is handled exactly as one to
``/webhooks/<name>``, where ``name`` is what ``hookrunner import-hooks`` made
of the hook id (:func:`app.triggers.hooks_import.trigger_name`), so senders
configured for webhook need no change. The path is rewritten before anything
else sees the request (request ids, logs, metrics, Sentry, refusals all see
``/webhooks/<name>``). An id that cannot be a trigger name reaches no trigger
(404 ``trigger_not_found``). Off when the setting is empty (the default).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import quote

from app.triggers.hooks_import import trigger_name

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class HooksPathAlias:
    """WSGI middleware rewriting ``/<prefix>/<id>`` to ``/webhooks/<trigger name>``."""

    def __init__(self, app: WSGIApp, prefix: str) -> None:
        self._app = app
        self._prefix = "/" + prefix.strip("/") + "/"

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        path = environ.get("PATH_INFO", "")
        if path.startswith(self._prefix) and len(path) > len(self._prefix):
            raw = path[len(self._prefix) :]
            hook_id = raw.encode("latin-1", errors="replace").decode("utf-8", errors="replace")
            name = trigger_name(hook_id)
            environ["hookrunner.hooks_path"] = path
            environ["PATH_INFO"] = "/webhooks/" + (name if name else quote(raw, safe="") + "!")
        return self._app(environ, start_response)
