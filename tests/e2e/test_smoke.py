"""`fusion smoke` against the running platform, against nothing, and with bad arguments."""

from __future__ import annotations

import json
import random
import socket
from pathlib import Path

import pytest
from platform_runner import RunningPlatform

from fusion import smoke
from fusion.config import LOCAL_GATEWAY_PORT
from fusion.registry import service_named, services


def _all_free(ports: list[int]) -> bool:
    for port in ports:
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def unused_port_offset() -> int:
    """An offset that puts the gateway and every service port where nothing listens."""
    for _ in range(100):
        offset = random.randrange(20_000, 50_000)
        if _all_free([LOCAL_GATEWAY_PORT + offset, *(service.port + offset for service in services().values())]):
            return offset
    raise RuntimeError("no free range of service ports found")


def credentials(platform: RunningPlatform) -> list[str]:
    """Tokens of the platform's own issuer, as an operator passes them after a deploy."""
    assert platform.tokens is not None
    return ["--staff-token", platform.tokens.staff("catalog:write"),
            "--customer-token", platform.tokens.customer("smoke-e2e")]


def step_lines(output: str) -> dict[str, str]:
    """The printed line of each step, by step name."""
    lines = {}
    for line in output.splitlines():
        for name in smoke.STEPS:
            if line[6:].startswith(name + " "):
                lines[name] = line
    return lines


def test_every_step_passes_on_the_running_platform(platform: RunningPlatform,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    code = smoke.main(["--port-offset", str(platform.offset), *credentials(platform)])
    output = capsys.readouterr().out
    assert code == 0, output
    lines = step_lines(output)
    assert list(lines) == list(smoke.STEPS), output
    assert all(line.startswith("PASS") for line in lines.values()), output
    assert output.rstrip().splitlines()[-1] == f"smoke: {len(smoke.STEPS)} passed, 0 failed"
    assert "cancelled" in lines["cancel order"] or "no longer cancellable" in lines["cancel order"]


def test_a_platform_that_is_not_there_fails_fast_with_the_url(capsys: pytest.CaptureFixture[str]) -> None:
    offset = unused_port_offset()
    code = smoke.main(["--port-offset", str(offset), "--timeout", "2", "--staff-token", "x", "--customer-token", "y"])
    output = capsys.readouterr().out
    assert code == 1, output
    health = step_lines(output)["health"]
    assert health.startswith("FAIL"), output
    catalog_health = f"http://127.0.0.1:{service_named('catalog').port + offset}/health"
    assert catalog_health in health and "no answer" in health, health
    assert "smoke: 0 passed," in output.rstrip().splitlines()[-1]


def test_json_summary_lists_every_step(platform: RunningPlatform, capsys: pytest.CaptureFixture[str]) -> None:
    code = smoke.main(["--port-offset", str(platform.offset), "--json", *credentials(platform)])
    summary = json.loads(capsys.readouterr().out)
    assert code == 0, summary
    assert summary["ok"] is True and summary["passed"] == len(smoke.STEPS) and summary["failed"] == 0
    assert [step["name"] for step in summary["steps"]] == list(smoke.STEPS)
    assert all(step["outcome"] == "pass" and step["detail"] and step["seconds"] >= 0 for step in summary["steps"])
    assert summary["targets"]["orders"] == platform.url("orders")


@pytest.mark.parametrize("argv", [
    ["--service-url", "nonsense"],
    ["--service-url", "warehouse=http://localhost:3009"],
    ["--service-url", "orders=ftp://localhost"],
    ["--base-url", "http://gateway", "--port-offset", "5"],
    ["--timeout", "0"],
])
def test_bad_arguments_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert smoke.main(argv) == 2
    assert "error" in capsys.readouterr().err


def test_without_tokens_or_a_local_issuer_it_refuses_to_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("FUSION_STATE_DIR", str(tmp_path))
    monkeypatch.delenv("SMOKE_STAFF_TOKEN", raising=False)
    assert smoke.main(["--base-url", "https://shop.example"]) == 2
    assert "--staff-token" in capsys.readouterr().err


def test_service_urls_gateway_then_overrides() -> None:
    urls = smoke.service_urls("https://api.example/", None, {"payments": "http://payments.internal/"})
    assert urls["catalog"] == urls["orders"] == "https://api.example"
    assert urls["payments"] == "http://payments.internal"
    assert smoke.service_urls()["shipping"] == "http://127.0.0.1:3005"
    assert smoke.service_urls(port_offset=200)["catalog"] == "http://127.0.0.1:3200"
