"""A router with wake-ups pauses its quiet consumers and resumes them when a publisher names their topics."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from support import free_port
from test_router import TOPIC, handler_spec, released, send, subscriber, topics, wait_for  # noqa: F401

from fusion import router as router_module
from fusion.config import ConfigError
from fusion.registry import Delivery
from fusion.router import Router
from fusion.wakeup import WakeListener, WakeSender, wake_address


@pytest.fixture
def waking_router(topics: str, subscriber: Any,  # noqa: F811 (the fixtures imported above)
                  monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Router, Any, str]]:
    sub, url = subscriber
    monkeypatch.setattr(router_module, "QUIET_AFTER", 0.2)
    address = ("127.0.0.1", free_port())
    router = Router([handler_spec(Delivery(retries=0))], topics, base_url=lambda _spec: url, wake_address=address)
    router.start()
    assert router.wait_until_assigned(30)
    yield router, sub, f"{address[0]}:{address[1]}"
    router.close()


def paused(router: Router) -> bool:
    return all(handler.paused for handler in router.consumers)


def test_a_quiet_consumer_pauses_and_a_wake_up_delivers_at_once(waking_router: Any,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    router, sub, address = waking_router
    monkeypatch.setattr(router_module, "behind", lambda _places, _ends: False)  # only the wake-up resumes it
    wait_for(lambda: paused(router))
    event = send(router.restorer.brokers, released(f"woken-{uuid.uuid4()}"))
    WakeSender(wake_address({"FUSION_ROUTER_WAKE_ADDRESS": address})).published([TOPIC])
    wait_for(lambda: sub.ids(event.subject) == [event.id], timeout=30)
    wait_for(lambda: paused(router))  # and quiet again after it


def test_a_record_nobody_announced_is_delivered_once_the_watcher_sees_the_partition_grow(
    waking_router: Any,
) -> None:
    router, sub, _ = waking_router
    wait_for(lambda: paused(router))
    event = send(router.restorer.brokers, released(f"unannounced-{uuid.uuid4()}"))
    wait_for(lambda: sub.ids(event.subject) == [event.id], timeout=30)
    wait_for(lambda: paused(router))


def test_a_parked_place_is_behind_only_when_the_partition_holds_more() -> None:
    assert not router_module.behind({("t", 0): 5}, {("t", 0): 5})
    assert router_module.behind({("t", 0): 5}, {("t", 0): 6})
    assert not router_module.behind({("t", 0): -2}, {("t", 0): 0})  # from the start of an empty partition
    assert router_module.behind({("t", 0): -2}, {("t", 0): 1})
    assert not router_module.behind({("t", 1): 3}, {})  # an end not read yet wakes nobody


def test_a_wake_up_for_other_topics_leaves_the_consumer_paused(waking_router: Any) -> None:
    router, _, address = waking_router
    wait_for(lambda: paused(router))
    handler = router.consumers[0]
    WakeSender(wake_address({"FUSION_ROUTER_WAKE_ADDRESS": address})).published(["orders.created"])
    assert not handler.woken.wait(1.0)
    assert handler.paused


def test_the_wake_address_is_host_and_port() -> None:
    assert wake_address({}) is None
    assert wake_address({"FUSION_ROUTER_WAKE_ADDRESS": "127.0.0.1:3011"}) == ("127.0.0.1", 3011)
    with pytest.raises(ConfigError, match="must be host:port"):
        wake_address({"FUSION_ROUTER_WAKE_ADDRESS": "3011"})


def test_the_listener_hears_the_topics_sent() -> None:
    heard: list[list[str]] = []
    stop = threading.Event()
    listener = WakeListener(("127.0.0.1", 0), heard.append, stop)
    listener.start()
    try:
        WakeSender(("127.0.0.1", listener.port)).published(["b.topic", "a.topic", "a.topic"])
        wait_for(lambda: heard == [["a.topic", "b.topic"]])
    finally:
        stop.set()
        listener.join(5)


def test_records_around_every_pause_are_each_delivered_once(waking_router: Any) -> None:
    """Records sent as the consumer goes quiet, pauses and resumes: none is skipped, none delivered twice."""
    router, sub, address = waking_router
    waker = WakeSender(wake_address({"FUSION_ROUTER_WAKE_ADDRESS": address}))
    sent = []
    for n in range(24):
        sent.append(send(router.restorer.brokers, released(f"around-{n}-{uuid.uuid4()}")))
        if n % 4:
            waker.published([TOPIC])  # every fourth record is announced by nobody
        threading.Event().wait(0.1 + (n % 3) * 0.1)  # around QUIET_AFTER: some sends meet a paused consumer
    wait_for(lambda: all(sub.ids(event.subject) for event in sent), timeout=60)
    assert [sub.ids(event.subject) for event in sent] == [[event.id] for event in sent]
