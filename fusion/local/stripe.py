"""localstripe (see ``stripe_server``) on 127.0.0.1, its state in memory only."""

from __future__ import annotations

import http.client
import os
import sys
import urllib.request
from pathlib import Path

from fusion.local.ports import HOST
from fusion.local.process import ManagedProcess, start_or_attach

PACKAGE_ROOT = Path(__file__).resolve().parents[2]


def start_localstripe(port: int, log_file: Path | None = None) -> ManagedProcess:
    """Start localstripe on ``127.0.0.1:port`` with in-memory state only."""
    url = f"http://{HOST}:{port}"
    command = [sys.executable, "-m", "fusion.local.stripe_server", "--port", str(port)]
    return start_or_attach("stripe", "localstripe", port, url, lambda: command,
                           lambda timeout: _localstripe_ok(url, timeout), log_file, env=_server_env())


def _server_env() -> dict[str, str]:
    # The child imports this package even when it is not installed, and logs without buffering.
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PACKAGE_ROOT), env.get("PYTHONPATH")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _localstripe_ok(url: str, timeout: float) -> bool:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(f"{url}/js.stripe.com/v3/", timeout=timeout) as response:
            return bool(response.status == 200 and b"Stripe" in response.read())
    except (OSError, http.client.HTTPException):
        return False
