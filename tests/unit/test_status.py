"""`fusion status`'s screen, drawn from a canned snapshot."""

from __future__ import annotations

from fusion.observe import Figures, Snapshot
from fusion.registry import services
from fusion.status import render


def test_the_screen_has_a_row_per_service_handler_and_outbox() -> None:
    snapshot = Snapshot(10, services={"orders": Figures(50, 1, 0.0123)},
                        health={**{name: True for name in services()}, "payments": False, "relay": True},
                        lag={"reserve-stock": 12}, dead_letters={"reserve-stock": 2}, outbox={"orders": (3, 1.5)})
    lines = render(snapshot, "canned").splitlines()
    rows: dict[str, list[str]] = {}
    for line in lines[2:]:
        if line.strip():
            rows.setdefault(line.split()[0], line.split())  # the first: the orders schema comes last
    assert rows["orders"][1:] == ["ok", "5.0", "2.0%", "12", "ms"]
    assert rows["payments"][1] == "FAILING"
    assert rows["relay"][1] == "ok" and "router" not in rows  # not scraped, not shown
    assert rows["reserve-stock"][1:] == ["12", "2"]
    assert set(services()) <= set(rows)
    assert lines[-1].split() == ["orders", "3", "2s"]


def test_a_platform_that_does_not_answer_says_so() -> None:
    screen = render(Snapshot(2, health={name: False for name in services()}), "canned")
    assert "nothing answered" in screen
