"""The client's network address, as the ingest path sees it (rules, templates).

The one place that reads it, so the address can come from a trusted-proxy
aware source without touching its users.
"""

from __future__ import annotations

from flask import request


def remote_address() -> str | None:
    """The address of the peer that sent the current request (no port), or None."""
    return request.remote_addr
