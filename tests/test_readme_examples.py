"""The README's copy-and-paste sender recipes create valid triggers (so they stay correct)."""

from __future__ import annotations

import json
import re
from typing import Any

from flask.testing import FlaskClient

from tests.server import PROJECT_ROOT

_BLOCK = re.compile(r"-d '(\{.*?\})'\n```", re.S)


def _documents() -> list[dict[str, Any]]:
    text = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Senders, copy and paste", 1)[1].split("\n## ", 1)[0]
    return [json.loads(raw.replace("'\\''", "'")) for raw in _BLOCK.findall(section)]


def test_every_sender_recipe_is_a_valid_trigger(
    client: FlaskClient, auth_headers: dict[str, str]
) -> None:
    documents = _documents()
    assert {d["auth"]["scheme"] for d in documents} == {"github", "stripe", "slack", "standard"}
    for document in documents:
        response = client.post("/admin/triggers", json=document, headers=auth_headers)
        assert response.status_code == 201, (document["name"], response.get_json())
