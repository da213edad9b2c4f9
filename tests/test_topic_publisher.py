"""The sender thread of both notifier backends: batches, at most one per interval while busy."""

from __future__ import annotations

import threading
import time

import pytest

from app.live.publisher import TopicPublisher
from tests.conftest import wait_for


class _Batches:
    def __init__(self, fail_first: bool = False) -> None:
        self.sent: list[list[str]] = []
        self.lock = threading.Lock()
        self.fail_next = fail_first

    def __call__(self, topics: list[str]) -> None:
        with self.lock:
            if self.fail_next:
                self.fail_next = False
                raise ConnectionError("store unavailable")
            self.sent.append(topics)


def test_a_topic_after_a_quiet_spell_goes_at_once_and_a_burst_after_it_waits_as_one_batch() -> None:
    batches = _Batches()
    # An interval far longer than any wait below: whatever arrives after the first send
    # is held until stop(), so the batching is what the test sees, not the scheduler.
    publisher = TopicPublisher(batches, name="test-publish", min_interval=600)
    publisher.start()
    try:
        publisher.publish("exe_1")
        wait_for(lambda: batches.sent == [["exe_1"]], timeout=10)
        for topic in ("exe_2", "*", "exe_2", "~work", "*"):
            publisher.publish(topic)
            time.sleep(0.02)  # room for the sender to run: without the interval it sends each
    finally:
        publisher.stop()  # cuts the interval short and sends what is pending
    assert batches.sent == [["exe_1"], ["exe_2", "*", "~work"]]
    assert publisher.batches_sent == 2


def test_a_failing_send_is_logged_and_the_next_batch_still_goes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    batches = _Batches(fail_first=True)
    publisher = TopicPublisher(batches, name="test-publish", min_interval=0)
    publisher.start()
    try:
        publisher.publish("lost")
        wait_for(lambda: publisher.batches_sent == 1, timeout=10)
        publisher.publish("exe_after")
        wait_for(lambda: batches.sent == [["exe_after"]], timeout=10)
    finally:
        publisher.stop()
    assert "notifications not sent" in caplog.text
