"""Requests Gunicorn refuses before the app sees them, answered with the JSON error envelope.

Gunicorn answers what it cannot parse itself - two ``Content-Length`` headers,
``Content-Length`` beside ``Transfer-Encoding``, header values with bare CR,
LF or NUL, a request line over ``limit_request_line``, too many or too large
headers, an unknown transfer coding - with a small HTML page. Senders and
scripts that read Hookrunner's errors expect the envelope every other error
has (``{"error": {"code", "message", "request_id"}}``, see :mod:`app.errors`),
so :func:`install` replaces Gunicorn's page writer with :func:`write_error`.

Contract of :func:`write_error`:

* the status is Gunicorn's (400, 403, 414, 417, 431, 500, 501), with a stable
  code per status (:data:`CODES`) and a fixed message: nothing of the request
  is echoed, since a refused header may be a credential;
* a fresh request id, in the body and in ``X-Request-ID``, and
  ``Connection: close`` (Gunicorn closes the connection after it);
* it writes without blocking and never raises past a failed write (the
  client may be gone), as Gunicorn's own writer.

Gunicorn logs each such request at WARNING with the reason; that line stays.
"""

from __future__ import annotations

import json
import socket
import uuid

CODES: dict[int, tuple[str, str]] = {
    400: ("malformed_request", "The request is not valid HTTP/1.1 and was not read."),
    403: ("forbidden", "The request was refused before it was read."),
    414: ("request_line_too_long", "The request line is longer than this server reads."),
    417: ("expectation_failed", "The request's Expect header cannot be met."),
    431: ("headers_too_large", "The request's headers are too many or too large."),
    500: ("internal_error", "The server failed to read the request."),
    501: ("unsupported_transfer_coding", "The request's transfer coding is not supported."),
}


def error_response(status: int, reason: str) -> bytes:
    """The whole HTTP response for a request Gunicorn refused with ``status``."""
    code, message = CODES.get(status, CODES[400] if status < 500 else CODES[500])
    request_id = str(uuid.uuid4())
    body = json.dumps(
        {"error": {"code": code, "message": message, "request_id": request_id}},
        separators=(",", ":"),
    ).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\n"
        "Connection: close\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"X-Request-ID: {request_id}\r\n"
        "\r\n"
    )
    return head.encode("latin-1", "replace") + body


def write_error(sock: socket.socket, status_int: int, reason: str, mesg: str) -> None:
    """Gunicorn's ``util.write_error``, with the envelope instead of an HTML page."""
    from gunicorn import util

    del mesg  # Gunicorn's detail may quote the refused request; it is logged, not sent
    util.write_nonblock(sock, error_response(status_int, reason))


def install() -> None:
    """Make Gunicorn's workers answer unparsable requests with :func:`write_error`."""
    from gunicorn import util

    util.write_error = write_error
