"""JSON over HTTP with urllib only (the smoke test runs in a slim image): every failure is a Reply."""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

EXCERPT_CHARS = 200


@dataclass(frozen=True)
class Reply:
    method: str
    url: str
    status: int | None  # None: no HTTP answer at all (refused, timed out, unknown host)
    body: Any  # the parsed JSON body, or None
    text: str  # the raw body, or what went wrong on the network
    headers: dict[str, str] = field(default_factory=dict)

    def value(self, name: str) -> Any:
        return self.body.get(name) if isinstance(self.body, dict) else None

    @property
    def transient(self) -> bool:
        """An answer worth polling again: nothing yet, overloaded, or a server error (a cold start, a restart)."""
        return self.status is None or self.status == 429 or self.status >= 500

    def describe(self) -> str:
        answer = "no answer" if self.status is None else f"HTTP {self.status}"
        excerpt = " ".join(self.text.split())
        if len(excerpt) > EXCERPT_CHARS:
            excerpt = excerpt[:EXCERPT_CHARS] + "..."
        return f"{self.method} {self.url} -> {answer}" + (f": {excerpt}" if excerpt else "")


class Http:
    """JSON over urllib; never raises for an HTTP or network failure, it returns a Reply saying so."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout

    def call(self, method: str, url: str, body: Any = None, headers: dict[str, str] | None = None) -> Reply:
        data = None if body is None else json.dumps(body).encode()
        all_headers = {"Accept": "application/json", **(headers or {})}
        if data is not None:
            all_headers["Content-Type"] = "application/json"
        request = urllib.request.Request(url, data=data, method=method, headers=all_headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return _reply(method, url, response.status, response.read(), dict(response.headers))
        except urllib.error.HTTPError as error:
            return _reply(method, url, error.code, _read_error_body(error), dict(error.headers or {}))
        except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
            return Reply(method, url, None, None, self._network_problem(error))

    def _network_problem(self, error: Exception) -> str:
        reason = error.reason if isinstance(error, urllib.error.URLError) else error
        if isinstance(reason, TimeoutError):
            return f"timed out after {self.timeout:g} s"
        return str(reason) or type(reason).__name__


def _read_error_body(error: urllib.error.HTTPError) -> bytes:
    try:
        return error.read()
    except (OSError, http.client.HTTPException):
        return b""


def _reply(method: str, url: str, status: int, raw: bytes, headers: dict[str, str]) -> Reply:
    text = raw.decode("utf-8", errors="replace")
    try:
        body = json.loads(text) if text.strip() else None
    except ValueError:
        body = None
    return Reply(method, url, status, body, text, headers)
