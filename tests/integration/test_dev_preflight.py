"""`fusion dev` on a laptop where ports are already taken, its log excerpts, and `fusion reset`."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from support import free_port

from fusion import cli
from fusion.config import LOCAL_GATEWAY_PORT
from fusion.local.platform import Ports, last_lines

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def listening(port: int) -> Iterator[socket.socket]:
    """Another program holding a port (as a front-end dev server holds 3000)."""
    holder = socket.socket()
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        holder.bind(("127.0.0.1", port))
    except OSError:
        holder.close()
        pytest.skip(f"port {port} is held by something else on this machine")
    holder.listen()
    try:
        yield holder
    finally:
        holder.close()


def _offset_of_a_free_catalog_port() -> int:
    """An offset that puts the catalog on a free port and keeps the highest port (the gateway's) below 65536."""
    while (port := free_port()) + (LOCAL_GATEWAY_PORT - 3000) > 65535:
        continue
    return port - 3000


def test_a_taken_function_port_stops_fusion_dev_before_anything_starts(tmp_path: Path) -> None:
    offset = _offset_of_a_free_catalog_port()
    state = tmp_path / "state"
    with listening(3000 + offset):
        started = time.monotonic()
        result = subprocess.run(
            [sys.executable, "-m", "fusion.cli", "dev"], cwd=ROOT, capture_output=True, text=True, timeout=60,
            env={**os.environ, "FUSION_PORT_OFFSET": str(offset), "FUSION_STATE_DIR": str(state),
                 "DATABASE_URL": "", "KAFKA_BROKERS": "", "STRIPE_SECRET_KEY": "", "OIDC_ISSUER": ""})
        seconds = time.monotonic() - started
    print(f"refused in {seconds:.1f} s")
    assert result.returncode == 1
    message = result.stderr
    assert f"port {3000 + offset} (catalog) is taken by" in message and "FUSION_PORT_OFFSET" in message
    assert f"(pid {os.getpid()})" in message, "the holder is named with its pid"
    assert not (state / "postgres").exists(), "nothing was started"


def test_an_offset_that_puts_a_port_beyond_65535_is_refused_before_anything_starts(tmp_path: Path) -> None:
    state = tmp_path / "state"
    result = subprocess.run(
        [sys.executable, "-m", "fusion.cli", "dev"], cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={**os.environ, "FUSION_PORT_OFFSET": "60000", "FUSION_STATE_DIR": str(state),
             "DATABASE_URL": "", "KAFKA_BROKERS": "", "STRIPE_SECRET_KEY": "", "OIDC_ISSUER": ""})
    assert result.returncode == 1
    assert "FUSION_PORT_OFFSET=60000 puts gateway on 68000, outside 1-65535" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (state / "postgres").exists(), "nothing was started"


def test_taken_defaults_of_the_embedded_services_move_to_free_ports() -> None:
    with listening(5432), listening(9092):
        ports = Ports.plan({})
    assert ports.postgres != 5432 and ports.broker != 9092
    assert "port 5432 is taken by" in ports.moved["postgres"] and "FUSION_PG_PORT" in ports.moved["postgres"]
    assert "broker" in ports.moved


def test_a_port_chosen_by_its_variable_is_kept_and_replaced_parts_need_none() -> None:
    chosen = free_port()
    ports = Ports.plan({"FUSION_PG_PORT": str(chosen), "KAFKA_BROKERS": "redpanda:9092"})
    assert ports.postgres == chosen and "postgres" not in ports.moved and "broker" not in ports.moved


def test_a_failed_child_shows_whole_lines_of_its_log_with_retries_folded(tmp_path: Path) -> None:
    log = tmp_path / "catalog.log"
    retries = "[ERROR] Retrying in 1 second.\n" * 40
    log.write_text("booting\n" + retries + "[ERROR] Can't connect to ('127.0.0.1', 3000)\n")
    excerpt = last_lines(log)
    assert "  booting" in excerpt and "(the line above 39 more times)" in excerpt
    assert excerpt.rstrip().endswith("[ERROR] Can't connect to ('127.0.0.1', 3000)")


def test_reset_removes_the_state_and_asks_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    state = tmp_path / "state"
    (state / "logs").mkdir(parents=True)
    monkeypatch.setenv("FUSION_STATE_DIR", str(state))
    monkeypatch.setattr(sys.stdin, "isatty", lambda: False)
    assert cli.main(["reset"]) == 2 and state.exists(), "without a terminal it needs --yes"
    assert cli.main(["reset", "--yes"]) == 0 and not state.exists()
    assert "next fusion dev starts fresh" in capsys.readouterr().out
    assert cli.main(["reset", "--yes"]) == 0
