"""TCP ports on this machine: whether something listens, and waiting until it does."""

from __future__ import annotations

import socket

from fusion.waiting import wait_until

HOST = "127.0.0.1"  # every local service binds here only
POLL = 0.05


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_for_port(host: str, port: int, timeout: float) -> None:
    """Block until ``host:port`` accepts TCP connections; raise ``TimeoutError`` after ``timeout`` s."""
    wait_until(lambda: port_open(host, port), timeout, POLL, f"{host}:{port} accepting TCP connections")
