"""Running `fusion dev` as a developer does, for end-to-end tests: a real process tree, real ports."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from support import Tokens, customer_in, free_port

from fusion.local.issuer import IssuerKey, remembered_issuer
from fusion.local.process import ManagedProcess
from fusion.migrate import upgrade
from fusion.registry import service_named

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class RunningPlatform:
    process: subprocess.Popen[str]
    offset: int
    output: Path
    tokens: Tokens | None = None  # of the platform's own issuer, once it is up

    def url(self, service: str, path: str = "") -> str:
        return f"http://127.0.0.1:{service_named(service).port + self.offset}{path}"

    def request(self, method: str, service: str, path: str, body: Any = None,
                headers: dict[str, str] | None = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json", **self._authorization(body), **(headers or {})}
        request = urllib.request.Request(self.url(service, path), data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=15) as response:
                raw = response.read()
                status = response.status
        except urllib.error.HTTPError as error:
            raw, status = error.read(), error.code
        return status, (json.loads(raw) if raw and raw[:1] in b"[{" else raw)

    def _authorization(self, body: Any) -> dict[str, str]:
        """A real token of the platform's issuer: the customer the body names, else staff with every scope."""
        if self.tokens is None:
            return {}
        customer = customer_in(body)
        token = self.tokens.customer(customer) if customer else self.tokens.all_staff()
        return {"Authorization": f"Bearer {token}"}

    def get(self, service: str, path: str) -> Any:
        status, body = self.request("GET", service, path)
        assert status == 200, (path, status, body)
        return body

    def post(self, service: str, path: str, body: Any, headers: dict[str, str] | None = None) -> tuple[int, Any]:
        return self.request("POST", service, path, body, headers)

    def pid_of(self, part: str) -> int:
        """The pid `fusion dev` printed for a part in its latest table (the first number after its address,
        which may hold spaces; a restart count may follow)."""
        for line in reversed(self.output.read_text().splitlines()):
            fields = line.split()
            if fields and fields[0] == part:
                numbers = [field for field in fields[1:] if field.isdigit()]
                if numbers:
                    return int(numbers[0])
        raise LookupError(f"{part} is not in the platform's table")

    def stop(self, timeout: float = 20.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise


def start_platform(env: dict[str, str], offset: int, output: Path, timeout: float = 90.0) -> RunningPlatform:
    """`fusion dev` with the service ports shifted by `offset`; returns once it says it is ready."""
    full_env = {**os.environ, **env, "FUSION_PORT_OFFSET": str(offset), "PYTHONUNBUFFERED": "1"}
    sink = output.open("w")
    process = subprocess.Popen([sys.executable, "-m", "fusion.cli", "dev", "--empty"], cwd=PROJECT_ROOT, env=full_env,
                               stdout=sink, stderr=subprocess.STDOUT, text=True)
    running = RunningPlatform(process, offset, output)
    deadline = time.monotonic() + timeout
    while "is ready" not in output.read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            running.stop()
            raise RuntimeError(f"fusion dev did not start:\n{output.read_text()[-4000:]}")
        time.sleep(0.2)
    return with_local_tokens(running, full_env)


def with_local_tokens(running: RunningPlatform, env: dict[str, str]) -> RunningPlatform:
    """Sign the platform's requests with tokens of the issuer it runs (when it runs its own)."""
    state_dir = Path(env.get("FUSION_STATE_DIR") or PROJECT_ROOT / ".fusion")
    issuer = remembered_issuer(state_dir)
    if issuer is not None and not env.get("OIDC_ISSUER"):
        running.tokens = Tokens(IssuerKey.load_or_create(state_dir), *issuer)
    return running


# empty: the platform runs its own OIDC issuer, on a port of its own
def own_issuer() -> dict[str, str]:
    return {"OIDC_ISSUER": "", "OIDC_AUDIENCE": "", "FUSION_ISSUER_PORT": str(free_port())}


@contextmanager
def stopped(platform: RunningPlatform, part: str) -> Iterator[None]:
    """A part's processes (a service's gunicorn and its worker, or the relay: one session each) stopped, and
    always continued."""
    group = platform.pid_of(part)
    os.killpg(group, signal.SIGSTOP)
    try:
        yield
    finally:
        os.killpg(group, signal.SIGCONT)


def eventually(probe: Callable[[], Any], accept: Callable[[Any], bool], timeout: float = 30.0) -> Any:
    """Poll `probe` until `accept` holds for its result; fail with the last result."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if accept(result):
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached in {timeout} s; last: {result!r}")
        time.sleep(0.1)


def new_database(postgres: ManagedProcess) -> str:
    """A fresh, migrated database in the session's PostgreSQL."""
    name = f"e2e_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres.url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    url = postgres.url.rsplit("/", 1)[0] + "/" + name
    upgrade(url)
    return url


def launch(database_url: str, brokers: str, state_dir: Path, offset: int, output: Path,
           **extra: str) -> RunningPlatform:
    """`fusion dev` on a given database and broker; it starts its own localstripe."""
    env = {
        "DATABASE_URL": database_url,
        "KAFKA_BROKERS": brokers,
        "FUSION_STATE_DIR": str(state_dir),
        # empty: the platform starts its own localstripe, whatever other tests left in the environment
        "STRIPE_SECRET_KEY": "", "STRIPE_API_BASE": "", "STRIPE_WEBHOOK_SECRET": "", "STRIPE_AUTO_CONFIRM": "",
        "CATALOG_URL": "",  # the platform's own catalog, not the one the component tests serve
        "LOG_LEVEL": "info",
        **own_issuer(),
        **extra,
    }
    return start_platform(env, offset, output)
