"""`fusion dev`'s gateway: one origin for the pages and the API, first in the ready table."""

from __future__ import annotations

import json
import os
import signal
import urllib.error
import urllib.request
import uuid
from typing import Any

from platform_runner import RunningPlatform, eventually

from fusion.config import LOCAL_GATEWAY_PORT
from fusion.registry import services


def _gateway(platform: RunningPlatform, path: str) -> str:
    return f"http://127.0.0.1:{LOCAL_GATEWAY_PORT + platform.offset}{path}"


def fetch(url: str, method: str = "GET", body: Any = None, headers: dict[str, str] | None = None
          ) -> tuple[int, dict[str, str], bytes]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
    except urllib.error.HTTPError as error:
        return error.code, {k.lower(): v for k, v in error.headers.items()}, error.read()
    except OSError:  # nothing listens (yet): no answer at all
        return 0, {}, b""


def test_the_ready_table_shows_the_gateway_first(platform: RunningPlatform) -> None:
    lines = platform.output.read_text().splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("part "))
    first = lines[header + 2].split()
    assert first[:2] == ["gateway", _gateway(platform, "")]
    assert platform.pid_of("gateway") > 0


def test_the_api_answers_through_the_gateway_as_it_does_directly(platform: RunningPlatform) -> None:
    assert platform.tokens is not None
    alice = {"Authorization": f"Bearer {platform.tokens.customer(f'alice-{uuid.uuid4().hex[:6]}')}"}
    sku = f"GW-E2E-{uuid.uuid4().hex[:6]}"
    status, _ = platform.post("catalog", "/products", {"sku": sku, "name": "Gateway kettle", "price": 30,
                                                        "currency": "USD", "inventory": 5})
    assert status == 201
    listed = f"/products?sku={sku}"
    through, direct = fetch(_gateway(platform, listed)), fetch(platform.url("catalog", listed))
    assert through[0] == direct[0] == 200 and through[2] == direct[2]
    assert through[1]["content-type"] == direct[1]["content-type"]
    order = {"currency": "USD", "items": [{"sku": sku, "quantity": 1, "price": 30}]}
    keyed = {**alice, "Idempotency-Key": f"gw-{sku}"}
    placed = fetch(_gateway(platform, "/orders"), "POST", order, keyed)
    again = fetch(_gateway(platform, "/orders"), "POST", order, keyed)
    assert placed[0] == again[0] == 201, (placed, again)
    assert again[1]["idempotent-replayed"] == "true"
    order_id = json.loads(placed[2])["id"]
    assert fetch(_gateway(platform, f"/orders/{order_id}"), headers=alice)[0] == 200
    assert fetch(_gateway(platform, f"/orders/{order_id}"))[0] == 401  # no token: the gateway adds none


def test_the_console_reads_the_operations_api_through_the_gateway(platform: RunningPlatform) -> None:
    assert platform.tokens is not None
    staff = {"Authorization": f"Bearer {platform.tokens.staff('operations:manage')}"}
    status, _, body = fetch(_gateway(platform, "/operations/status"), headers=staff)
    assert status == 200, body
    health = {row["name"]: row["health"] for row in json.loads(body)["services"]}
    assert set(health) == {*services(), "relay", "router"}
    assert all(health[name] == "ok" for name in services()), health


def test_nothing_internal_is_reachable_through_the_gateway(platform: RunningPlatform) -> None:
    for method, path in (("GET", "/metrics"), ("GET", "/health"), ("POST", "/_functions/reserve-stock")):
        status, headers, body = fetch(_gateway(platform, path), method, {} if method == "POST" else None)
        assert status == 404 and json.loads(body)["error"] == "not_found", (path, status, body)
        assert headers["content-type"] == "application/json"
    assert fetch(platform.url("catalog", "/metrics"))[0] == 200  # there, on the service's own port


def test_a_killed_gateway_is_started_again(platform: RunningPlatform) -> None:
    before = platform.pid_of("gateway")
    os.kill(before, signal.SIGKILL)

    def back() -> bool:
        rows = [line.split() for line in platform.output.read_text().splitlines()]
        pids = [fields[2] for fields in rows if len(fields) >= 3 and fields[0] == "gateway" and fields[2].isdigit()]
        return pids[-1] != str(before) and fetch(_gateway(platform, "/healthz"))[0] == 200

    eventually(back, bool, timeout=60)
    assert fetch(_gateway(platform, "/products?limit=1"))[0] == 200
    assert "gateway exited with code -9 (SIGKILL); restarting it" in platform.output.read_text()
