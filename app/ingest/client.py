"""The client's network address, as the ingest path sees it (allowlists, rules, templates).

The one place that reads it: the peer's address, or - when the peer is one of
``TRUSTED_PROXIES`` - the address those proxies reported in ``X-Forwarded-For``
or ``Forwarded`` (:mod:`app.ingest.client_address`). Computed once per request.
"""

from __future__ import annotations

from flask import g, request

from app.ingest.client_address import IPAddress, client_address, parse_networks


def client_source() -> IPAddress | None:
    """The client address of the current request, or None when it is unknown."""
    if "client_address" not in g:
        from app.wiring import components

        trusted = parse_networks(components().settings.trusted_proxies)
        headers = {key.lower(): value for key, value in request.headers.items()}
        g.client_address = client_address(request.remote_addr, headers, trusted)
    address: IPAddress | None = g.client_address
    return address


def remote_address() -> str | None:
    """The client address as text (no port), or None."""
    address = client_source()
    return None if address is None else str(address)
