"""The shipped workflows in the real n8n, the version the manifests run (installed by .ci/install-n8n).

deploy/n8n/import.sh, the script the Kubernetes Job and Compose run, imports deploy/n8n/workflows.json
into a scratch n8n on SQLite; n8n must then hold exactly those workflows, active, with the values of
the environment filled in. Started with environment access blocked in nodes, n8n answers a CloudEvent
on the tokened webhook path only and posts the composed message to the notification gateway.
"""

from __future__ import annotations

import json
import os
import queue
import secrets
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from deploy_support import PROJECT_ROOT

from fusion.knative.n8n import workflows
from fusion.topics import TOPICS

N8N_HOME = PROJECT_ROOT / ".n8n"
N8N = N8N_HOME / "node_modules" / ".bin" / "n8n"
IMPORT_SCRIPT = PROJECT_ROOT / "deploy" / "n8n" / "import.sh"
PUBLIC_BASE_URL = "https://shop.test.example"
IMPORT_TIMEOUT = 240  # seconds: the first n8n command also runs its database migrations
START_TIMEOUT = 120


@dataclass
class Gateway:
    """The notification gateway: records what n8n posts to it (headers by lower-case name, JSON body)."""

    url: str
    received: queue.Queue[tuple[dict[str, str], dict[str, Any]]]


@dataclass
class Scratch:
    env: dict[str, str]
    token: str
    gateway: Gateway


def _node_bin(home: Path = N8N_HOME) -> Path:
    """The folder of the Node.js the installed n8n runs on."""
    found = sorted((home / "node" / "node_modules").glob("node-linux-*/bin/node"))
    if not (home / "node_modules" / ".bin" / "n8n").exists() or not found:
        pytest.fail(f"n8n is not installed in {home}: run .ci/install-n8n")
    return found[0].parent


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def gateway() -> Iterator[Gateway]:
    received: queue.Queue[tuple[dict[str, str], dict[str, Any]]] = queue.Queue()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            received.put(({name.lower(): value for name, value in self.headers.items()}, json.loads(body)))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield Gateway(f"http://127.0.0.1:{server.server_address[1]}/notify", received)
    server.shutdown()


def _scratch_env(folder: Path, token: str, gateway: Gateway) -> dict[str, str]:
    return {
        "PATH": os.pathsep.join([str(_node_bin()), str(N8N.parent), os.environ.get("PATH", "/usr/bin:/bin")]),
        "HOME": str(folder),
        "N8N_USER_FOLDER": str(folder),
        "DB_TYPE": "sqlite",
        "N8N_ENCRYPTION_KEY": "test-only-" + secrets.token_hex(8),
        "N8N_BLOCK_ENV_ACCESS_IN_NODE": "true",
        "N8N_ENFORCE_SETTINGS_FILE_PERMISSIONS": "true",
        "N8N_DIAGNOSTICS_ENABLED": "false",
        "N8N_WEBHOOK_PATH_TOKEN": token,
        "NOTIFICATIONS_URL": gateway.url,
        "PUBLIC_BASE_URL": PUBLIC_BASE_URL,
    }


def _run(command: list[str], env: dict[str, str], timeout: float = IMPORT_TIMEOUT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, env=env, cwd=env["HOME"], capture_output=True, text=True, timeout=timeout,
                          check=False)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory, gateway: Gateway) -> Scratch:
    """A scratch n8n with the shipped workflows imported by import.sh."""
    token = secrets.token_hex(32)
    env = _scratch_env(tmp_path_factory.mktemp("n8n"), token, gateway)
    done = _run(["sh", str(IMPORT_SCRIPT)], env)
    assert done.returncode == 0, f"import.sh failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return Scratch(env, token, gateway)


def _exported(scratch: Scratch) -> list[dict[str, Any]]:
    output = Path(scratch.env["HOME"]) / "exported.json"
    done = _run(["n8n", "export:workflow", "--all", f"--output={output}"], scratch.env)
    assert done.returncode == 0, done.stdout + done.stderr
    exported: list[dict[str, Any]] = json.loads(output.read_text())
    return exported


def test_without_the_install_the_tests_fail_saying_how_to_install(tmp_path: Path) -> None:
    with pytest.raises(pytest.fail.Exception, match=r"run \.ci/install-n8n"):
        _node_bin(tmp_path)


def test_import_refuses_a_missing_or_short_webhook_token(tmp_path: Path, gateway: Gateway) -> None:
    for token in ("", "short"):
        done = _run(["sh", str(IMPORT_SCRIPT)], _scratch_env(tmp_path, token, gateway), timeout=30)
        assert done.returncode != 0 and "N8N_WEBHOOK_PATH_TOKEN" in done.stderr
    assert not (tmp_path / ".n8n" / "database.sqlite").exists(), "nothing imported"


def test_every_shipped_workflow_is_imported_active_with_the_environment_filled_in(scratch: Scratch) -> None:
    exported = {workflow["id"]: workflow for workflow in _exported(scratch)}
    shipped = {workflow["id"]: workflow for workflow in workflows()}
    assert len(exported) == len(shipped)
    assert {i: w["name"] for i, w in exported.items()} == {i: w["name"] for i, w in shipped.items()}
    assert all(workflow["active"] is True for workflow in exported.values())
    text = json.dumps(list(exported.values()))
    assert "$(" not in text and "$env" not in text
    for workflow in exported.values():
        nodes = {node["type"]: node["parameters"] for node in workflow["nodes"]}
        assert nodes["n8n-nodes-base.webhook"]["path"].endswith("/" + scratch.token)
        assert nodes["n8n-nodes-base.httpRequest"]["url"] == scratch.gateway.url


def _post(url: str, event: dict[str, Any], headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, data=json.dumps(event).encode(), method="POST",
                                     headers={"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status: int = response.status
            return status
    except urllib.error.HTTPError as error:
        return error.code


def _wait_until_listening(log: Path, server: subprocess.Popen[bytes]) -> None:
    """n8n says where its editor is once it has activated the workflows and registered their webhooks."""
    deadline = time.monotonic() + START_TIMEOUT
    while "Editor is now accessible" not in log.read_text(errors="replace"):
        assert server.poll() is None, f"n8n stopped:\n{log.read_text(errors='replace')[-3000:]}"
        assert time.monotonic() < deadline, f"n8n did not start in {START_TIMEOUT} s"
        time.sleep(0.5)


@pytest.fixture
def started(scratch: Scratch) -> Iterator[str]:
    """The scratch n8n serving on a free loopback port: its webhook base URL."""
    port = _free_port()
    log = Path(scratch.env["HOME"]) / "n8n-start.log"
    env = {**scratch.env, "N8N_PORT": str(port), "N8N_LISTEN_ADDRESS": "127.0.0.1"}
    with log.open("wb") as output:
        server = subprocess.Popen(["n8n", "start"], env=env, cwd=env["HOME"], stdout=output,
                                  stderr=subprocess.STDOUT)
    try:
        _wait_until_listening(log, server)
        yield f"http://127.0.0.1:{port}/webhook"
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)


def test_a_shipped_event_on_the_tokened_path_sends_the_tracking_url(scratch: Scratch, started: str) -> None:
    event = {"orderId": "order-1", "customerId": "alice", "carrier": "DHL", "trackingNumber": "TRK-1"}
    headers = {"ce-id": "event-1", "ce-type": TOPICS["shipping.label.created"].type, "ce-specversion": "1.0",
               "ce-source": "/shipping"}
    assert _post(f"{started}/order-shipped/{'0' * 64}", event, headers) == 404
    assert _post(f"{started}/order-shipped", event, headers) == 404
    assert _post(f"{started}/order-shipped/{scratch.token}", event, headers) == 204
    sent_headers, message = scratch.gateway.received.get(timeout=30)
    assert sent_headers["idempotency-key"] == "event-1"
    assert message["notification"] == "order-shipped" and message["eventId"] == "event-1"
    assert message["audience"] == {"customerId": "alice", "orderId": "order-1"}
    assert f"follow it at {PUBLIC_BASE_URL}/tracking/TRK-1." in message["message"]
    assert scratch.gateway.received.empty(), "the refused deliveries sent nothing"
