"""The dashboard in a real browser: Debian's Chromium (headless) against a real Gunicorn.

Selenium drives ``chromium`` through Debian's ``chromedriver``, both found on
``PATH`` (or ``HOOKRUNNER_CHROMIUM`` / ``HOOKRUNNER_CHROMEDRIVER``) and passed
explicitly, so nothing is ever downloaded. Without them the tests are skipped
with the reason, unless ``HOOKRUNNER_REQUIRE_BROWSER=1`` (CI) makes that a failure.
One server and one browser serve the whole module; waits are Selenium's explicit
waits, never timing assertions.

Screenshots of the main pages go to ``docs/screenshots/`` with
``HOOKRUNNER_UPDATE_SCREENSHOTS=1`` (the README shows them), else to a temp dir.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from app.auth import digest
from app.store import SQLiteDatabase, admin_tokens
from app.store.migrations import migrate
from tests.server import PROJECT_ROOT, Server, gunicorn_server

pytestmark = pytest.mark.slow

ADMIN = "browser-admin-token-0123456789abcdef"
VIEWER = "browser-viewer-token-0123456789abcdef"
SECRET = "browser-test-secret"
WAIT_SECONDS = 30


def _find(variable: str, *names: str) -> str | None:
    configured = os.environ.get(variable)
    if configured:
        return configured if Path(configured).exists() else None
    for name in names:
        found = shutil.which(name) or (
            f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None
        )
        if found:
            return found
    return None


CHROMIUM = _find("HOOKRUNNER_CHROMIUM", "chromium", "chromium-browser")
CHROMEDRIVER = _find("HOOKRUNNER_CHROMEDRIVER", "chromedriver")


def _require_browser() -> None:
    missing = [
        name for name, path in (("chromium", CHROMIUM), ("chromedriver", CHROMEDRIVER)) if not path
    ]
    if not missing:
        return
    reason = (
        f"{' and '.join(missing)} not found: install Debian's chromium and chromium-driver"
        " (apt-get install chromium chromium-driver) to run the dashboard's browser tests"
    )
    if os.environ.get("HOOKRUNNER_REQUIRE_BROWSER") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


def _daily_history(db: SQLiteDatabase) -> None:
    """Two weeks of daily rollups (what the scheduler's nightly job writes), for the chart."""
    from datetime import timedelta

    from app.clock import utc_now
    from app.store import metrics as metrics_sql

    today = utc_now().date()
    with db.write() as conn:
        for back in range(14, 0, -1):
            ok, bad = 20 + (back * 7) % 13, (back * 5) % 4
            metrics_sql.upsert_day(
                conn,
                (today - timedelta(days=back)).isoformat(),
                [
                    {"trigger": "live", "kind": "execution", "key": "succeeded", "count": ok},
                    {"trigger": "live", "kind": "execution", "key": "failed", "count": bad},
                    {"trigger": "live", "kind": "delivery", "key": "accepted", "count": ok + bad},
                ],
            )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    _require_browser()
    tmp_path = tmp_path_factory.mktemp("dashboard")
    db = SQLiteDatabase(str(tmp_path / "server.db"))
    try:
        migrate(db)
        admin_tokens.insert(db, "browser-admin", digest(ADMIN), "admin")
        admin_tokens.insert(db, "browser-viewer", digest(VIEWER), "viewer")
        _daily_history(db)
    finally:
        db.close()
    env = {"ENGINE_PROCESSES": "1", "LOG_LEVEL": "WARNING"}
    with gunicorn_server(tmp_path, env=env) as running:
        yield running


@pytest.fixture(scope="module")
def browser(server: Server) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1280,1000",
        "--force-prefers-reduced-motion",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(WAIT_SECONDS)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if os.environ.get("HOOKRUNNER_UPDATE_SCREENSHOTS") == "1":
        folder = PROJECT_ROOT / "docs" / "screenshots"
        folder.mkdir(parents=True, exist_ok=True)
        return folder
    return tmp_path_factory.mktemp("screenshots")


def _wait(browser: Any, condition: Any) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, WAIT_SECONDS, poll_frequency=0.05).until(condition)


def _by_css(browser: Any, selector: str) -> Any:
    from selenium.webdriver.common.by import By

    return browser.find_element(By.CSS_SELECTOR, selector)


def _all_css(browser: Any, selector: str) -> list[Any]:
    from selenium.webdriver.common.by import By

    return list(browser.find_elements(By.CSS_SELECTOR, selector))


def _sign_in(browser: Any, server: Server, token: str) -> None:
    browser.delete_all_cookies()
    browser.get(f"{server.base_url}/ui/login")
    _by_css(browser, "#token").send_keys(token)
    _by_css(browser, "form button[type=submit]").click()
    _wait(browser, lambda b: b.current_url.rstrip("/").endswith("/ui"))


def _send(server: Server, name: str, payload: dict[str, Any], delivery: str) -> dict[str, Any]:
    body = json.dumps(payload).encode()
    signature = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    response = requests.post(
        f"{server.base_url}/webhooks/{name}",
        data=body,
        headers={
            "Content-Type": "application/json",
            "X-GitHub-Event": "push",
            "X-GitHub-Delivery": delivery,
            "X-Hub-Signature-256": f"sha256={signature}",
        },
        timeout=10,
    )
    assert response.status_code == 202, response.text
    return response.json()  # type: ignore[no-any-return]


def _status(server: Server, execution_id: str) -> str:
    response = requests.get(
        f"{server.base_url}/admin/executions/{execution_id}",
        headers={"Authorization": f"Bearer {ADMIN}"},
        timeout=10,
    )
    return str(response.json()["status"])


def _create_through_the_form(browser: Any, server: Server, name: str, argv: list[str]) -> None:
    from selenium.webdriver.support.ui import Select

    browser.get(f"{server.base_url}/ui/triggers/new")
    _by_css(browser, "#f-name").send_keys(name)
    _by_css(browser, "#f-description").send_keys(f"{name} (created in the browser)")
    Select(_by_css(browser, "#f-scheme")).select_by_value("github")
    _by_css(browser, "#f-secret").send_keys(SECRET)
    _by_css(browser, "#f-argv").send_keys("\n".join(argv))
    _by_css(browser, "#f-extra").send_keys('{"dedup": {"key": "none"}}')
    _by_css(browser, "#trigger-form button[type=submit]").click()
    _wait(browser, lambda b: b.current_url.endswith(f"/ui/triggers/{name}"))


def _lines(browser: Any) -> list[tuple[str, str]]:
    return [(line.get_attribute("class"), line.text) for line in _all_css(browser, "#output .line")]


def _accept_confirm(browser: Any) -> None:
    from selenium.webdriver.support import expected_conditions

    _wait(browser, expected_conditions.alert_is_present())
    browser.switch_to.alert.accept()


def test_sign_in_create_a_trigger_and_watch_output_arrive_live(
    browser: Any, server: Server, shots: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    gate = tmp_path_factory.mktemp("gate") / "open"
    script = f"echo one; echo two >&2; while [ ! -f {gate} ]; do sleep 0.05; done; echo three"
    _sign_in(browser, server, ADMIN)
    _create_through_the_form(browser, server, "live", ["/bin/sh", "-c", script])
    assert "live (created in the browser)" in browser.page_source
    assert SECRET not in browser.page_source

    accepted = _send(server, "live", {"after": "abc123"}, "live-1")
    execution_id = accepted["execution_id"]
    browser.get(f"{server.base_url}/ui/executions/{execution_id}")
    _wait(browser, lambda b: len(_lines(b)) >= 2)
    # The command is still blocked on the gate: these lines arrived before it ended.
    assert _status(server, execution_id) == "running"
    # stdout and stderr are read separately: either may come first.
    assert sorted(_lines(browser)) == [("line stderr", "two"), ("line stdout", "one")]
    browser.save_screenshot(str(shots / "execution.png"))
    gate.touch()
    _wait(browser, lambda b: "Finished" in _by_css(b, "#output-state").text)
    lines = _lines(browser)
    assert len(lines) == 3  # each once
    assert sorted(lines[:2]) == [("line stderr", "two"), ("line stdout", "one")]
    assert lines[2] == ("line stdout", "three")
    assert _by_css(browser, "#execution-status [data-status]").text == "succeeded"
    assert _by_css(browser, "#exit-code").text == "0"
    # Reloaded, the page shows the same lines from the store, once each.
    browser.refresh()
    assert sorted(_lines(browser)) == sorted(lines)


def _web_workers(server: Server) -> set[int]:
    """The Gunicorn web workers of ``server`` (not its engine supervisor)."""
    workers = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            args = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if int(stat[1]) == server.process.pid and b"gunicorn" in b" ".join(args):
            workers.add(int(entry.name))
    return workers


def test_output_resumes_after_the_stream_drops_without_duplicates(
    browser: Any, server: Server, tmp_path_factory: pytest.TempPathFactory
) -> None:
    gates = tmp_path_factory.mktemp("gates")
    wait = "while [ ! -f {} ]; do sleep 0.05; done"
    script = "; ".join(
        ["echo a", wait.format(gates / "1"), "echo b", wait.format(gates / "2"), "echo c"]
    )
    _sign_in(browser, server, ADMIN)
    _create_through_the_form(browser, server, "resume", ["/bin/sh", "-c", script])
    execution_id = _send(server, "resume", {}, "resume-1")["execution_id"]
    browser.get(f"{server.base_url}/ui/executions/{execution_id}")
    _wait(browser, lambda b: [t for _, t in _lines(b)] == ["a"])
    # The web worker serving the stream stops (the execution runs in the engine
    # process and goes on); Gunicorn starts another, the browser reconnects to it
    # with Last-Event-ID.
    (old,) = _web_workers(server)
    os.kill(old, signal.SIGTERM)
    _wait(browser, lambda _: old not in _web_workers(server))  # gone: its stream ended
    _wait(browser, lambda _: len(_web_workers(server)) == 1)
    (gates / "1").touch()
    _wait(browser, lambda b: [t for _, t in _lines(b)] == ["a", "b"])
    (gates / "2").touch()
    _wait(browser, lambda b: "Finished" in _by_css(b, "#output-state").text)
    assert [t for _, t in _lines(browser)] == ["a", "b", "c"]


def test_autoscroll_stops_when_the_reader_scrolls_up(
    browser: Any, server: Server, tmp_path_factory: pytest.TempPathFactory
) -> None:
    gates = tmp_path_factory.mktemp("gates")
    wait = "while [ ! -f {} ]; do sleep 0.05; done"
    script = "; ".join(
        [
            "seq 1 60",
            wait.format(gates / "1"),
            "seq 61 80",
            wait.format(gates / "2"),
            "seq 81 100",
        ]
    )
    _sign_in(browser, server, ADMIN)
    _create_through_the_form(browser, server, "scroll", ["/bin/sh", "-c", script])
    execution_id = _send(server, "scroll", {}, "scroll-1")["execution_id"]
    browser.get(f"{server.base_url}/ui/executions/{execution_id}")
    _wait(browser, lambda b: len(_lines(b)) == 60)

    def at_bottom(b: Any) -> bool:
        return bool(
            b.execute_script(
                "const p = document.getElementById('output');"
                "return p.scrollHeight > p.clientHeight"
                " && p.scrollTop + p.clientHeight >= p.scrollHeight - 4;"
            )
        )

    _wait(browser, at_bottom)  # the pane follows the output
    browser.execute_script("document.getElementById('output').scrollTop = 0;")
    _wait(
        browser,
        lambda b: b.execute_script("return document.getElementById('output').scrollTop") == 0,
    )
    (gates / "1").touch()
    _wait(browser, lambda b: len(_lines(b)) == 80)
    # The reader scrolled up: new lines do not pull the pane down.
    assert browser.execute_script("return document.getElementById('output').scrollTop") == 0
    browser.execute_script(
        "const p = document.getElementById('output'); p.scrollTop = p.scrollHeight;"
    )
    _wait(browser, at_bottom)
    (gates / "2").touch()
    _wait(browser, lambda b: len(_lines(b)) == 100)
    _wait(browser, at_bottom)  # back at the bottom, it follows again
    assert [t for _, t in _lines(browser)] == [str(n) for n in range(1, 101)]


def test_the_list_updates_statuses_live(
    browser: Any, server: Server, tmp_path_factory: pytest.TempPathFactory
) -> None:
    gate = tmp_path_factory.mktemp("gate") / "open"
    _sign_in(browser, server, ADMIN)
    _create_through_the_form(
        browser, server, "gated", ["/bin/sh", "-c", f"while [ ! -f {gate} ]; do sleep 0.05; done"]
    )
    execution_id = _send(server, "gated", {}, "gated-1")["execution_id"]
    browser.get(f"{server.base_url}/ui/executions?trigger=gated")
    badge = f'tr[data-execution-id="{execution_id}"] [data-status]'
    _wait(browser, lambda b: _by_css(b, badge).text in ("queued", "running"))
    assert not _by_css(browser, "#new-executions").is_displayed()
    _send(server, "gated", {}, "gated-2")  # queued behind the first (concurrency 1)
    _wait(browser, lambda b: _by_css(b, "#new-executions").is_displayed())
    gate.touch()
    _wait(browser, lambda b: _by_css(b, badge).text == "succeeded")


def test_cancel_a_running_execution(browser: Any, server: Server, shots: Path) -> None:
    _sign_in(browser, server, ADMIN)
    _create_through_the_form(
        browser, server, "sleepy", ["/bin/sh", "-c", "echo started; sleep 300"]
    )
    execution_id = _send(server, "sleepy", {}, "sleepy-1")["execution_id"]
    browser.get(f"{server.base_url}/ui/executions/{execution_id}")
    _wait(browser, lambda b: ("line stdout", "started") in _lines(b))
    _by_css(browser, "#execution-actions form[action$='/cancel'] button").click()
    _accept_confirm(browser)
    _wait(browser, lambda b: _by_css(b, "#execution-status [data-status]").text == "cancelled")
    assert _status(server, execution_id) == "cancelled"
    browser.get(f"{server.base_url}/ui/executions")
    browser.save_screenshot(str(shots / "executions.png"))


def test_replay_a_delivery(browser: Any, server: Server, shots: Path) -> None:
    _sign_in(browser, server, ADMIN)
    accepted = _send(server, "live", {"after": "replayed"}, "live-2")
    browser.get(f"{server.base_url}/ui/deliveries?trigger=live")
    browser.save_screenshot(str(shots / "deliveries.png"))
    _by_css(browser, f'tr[data-delivery-id="{accepted["delivery_id"]}"] a').click()
    _wait(browser, lambda b: "Delivery" in _by_css(b, "h1").text)
    assert "[redacted]" in browser.page_source
    assert _by_css(browser, "#body-pretty").text == '{\n  "after": "replayed"\n}'
    browser.save_screenshot(str(shots / "delivery.png"))
    _by_css(browser, "form[action$='/replay'] button").click()
    _accept_confirm(browser)
    _wait(browser, lambda b: "/ui/executions/" in b.current_url)
    new_id = browser.current_url.rsplit("/", 1)[1]
    assert new_id != accepted["execution_id"]
    assert _by_css(browser, "dd a[href^='/ui/deliveries/']") is not None
    assert "a replay of" in browser.page_source


def test_dry_run_and_pages_for_the_readme(browser: Any, server: Server, shots: Path) -> None:
    _sign_in(browser, server, ADMIN)
    browser.get(f"{server.base_url}/ui/triggers/live")
    body = _by_css(browser, "#dry-body")
    body.clear()
    body.send_keys('{"after": "dry"}')
    _by_css(browser, "#dry-run button[type=submit]").click()
    _wait(browser, lambda b: _all_css(b, "#dry-would"))
    assert _by_css(browser, "#dry-would").text == "reject"  # unsigned sample
    assert "signature_missing" in _by_css(browser, "#dry-result").text
    browser.save_screenshot(str(shots / "trigger.png"))
    for page, name in (("/ui/", "overview"), ("/ui/triggers", "triggers")):
        browser.get(f"{server.base_url}{page}")
        browser.save_screenshot(str(shots / f"{name}.png"))
    assert len(_all_css(browser, "svg.chart rect.ok")) == 0  # the triggers page has none
    browser.get(f"{server.base_url}/ui/")
    assert len(_all_css(browser, "svg.chart rect.ok")) == 14
    browser.set_window_size(390, 844)  # a phone
    browser.get(f"{server.base_url}/ui/executions")
    browser.save_screenshot(str(shots / "phone.png"))
    browser.set_window_size(1280, 1000)
    dark = [{"name": "prefers-color-scheme", "value": "dark"}]
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": dark})
    try:
        browser.get(f"{server.base_url}/ui/deliveries")
        background = _by_css(browser, "body").value_of_css_property("background-color")
        assert background == "rgba(19, 21, 24, 1)"  # the dark palette
        browser.save_screenshot(str(shots / "dark.png"))
    finally:
        browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})


def _post_without_token(browser: Any, path: str, csrf: str | None = None) -> int:
    headers = {"X-CSRF-Token": csrf} if csrf else {}
    return int(
        browser.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "fetch(arguments[0], {method: 'POST', credentials: 'same-origin',"
            " headers: arguments[1], redirect: 'manual'})"
            ".then(r => done(r.status), () => done(-1));",
            path,
            headers,
        )
    )


def test_a_forged_post_is_refused_and_changes_nothing(browser: Any, server: Server) -> None:
    _sign_in(browser, server, ADMIN)
    browser.get(f"{server.base_url}/ui/triggers/live")
    assert _post_without_token(browser, "/ui/triggers/live/delete") == 403
    browser.get(f"{server.base_url}/ui/triggers/live")
    assert _by_css(browser, "h1").text.startswith("live")


def test_a_viewer_sees_no_action_buttons(browser: Any, server: Server) -> None:
    _sign_in(browser, server, VIEWER)
    accepted = _send(server, "live", {"after": "viewer"}, "live-3")
    for path in (
        "/ui/",
        "/ui/triggers",
        "/ui/triggers/live",
        "/ui/deliveries",
        f"/ui/deliveries/{accepted['delivery_id']}",
        "/ui/executions",
        f"/ui/executions/{accepted['execution_id']}",
        "/ui/dedup-keys",
    ):
        browser.get(f"{server.base_url}{path}")
        buttons = [b.text for b in _all_css(browser, "main form[method=post], main a.button")]
        assert buttons == [], (path, buttons)
        assert _all_css(browser, "header form[action$='/logout'] button")  # sign out only
    # Even with its own CSRF token, a viewer's write is refused.
    csrf = _by_css(browser, "body").get_attribute("data-csrf")
    assert csrf
    assert _post_without_token(browser, "/ui/triggers/live/delete", csrf) == 403
    browser.get(f"{server.base_url}/ui/triggers/live")
    assert _by_css(browser, "h1").text.startswith("live")
