"""``hookrunner replay <delivery-id>``: run a stored delivery again (see app.ingest.replay)."""

from __future__ import annotations

import click

from app.commands.common import emit, json_option, session
from app.ingest.replay import replay
from app.middleware import choose_request_id


@click.command("replay")
@click.argument("delivery_id")
@json_option
def replay_command(delivery_id: str, as_json: bool) -> None:
    """Queue a new delivery of the same request; a running server's engine runs it.

    Follow it with ``hookrunner tail <execution_id>``.
    """
    # Like a request's: the new delivery and every log line of its execution carry it.
    request_id = choose_request_id(None)
    with session() as s:
        answer = replay(s.service, s.triggers, delivery_id, request_id=request_id)

    def human() -> list[str]:
        lines = [f"{answer['status']}: delivery {answer['delivery_id']}"]
        if answer.get("execution_id"):
            lines.append(f"execution {answer['execution_id']}")
        if answer.get("reason"):
            lines.append(f"reason: {answer['reason']}")
        lines.append(f"request id {request_id}")
        return lines

    emit(answer, as_json, human)
