"""POST /admin/triggers/<name>/test: the dry run reports everything and writes nothing."""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient

from app.store import Database
from tests.conftest import GITHUB_SECRET, PUSH, github_headers, send_push


def test_dry_run_reports_everything_and_writes_nothing(
    client: FlaskClient, db: Database, auth_headers: dict[str, str], make_trigger: Any
) -> None:
    make_trigger(
        filter="body.ref == 'refs/heads/main'",
        action={
            "type": "command",
            "argv": ["/bin/deploy", "{{ body.after }}", "--token", GITHUB_SECRET],
        },
    )
    sample = {"headers": github_headers(PUSH, "dry-1"), "body": PUSH.decode()}
    report = client.post(
        "/admin/triggers/deploy/test", json=sample, headers=auth_headers
    ).get_json()
    assert report["auth"] == {"ok": True, "scheme": "github", "secret_index": 0}
    assert report["filter"]["matched"] is True
    assert report["dedup"] == {
        "key": "delivery:dry-1",
        "source": "x-github-delivery",
        "window_seconds": 604800,
        "duplicate_of": None,
    }
    assert report["action"]["argv"] == ["/bin/deploy", "abc123", "--token", "[redacted]"]
    assert report["would"] == "accept"
    with db.read() as conn:
        assert conn.execute("SELECT COUNT(*) FROM deliveries").fetchone()[0] == 0
        assert conn.execute("SELECT COUNT(*) FROM executions").fetchone()[0] == 0


def test_dry_run_explains_rejections_and_template_errors(
    client: FlaskClient, auth_headers: dict[str, str], make_trigger: Any
) -> None:
    make_trigger(action={"type": "command", "argv": ["/bin/echo", "{{ body.missing.field }}"]})
    unsigned = {"body": {"after": "x"}}
    report = client.post(
        "/admin/triggers/deploy/test", json=unsigned, headers=auth_headers
    ).get_json()
    assert report["auth"]["ok"] is False
    assert report["auth"]["error"] == "signature_missing"
    assert report["would"] == "reject"
    assert "missing" in report["action"]["error"]


def test_dry_run_sees_live_duplicates(
    client: FlaskClient, auth_headers: dict[str, str], make_trigger: Any
) -> None:
    make_trigger()
    original = send_push(client, "dup-1")
    sample = {"headers": github_headers(PUSH, "dup-1"), "body": PUSH.decode()}
    report = client.post(
        "/admin/triggers/deploy/test", json=sample, headers=auth_headers
    ).get_json()
    assert report["dedup"]["duplicate_of"] == original["execution_id"]
    assert report["would"] == "duplicate"


def test_dry_run_shows_the_size_of_command_files_not_their_content(
    client: FlaskClient, auth_headers: dict[str, str], make_trigger: Any
) -> None:
    files = {"REF": {"content": "{{ body.ref }}"}, "BLOB": {"content": "AAEC", "base64": True}}
    make_trigger(action={"type": "command", "argv": ["/bin/deploy"], "files": files})
    sample = {"headers": github_headers(PUSH, "dry-files"), "body": PUSH.decode()}
    report = client.post("/admin/triggers/deploy/test", json=sample, headers=auth_headers)
    action = report.get_json()["action"]
    assert action["files"] == {"REF": {"bytes": len("refs/heads/main")}, "BLOB": {"bytes": 3}}
    assert "refs/heads/main" not in str(action)
