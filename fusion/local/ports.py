"""TCP ports on this machine: whether something listens, and waiting until it does."""

from __future__ import annotations

import os
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


def port_free(port: int, host: str = HOST) -> bool:
    """Whether a server could listen on ``host:port`` now."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def any_free_port(host: str = HOST) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def holder_of(port: int) -> str:
    """Which process listens on ``port``, as far as the OS tells (process name and pid)."""
    import psutil

    try:
        for connection in psutil.net_connections(kind="tcp"):
            if connection.laddr and connection.laddr.port == port and connection.status == psutil.CONN_LISTEN:
                if connection.pid is None:
                    return "a process the OS does not name"
                try:
                    return f"{psutil.Process(connection.pid).name()} (pid {connection.pid})"
                except psutil.Error:
                    return f"pid {connection.pid}"
    except psutil.Error:
        pass
    return "another process"


# The relay's and the router's /metrics, beside the function ports (3000-3005) and shifted with them.
METRICS_PORTS = {"relay": 3010, "router": 3011}


def metrics_port(part: str) -> int:
    """Where `fusion dev` serves the /metrics of "relay" or "router" (FUSION_PORT_OFFSET applies)."""
    return METRICS_PORTS[part] + int(os.environ.get("FUSION_PORT_OFFSET", "0") or 0)


def gateway_port() -> int:
    """Where `fusion dev` serves the gateway, the one origin of the pages and the API (FUSION_PORT_OFFSET
    applies)."""
    from fusion.config import LOCAL_GATEWAY_PORT

    return LOCAL_GATEWAY_PORT + int(os.environ.get("FUSION_PORT_OFFSET", "0") or 0)
