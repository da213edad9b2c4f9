"""Context variables that follow a webhook from its request into its execution.

They are ``ContextVar``s rather than Flask's ``g`` so that greenlets spawned with
``contextvars.copy_context().run`` (docs/architecture.md, gevent rule 3) and background jobs see the
right values: a job that never set them logs ``request_id: null``.
"""

from __future__ import annotations

from contextvars import ContextVar

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
execution_id_var: ContextVar[str | None] = ContextVar("execution_id", default=None)
trigger_var: ContextVar[str | None] = ContextVar("trigger", default=None)
