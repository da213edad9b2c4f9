"""GitHub-style signed webhook deliveries for the benchmarks.

Each delivery has a unique ``X-GitHub-Delivery`` id, a JSON body of a fixed
size that contains that id, and ``X-Hub-Signature-256`` = HMAC-SHA256 over the
exact body bytes. The body is ``prefix + id + suffix`` so that wrk's Lua script
can rebuild it from a compact pool file (one ``id signature`` line per request)
byte for byte.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SECRET = "bench-secret"
TRIGGER = "bench"
# The trigger every Hookrunner ingest run uses. queue_max is raised from its default (100) to
# the schema's maximum so that no unique delivery is refused 429 queue_full during a run: the
# benchmark measures the accepted path.
TRIGGER_DOCUMENT: dict[str, Any] = {
    "name": TRIGGER,
    "auth": {"scheme": "github", "secrets": [SECRET]},
    "action": {"type": "command", "argv": ["/bin/true"]},
    "concurrency": {"max": 1, "on_busy": "queue", "queue_max": 100_000},
}
_MARKER = "@@DELIVERY@@"


@dataclass(frozen=True)
class BodyTemplate:
    """A JSON body split around the delivery id."""

    prefix: bytes
    suffix: bytes

    def body(self, delivery_id: str) -> bytes:
        return self.prefix + delivery_id.encode("ascii") + self.suffix


@dataclass(frozen=True)
class Delivery:
    delivery_id: str
    signature: str  # "sha256=<hex>"
    body: bytes

    def headers(self) -> dict[str, str]:
        return github_headers(self.delivery_id, self.signature)


def github_headers(delivery_id: str, signature: str) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": "GitHub-Hookshot/bench",
        "X-GitHub-Event": "push",
        "X-GitHub-Delivery": delivery_id,
        "X-Hub-Signature-256": signature,
    }


def make_template(body_bytes: int = 1024) -> BodyTemplate:
    """A push-like JSON body padded to ``body_bytes`` (with a 36-char delivery id)."""
    document = {
        "delivery": _MARKER,
        "ref": "refs/heads/main",
        "before": "0" * 40,
        "after": "1" * 40,
        "repository": {"id": 1296269, "full_name": "octo/hello-world", "private": False},
        "pusher": {"name": "octocat", "email": "octocat@example.com"},
        "head_commit": {"id": "1" * 40, "message": "Update README", "padding": ""},
    }
    id_length = len(str(uuid.uuid4()))
    bare = json.dumps(document, separators=(",", ":"))
    pad = max(0, body_bytes - (len(bare) - len(_MARKER) + id_length))
    document["head_commit"]["padding"] = "x" * pad  # type: ignore[index]
    prefix, suffix = json.dumps(document, separators=(",", ":")).split(_MARKER)
    return BodyTemplate(prefix.encode(), suffix.encode())


def sign(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def delivery(template: BodyTemplate, secret: str = SECRET) -> Delivery:
    delivery_id = str(uuid.uuid4())
    body = template.body(delivery_id)
    return Delivery(delivery_id, sign(body, secret), body)


def deliveries(template: BodyTemplate, count: int) -> Iterator[Delivery]:
    for _ in range(count):
        yield delivery(template)


def write_pool(directory: Path, name: str, template: BodyTemplate, count: int) -> Path:
    """Write ``<name>.pool`` (``id signature`` lines) plus the body prefix/suffix files."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "body.prefix").write_bytes(template.prefix)
    (directory / "body.suffix").write_bytes(template.suffix)
    path = directory / f"{name}.pool"
    with path.open("w", encoding="ascii") as out:
        for item in deliveries(template, count):
            out.write(f"{item.delivery_id} {item.signature}\n")
    return path
