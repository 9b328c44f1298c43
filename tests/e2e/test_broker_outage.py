"""The broker goes away and comes back: orders placed meanwhile complete with no manual step.

This runs on a platform of its own: the memory-only broker forgets its topics and consumer
groups when it restarts, which the other end-to-end tests should not have to live with."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from platform_runner import RunningPlatform, eventually, launch, new_database
from support import free_port
from test_backbone import PAST_CONFIRMED, new_product, order_status, place, stock

from fusion.local.broker import start_broker
from fusion.local.process import ManagedProcess

OFFSET = 250


@pytest.fixture(scope="module")
def outage(postgres: ManagedProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningPlatform,
                                                                                                 list[ManagedProcess]]]:
    folder = tmp_path_factory.mktemp("outage")
    broker = [start_broker(free_port(), log_file=folder / "broker.log")]
    running = launch(new_database(postgres), broker[0].url, folder / "state", OFFSET, folder / "platform.out",
                     FUSION_STRIPE_PORT=str(free_port()))
    yield running, broker
    assert running.stop() == 0
    broker[0].stop()


def test_orders_placed_while_the_broker_is_down_complete_when_it_is_back(
    outage: tuple[RunningPlatform, list[ManagedProcess]], tmp_path: Path
) -> None:
    platform, broker = outage
    product = new_product(platform, inventory=20)
    port = int(broker[0].url.rsplit(":", 1)[1])
    broker[0].stop()
    try:
        placed = [place(platform, product["sku"], 1, 10.0) for _ in range(3)]
        assert all(status == 201 for status, _ in placed)
        assert all(order_status(platform, order["id"]) == "created" for _, order in placed)
    finally:
        broker[0] = start_broker(port, log_file=tmp_path / "broker-again.log")
    for _, order in placed:
        assert eventually(lambda o=order: order_status(platform, o["id"]), lambda s: s in PAST_CONFIRMED,
                          timeout=60) in PAST_CONFIRMED
    assert stock(platform, product["sku"])["available"] == 17


def test_after_the_outage_every_handler_is_back(outage: tuple[RunningPlatform, list[ManagedProcess]]) -> None:
    platform, _ = outage
    product = new_product(platform, inventory=5)
    _, order = place(platform, product["sku"], 1, 10.0)
    assert eventually(lambda: order_status(platform, order["id"]), lambda s: s == "shipped", timeout=60) == "shipped"
