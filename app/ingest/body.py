"""Reading a webhook body within ``MAX_BODY_BYTES``, however it is framed.

Contract of :func:`read_body`:

* A declared ``Content-Length`` above the limit is refused before any byte is
  read; otherwise exactly that many bytes are read, and a body that ends before
  them (the client closed early) is a 400, never a shorter body.
* A body without ``Content-Length`` (``Transfer-Encoding: chunked``, on a server
  that terminates the input stream, as Gunicorn does) is read from the server's
  stream up to ``limit + 1`` bytes: more than ``limit`` is
  :class:`~app.errors.PayloadTooLarge`, never a silently truncated body
  (Werkzeug's limited stream stops at the limit without saying so when read
  whole). A server that does not terminate the stream gives an empty body.
* A body sent with a ``Content-Encoding`` (gzip, ...) or a transfer coding other
  than ``chunked`` is refused with 415 ``unsupported_encoding`` before it is
  read: nothing decodes it, and storing, verifying or parsing the encoded bytes
  as if they were the payload would silently be wrong.
* A client that goes away mid-body, or sends nothing more for
  ``BODY_IDLE_SECONDS`` (a setting, 30 by default) while its body is incomplete, is a 400
  (``ClientDisconnected``: under Gunicorn a stalled body would otherwise hold
  its connection for as long as the client likes); malformed
  chunk framing raised by the server while reading (Gunicorn's
  ``ParseException``) propagates to :mod:`app.errors`, which answers 400
  ``malformed_request``.

All of this happens before the trigger is looked up or a signature is checked.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO

from flask import current_app, request
from werkzeug.exceptions import ClientDisconnected

from app.errors import PayloadTooLarge, UnsupportedEncoding

_CHUNK = 64 * 1024


@contextmanager
def _idle_limit() -> Iterator[None]:
    """Bound each wait for body bytes on the server's client socket (when there is one);
    a read that times out or fails is ``ClientDisconnected``."""
    found = request.environ.get("gunicorn.socket")
    sock = found if isinstance(found, socket.socket) else None
    before = None
    if sock is not None:
        before = sock.gettimeout()
        sock.settimeout(current_app.config.get("BODY_IDLE_SECONDS", 30.0))
    try:
        yield
    except OSError as exc:  # timed out (or reset): the body never arrived whole
        raise ClientDisconnected() from exc
    finally:
        if sock is not None:
            sock.settimeout(before)


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"The body is larger than {limit} bytes.")


def _read_unframed(stream: BinaryIO, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        try:
            chunk = stream.read(min(_CHUNK, limit + 1 - size))
        except OSError as exc:  # the client went away mid-body
            raise ClientDisconnected() from exc
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)


def _refuse_encoded_body() -> None:
    """UnsupportedEncoding for a body in a content or transfer coding nothing here decodes."""
    content = request.environ.get("HTTP_CONTENT_ENCODING")
    if content and _codings(content) - {"identity"}:
        raise UnsupportedEncoding(
            f"The body is sent with Content-Encoding {content!r}; send it unencoded."
        )
    transfer = request.environ.get("HTTP_TRANSFER_ENCODING")
    if transfer and _codings(transfer) - {"chunked", "identity"}:
        raise UnsupportedEncoding(
            f"The body is sent with Transfer-Encoding {transfer!r}; only chunked is read."
        )


def _codings(header: str) -> set[str]:
    return {part.strip().lower() for part in header.split(",") if part.strip()}


def read_body(limit: int) -> bytes:
    """The current request's whole body, at most ``limit`` bytes (see the module contract)."""
    _refuse_encoded_body()
    length = request.content_length
    if length is not None:
        if length > limit:
            raise _too_large(limit)
        with _idle_limit():
            data = request.get_data(cache=False)
        if len(data) != length:
            raise ClientDisconnected()
        return data
    if not request.environ.get("wsgi.input_terminated"):
        return b""
    stream: BinaryIO = request.environ["wsgi.input"]
    with _idle_limit():
        return _read_unframed(stream, limit)


def request_data(limit: int) -> bytes:
    """The current request's body for routes other than webhooks (``request.get_data``,
    cached for form parsing), refused as :func:`read_body` refuses it."""
    _refuse_encoded_body()
    if request.content_length is not None and request.content_length > limit:
        raise _too_large(limit)
    with _idle_limit():
        data = request.get_data(cache=True)
    _refuse_cut_stream(data, limit)
    return data


def _refuse_cut_stream(data: bytes, limit: int) -> None:
    """Refuse a body ``request.get_data`` returned cut short, as :func:`read_body` does.

    For other routes, which read through ``request.get_data``:

    * a body shorter than its ``Content-Length`` (the client closed early) is a
      400 (``ClientDisconnected``), never acted on;
    * a body without ``Content-Length`` is cut at ``MAX_CONTENT_LENGTH`` without
      notice, so when ``limit`` bytes arrived, one more byte from the server's
      stream tells a body of exactly ``limit`` bytes from a longer one
      (PayloadTooLarge).
    """
    if request.content_length is not None:
        if len(data) != request.content_length:
            raise ClientDisconnected()
        return
    if len(data) < limit:
        return
    if not request.environ.get("wsgi.input_terminated"):
        return
    with _idle_limit():
        more = request.environ["wsgi.input"].read(1)
    if more:
        raise _too_large(limit)
