"""Context variables that follow a webhook from its request into its execution.

They are ``ContextVar``s rather than Flask's ``g`` so that threads and greenlets
started with :func:`start_thread` (a copy of the starter's context;
docs/architecture.md, gevent rule 3) and background jobs see the right values: a
job that never set them logs ``request_id: null``.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable
from contextvars import ContextVar

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
execution_id_var: ContextVar[str | None] = ContextVar("execution_id", default=None)
trigger_var: ContextVar[str | None] = ContextVar("trigger", default=None)


def start_thread(
    target: Callable[[], None], *, fresh: bool = False, start: bool = True, name: str | None = None
) -> threading.Thread:
    """A daemon thread (a greenlet under gevent) running ``target`` in a copy of this context.

    ``fresh`` runs it in an empty context instead (background work that belongs
    to no request); ``start=False`` returns it unstarted, for callers that must
    register it first.
    """
    context = contextvars.Context() if fresh else contextvars.copy_context()
    thread = threading.Thread(target=context.run, args=(target,), daemon=True, name=name)
    if start:
        thread.start()
    return thread
