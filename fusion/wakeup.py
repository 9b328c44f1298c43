"""Wake-ups from the publishers to the local router: which topics just received records.

The embedded broker does not always answer a waiting fetch when a record arrives, so the router's
consumers fetch with a short wait, and twenty-odd consumers fetching forty times a second keep a core
busy while nobody shops. With FUSION_ROUTER_WAKE_ADDRESS set the router pauses a consumer whose topics
went quiet, and whoever publishes sends it one datagram naming the topics once the broker acknowledged
the records: the relay after each batch, `fusion dlq replay`, the router itself after its replies. The
consumers of those topics resume at once. A wake-up lost costs latency, never an event: the router's
topic watcher reads the ends of all partitions every few seconds, and a paused consumer behind one resumes.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable, Iterable

from fusion.config import ConfigError

log = logging.getLogger("fusion.wakeup")

WAKE_ADDRESS = "FUSION_ROUTER_WAKE_ADDRESS"
MAX_DATAGRAM = 8192


def wake_address(env: dict[str, str] | None = None) -> tuple[str, int] | None:
    """FUSION_ROUTER_WAKE_ADDRESS as (host, port); None when unset: the router never pauses."""
    value = (os.environ if env is None else env).get(WAKE_ADDRESS, "").strip()
    if not value:
        return None
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"{WAKE_ADDRESS} must be host:port, got {value!r}")
    return host, int(port)


class WakeSender:
    """Sends the router the names of topics that received records; silent when no address is set."""

    def __init__(self, address: tuple[str, int] | None):
        self.address = address
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM) if address else None

    def published(self, topics: Iterable[str]) -> None:
        names = sorted(set(topics))
        if self.sock is None or self.address is None or not names:
            return
        try:
            self.sock.sendto("\n".join(names).encode()[:MAX_DATAGRAM], self.address)
        except OSError as exc:  # the router is down or restarting: it reads everything when it is back
            log.debug("router not woken: %s", exc)


_sender: WakeSender | None = None


def sender() -> WakeSender:
    """This process's sender, from FUSION_ROUTER_WAKE_ADDRESS."""
    global _sender
    if _sender is None:
        _sender = WakeSender(wake_address())
    return _sender


class WakeListener:
    """The router's end: calls `woken` with the topic names of every datagram, in a thread of its own."""

    def __init__(self, address: tuple[str, int], woken: Callable[[list[str]], None], stop: threading.Event):
        self.woken = woken
        self.stop = stop
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(address)
        self.sock.settimeout(0.5)  # to notice `stop`
        self.thread = threading.Thread(target=self._listen, name="wake-listener", daemon=True)

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    def start(self) -> None:
        self.thread.start()

    def join(self, timeout: float) -> None:
        self.thread.join(timeout)
        self.sock.close()

    def _listen(self) -> None:
        while not self.stop.is_set():
            try:
                datagram, _ = self.sock.recvfrom(MAX_DATAGRAM)
            except TimeoutError:
                continue
            except OSError:
                return
            self.woken([name for name in datagram.decode(errors="replace").split("\n") if name])
