"""Imported hooks answer and run like adnanh/webhook itself (the ``webhook`` binary).

The peer's documented hooks files (tests/fixtures/peer_hooks/) are served twice:
by ``/usr/bin/webhook`` and, converted with ``hookrunner import-hooks`` and
applied with ``hookrunner apply``, by a real Gunicorn Hookrunner with
``HOOKS_URL_PREFIX=hooks``. Every command is a recorder that writes what it was
given (arguments, the variables the hook names, file contents); each request of
the peer's docs is sent to both, and the status, the body and the record must
be the same. One server of each kind serves every hook (the peer twice: the
``-template`` hooks file needs its own process).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from tests.conftest import wait_for
from tests.server import PROJECT_ROOT, Server, free_port, gunicorn_server

pytestmark = pytest.mark.slow

PEER = shutil.which("webhook") or "/usr/bin/webhook"
FIXTURES = Path(__file__).parent / "fixtures" / "peer_hooks"
TEMPLATE_SECRET = "template-secret-from-env"
# Hooks whose triggers need response.mode "wait" or a command's files.
NEEDS_WAIT = {
    "test-file-webhook",
    "scalr-redeploy",
    "output-fail",
    "output-fail-shown",
    "output-ok",
}
COMBINED = [
    "github.json",
    "gitlab-bitbucket.json",
    "slack.yaml",
    "xml.json",
    "multipart.json",
    "files-env.json",
    "scalr.json",
    "flow-syntax.json",
    "parity-extra.yaml",
]

if not Path(PEER).exists():
    pytest.skip(
        "the adnanh/webhook binary is not installed (apt-get install webhook)",
        allow_module_level=True,
    )

RECORDER = """#!{python}
import base64, json, os, pathlib, sys, time
OUT = pathlib.Path({out!r})
FILE_VARS = {file_vars!r}
ENV_VARS = {env_vars!r}
name = pathlib.Path(sys.argv[0]).name
env = {{k: v for k, v in os.environ.items() if k.startswith("HOOK_") or k in ENV_VARS}}
files = {{}}
for var in FILE_VARS:
    env.pop(var, None)  # the path differs; the content is compared
    path = os.environ.get(var)
    if path:
        files[var] = base64.b64encode(pathlib.Path(path).read_bytes()).decode()
record = {{"argv": sys.argv[1:], "env": env, "files": files}}
partial = OUT.parent / f"{{name}}-{{os.getpid()}}.partial"
partial.write_text(json.dumps(record))
os.replace(partial, OUT / f"{{name}}-{{time.time_ns()}}.json")  # whole, or not there yet
print("ran", name, *sys.argv[1:], flush=True)
print("and said something on stderr", file=sys.stderr, flush=True)
sys.exit(3 if name.startswith("output-fail") else 0)
"""


@dataclass
class Setup:
    peer: str  # base URL of the peer serving the combined file
    peer_template: str
    hookrunner: Server
    records: Path
    applied: dict[str, str] = field(default_factory=dict)  # group -> "" or the apply error


def _run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from app.cli import main; main()", *args],
        cwd=PROJECT_ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _hooks_for_test(tmp: Path) -> tuple[Path, Path, Path]:
    """The fixtures with every command replaced by the recorder (named after the hook)."""
    bin_dir = tmp / "bin"
    bin_dir.mkdir()
    recorder = tmp / "recorder.py"
    hooks: list[dict[str, Any]] = []
    for name in COMBINED:
        hooks.extend(yaml.safe_load((FIXTURES / name).read_text()))
    template_text = (FIXTURES / "template.json").read_text()
    env_vars: set[str] = {"AGENT"}
    file_vars: set[str] = set()
    for hook in hooks:
        for argument in hook.get("pass-environment-to-command", []):
            if argument.get("envname"):
                env_vars.add(argument["envname"])
        for argument in hook.get("pass-file-to-command", []):
            file_vars.add(argument.get("envname") or "HOOK_" + argument["name"].upper())
        hook["execute-command"] = str(bin_dir / hook["id"])
        hook["command-working-directory"] = str(tmp)
        (bin_dir / hook["id"]).symlink_to(recorder)
    recorder.write_text(
        RECORDER.format(
            python=sys.executable,
            out=str(tmp / "records"),
            file_vars=sorted(file_vars),
            env_vars=sorted(env_vars),
        )
    )
    recorder.chmod(recorder.stat().st_mode | stat.S_IXUSR)
    (tmp / "records").mkdir()
    combined = tmp / "hooks.json"
    combined.write_text(json.dumps(hooks, indent=1))
    template = tmp / "template-hooks.json"
    (bin_dir / "webhook").symlink_to(recorder)
    template.write_text(
        template_text.replace(
            "/home/adnan/redeploy-go-webhook.sh", str(bin_dir / "webhook")
        ).replace("/home/adnan/go", str(tmp))
    )
    # Read by the peer as written (its YAML reading of scalars is what is compared).
    scalars = tmp / "yaml-scalars.yaml"
    scalars.write_text(
        (FIXTURES / "yaml-scalars.yaml").read_text().replace("/usr/local/bin/", f"{bin_dir}/")
    )
    (bin_dir / "scalars").symlink_to(recorder)
    return combined, template, scalars


def _wait_port(port: int) -> None:
    def listening() -> bool:
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", port)) == 0

    assert wait_for(listening, timeout=10), f"the peer did not listen on {port}"


def _peer(hooks: Path, log: Path, *extra: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    with log.open("ab") as out:
        process = subprocess.Popen(
            [
                PEER,
                "-hooks",
                str(hooks),
                "-ip",
                "127.0.0.1",
                "-port",
                str(port),
                "-verbose",
                *extra,
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "XXXTEST_SECRET": TEMPLATE_SECRET},
        )
    _wait_port(port)
    return process, f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    tmp = tmp_path_factory.mktemp("parity")
    combined, template, scalars = _hooks_for_test(tmp)
    peer, peer_url = _peer(combined, tmp / "peer.log", "-hooks", str(scalars))
    peer_t, peer_t_url = _peer(template, tmp / "peer-template.log", "-template")
    try:
        with gunicorn_server(
            tmp, env={"HOOKS_URL_PREFIX": "hooks", "ENGINE_PROCESSES": "1"}
        ) as server:
            result = Setup(peer_url, peer_t_url, server, tmp / "records")
            _import_and_apply(tmp, [combined, scalars], template, result)
            yield result
    finally:
        for process in (peer, peer_t):
            process.terminate()
            process.wait(timeout=10)


def _import_and_apply(tmp: Path, files: list[Path], template: Path, setup: Setup) -> None:
    documents: list[dict[str, Any]] = []
    for args in [[str(path)] for path in files] + [["--template", str(template)]]:
        converted = _run_cli("import-hooks", *args)
        assert converted.returncode == 0, converted.stderr
        documents += yaml.safe_load(converted.stdout)["triggers"]
    groups = {
        "basic": [d for d in documents if d["name"] not in NEEDS_WAIT],
        "wait": [d for d in documents if d["name"] in NEEDS_WAIT],
    }
    env = {
        "DATABASE_URL": f"sqlite:///{tmp / 'server.db'}",
        "XXXTEST_SECRET": TEMPLATE_SECRET,
    }
    for group, docs in groups.items():
        path = tmp / f"triggers-{group}.yaml"
        path.write_text(yaml.safe_dump({"triggers": docs}))
        applied = _run_cli("apply", "-f", str(path), env=env)
        setup.applied[group] = "" if applied.returncode == 0 else applied.stderr
    assert setup.applied["basic"] == "", setup.applied["basic"]
    time.sleep(1.2)  # the server's trigger cache revalidates within a second


@dataclass
class Answer:
    status: int
    body: str
    headers: dict[str, str]
    record: dict[str, Any] | None


def _records(directory: Path) -> set[Path]:
    return set(directory.iterdir())


def _fire(
    setup: Setup,
    base: str,
    hook: str,
    *,
    method: str = "POST",
    query: str = "",
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    runs: bool,
) -> Answer:
    before = _records(setup.records)
    url = f"{base}/hooks/{hook}" + (f"?{query}" if query else "")
    response = requests.request(method, url, headers=headers or {}, data=body, timeout=30)
    record = None
    if runs:
        assert wait_for(lambda: _records(setup.records) - before, timeout=20), (
            f"{hook}: the command did not run for {base}"
        )
        (path,) = _records(setup.records) - before
        record = json.loads(path.read_text())
    return Answer(response.status_code, response.text, dict(response.headers), record)


def _both(
    setup: Setup, hook: str, *, template: bool = False, **request: Any
) -> tuple[Answer, Answer]:
    if hook in NEEDS_WAIT and setup.applied.get("wait"):
        pytest.fail(f"{hook}: its trigger could not be applied: {setup.applied['wait']}")
    peer = _fire(setup, setup.peer_template if template else setup.peer, hook, **request)
    ours = _fire(setup, setup.hookrunner.base_url, hook, **request)
    return peer, ours


def _same(peer: Answer, ours: Answer, *, env_names_fixed: bool = False) -> None:
    assert (ours.status, ours.body) == (peer.status, peer.body)
    if peer.record is None:
        return
    assert ours.record is not None
    expected = dict(peer.record)
    if env_names_fixed:  # variable names the peer passes that no shell can read
        expected["env"] = {
            "".join(c if c.isalnum() or c == "_" else "_" for c in k): v
            for k, v in expected["env"].items()
        }
    assert ours.record == expected


def _sign(secret: str, body: bytes, algorithm: str) -> str:
    return hmac.new(secret.encode(), body, algorithm).hexdigest()


PUSH = json.dumps(
    {
        "ref": "refs/heads/master",
        "head_commit": {"id": "1481a2de7b2a7d02428ad93446ab166be7793fbb"},
        "pusher": {"name": "octocat", "email": "octocat@example.com"},
    }
).encode()


def test_github_signed_push_runs_with_the_commit_and_pusher(setup: Setup) -> None:
    headers = {
        "Content-Type": "application/json",
        "X-Hub-Signature": "sha1=" + _sign("mysecret", PUSH, "sha1"),
    }
    peer, ours = _both(setup, "redeploy-webhook", headers=headers, body=PUSH, runs=True)
    _same(peer, ours)
    assert peer.status == 200 and peer.body == ""
    assert ours.record is not None
    assert ours.record["argv"] == [
        "1481a2de7b2a7d02428ad93446ab166be7793fbb",
        "octocat",
        "octocat@example.com",
    ]


@pytest.mark.parametrize(
    ("signature", "body"),
    [
        ("sha1=" + "0" * 40, PUSH),  # wrong signature: the peer's rule error
        (None, PUSH),  # no signature: rules not satisfied
        (
            "sha1=" + _sign("mysecret", PUSH.replace(b"master", b"develop"), "sha1"),
            PUSH.replace(b"master", b"develop"),
        ),  # another branch
    ],
    ids=["wrong-signature", "no-signature", "other-branch"],
)
def test_github_refusals_answer_like_the_peer(
    setup: Setup, signature: str | None, body: bytes
) -> None:
    headers = {"Content-Type": "application/json"}
    if signature:
        headers["X-Hub-Signature"] = signature
    peer, ours = _both(setup, "redeploy-webhook", headers=headers, body=body, runs=False)
    _same(peer, ours)


def test_gitlab_token_and_bitbucket_allowlist(setup: Setup) -> None:
    body = json.dumps({"user_name": "jsmith", "object_kind": "push"}).encode()
    headers = {"Content-Type": "application/json", "X-Gitlab-Token": "<YOUR-GENERATED-TOKEN>"}
    peer, ours = _both(setup, "gitlab-redeploy", headers=headers, body=body, runs=True)
    _same(peer, ours)
    assert peer.body == "Executing redeploy script"
    headers["X-Gitlab-Token"] = "wrong"
    _same(*_both(setup, "gitlab-redeploy", headers=headers, body=body, runs=False))
    # The id is not a trigger name: /hooks/bitbucket.redeploy reaches bitbucket-redeploy,
    # whose allowlist does not hold 127.0.0.1.
    body = json.dumps({"actor": {"username": "bb"}}).encode()
    headers = {"Content-Type": "application/json"}
    peer, ours = _both(setup, "bitbucket.redeploy", headers=headers, body=body, runs=False)
    _same(peer, ours)
    assert peer.body == "Hook rules were not satisfied."


def test_slack_form_and_methods(setup: Setup) -> None:
    body = b"token=%3CYOUR-SLACK-TOKEN%3E&user_name=Steve&text=deploy+now&command=%2Fredeploy"
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    peer, ours = _both(setup, "redeploy-slack", headers=headers, body=body, runs=True)
    _same(peer, ours)
    assert ours.record is not None and ours.record["argv"] == ["Steve", "deploy now"]
    peer, ours = _both(setup, "redeploy-slack", method="GET", runs=False)
    assert peer.status == ours.status == 405


def test_xml_and_multipart_payloads(setup: Setup) -> None:
    xml = (
        b'<app><users><user id="1">Jeff</user><user id="2">Sally</user></users>'
        b'<messages><message id="1" from_user="1" to_user="2">Hello!!</message>'
        b"</messages></app>"
    )
    headers = {"Content-Type": "application/xml"}
    peer, ours = _both(setup, "xml-users", headers=headers, body=xml, runs=True)
    _same(peer, ours)
    assert ours.record is not None and ours.record["argv"] == ["Jeff", "2", "Hello!!"]

    payload = {"event": "media.play", "Account": {"title": "Plex user"}}
    boundary = "xYzZY"
    multipart = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="payload"\r\n\r\n'
        f"{json.dumps(payload)}\r\n"
        f'--{boundary}\r\nContent-Disposition: form-data; name="thumb"; filename="t.jpg"\r\n'
        f"Content-Type: image/jpeg\r\n\r\n\xff\xd8\xff\r\n--{boundary}--\r\n"
    ).encode("latin-1")
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    peer, ours = _both(setup, "plex", headers=headers, body=multipart, runs=True)
    _same(peer, ours)
    assert ours.record is not None and ours.record["argv"] == ["Plex user", "media.play"]


def test_flow_syntax_hook_with_soft_signature_failures(setup: Setup) -> None:
    body = json.dumps({"ref": "refs/heads/main", "n": 1, "html": "<b>&\u2028"}).encode()
    headers = {
        "Content-Type": "application/json",
        "X-Hub-Signature-256": "sha256=" + "0" * 64,  # wrong, but soft
        "X-Signature-512": _sign("s3cr3t", body, "sha512"),
    }
    peer, ours = _both(
        setup, "signed-deploy", method="PUT", query="a=1&b=2", headers=headers, body=body, runs=True
    )
    _same(peer, ours)
    assert ours.record is not None
    # the peer's JSON: compact, keys sorted, HTML characters and U+2028 escaped
    compact = '{"html":"\\u003cb\\u003e\\u0026\\u2028","n":1,"ref":"refs/heads/main"}'
    assert ours.record["argv"][:4] == ["PUT", body.decode(), compact, '{"a":"1","b":"2"}']
    assert ours.record["argv"][4] == "costs ${5} {{ not a template }}"
    headers["X-Signature-512"] = "0" * 128  # both wrong: soft failures, not satisfied
    peer, ours = _both(setup, "signed-deploy", headers=headers, body=body, runs=False)
    _same(peer, ours)
    assert peer.status == 400
    peer, ours = _both(setup, "signed-deploy", method="GET", runs=False)
    assert peer.status == ours.status == 405


def test_template_hook_reads_its_secret_from_the_environment(setup: Setup) -> None:
    body = json.dumps({"head_commit": {"id": "abc123"}}).encode()
    headers = {
        "Content-Type": "application/json",
        "X-Hub-Signature-256": "sha256=" + _sign(TEMPLATE_SECRET, body, "sha256"),
    }
    peer, ours = _both(setup, "webhook", template=True, headers=headers, body=body, runs=True)
    _same(peer, ours)
    assert peer.body == "I got the payload!"
    assert (
        ours.headers["Access-Control-Allow-Origin"] == peer.headers["Access-Control-Allow-Origin"]
    )
    for signature in (None, "sha256=" + "0" * 64):  # rules not satisfied; rule error
        headers.pop("X-Hub-Signature-256", None)
        if signature:
            headers["X-Hub-Signature-256"] = signature
        peer, ours = _both(setup, "webhook", template=True, headers=headers, body=body, runs=False)
        _same(peer, ours)
        allow_origin = "Access-Control-Allow-Origin"
        assert ours.headers.get(allow_origin) == peer.headers.get(allow_origin)


def test_query_values_methods_and_environment(setup: Setup) -> None:
    headers = {"User-Agent": "parity-test/1.0"}
    peer, ours = _both(
        setup, "get-only", method="GET", query="service=api", headers=headers, runs=True
    )
    _same(peer, ours)
    assert ours.record is not None
    assert ours.record["argv"] == ["api", "GET"]
    assert ours.record["env"] == {"HOOK_service": "api", "AGENT": "parity-test/1.0"}
    peer, ours = _both(setup, "get-only", method="POST", runs=False)
    assert peer.status == ours.status == 405


def test_ip_allowlist_and_literal_message(setup: Setup) -> None:
    peer, ours = _both(setup, "local-only", runs=True)
    _same(peer, ours)
    assert peer.body == "{{ not a template }} ${HOME}"


def test_scalr_signature(setup: Setup) -> None:
    body = json.dumps({"eventName": "HostUp", "data": {"SCALR_SERVER_HOSTNAME": "web-1"}}).encode()
    date = time.strftime("%a %d %b %Y %H:%M:%S UTC", time.gmtime())
    key = "Scalr-provided signing key"
    signature = hmac.new(key.encode(), body + date.encode(), hashlib.sha1).hexdigest()
    headers = {"Content-Type": "application/json", "Date": date, "X-Signature": signature}
    peer, ours = _both(setup, "scalr-redeploy", headers=headers, body=body, runs=True)
    _same(peer, ours)
    assert ours.record is not None
    assert ours.record["env"] == {"EVENT_NAME": "HostUp", "SERVER_HOSTNAME": "web-1"}
    headers["X-Signature"] = "0" * 40
    _same(*_both(setup, "scalr-redeploy", headers=headers, body=body, runs=False))


def test_command_output_files_and_environment(setup: Setup) -> None:
    content = bytes(range(256))
    body = json.dumps(
        {
            "binary": base64.b64encode(content).decode(),
            "notes": "release notes\nline 2",
            "repository": {"name": "webhook"},
        }
    ).encode()
    headers = {"Content-Type": "application/json", "X-Event": "push"}
    peer, ours = _both(
        setup, "test-file-webhook", query="target=prod", headers=headers, body=body, runs=True
    )
    _same(peer, ours, env_names_fixed=True)
    assert peer.status == 201
    assert ours.headers["X-Served-By"] == "webhook"
    assert ours.record is not None
    assert base64.b64decode(ours.record["files"]["ENV_VARIABLE"]) == content
    assert base64.b64decode(ours.record["files"]["HOOK_NOTES"]) == b"release notes\nline 2"


@pytest.mark.parametrize("hook", ["output-fail", "output-fail-shown", "output-ok"])
def test_command_output_in_the_answer(setup: Setup, hook: str) -> None:
    peer, ours = _both(setup, hook, query="build=42", runs=True)
    _same(peer, ours)


def test_yaml_scalars_are_read_as_the_peer_reads_them(setup: Setup) -> None:
    peer, ours = _both(setup, "scalars", query="version=2", runs=True)
    _same(peer, ours)
    assert ours.record is not None
    assert ours.record["argv"] == [
        "2", "1e6", "1.234567e+06", "1e-05", "false", "10:30", "493", "1000", "0.5", "true",
        "31", "1.1",
    ]  # fmt: skip
    _same(*_both(setup, "scalars", query="version=2.0", runs=False))  # not satisfied
