"""One running platform for the end-to-end tests: `fusion dev` on shifted ports, with its own
database (in the session's PostgreSQL) and its own broker."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from otlp_receiver import OtlpReceiver
from platform_runner import RunningPlatform, launch, new_database
from support import free_port

from fusion.local.broker import start_broker
from fusion.local.process import ManagedProcess

E2E_OFFSET = 200


@pytest.fixture(scope="session")
def e2e_database(postgres: ManagedProcess) -> str:
    return new_database(postgres)


@pytest.fixture(scope="session")
def e2e_broker(infra_dir: Path) -> Iterator[ManagedProcess]:
    broker = start_broker(free_port(), log_file=infra_dir / "e2e-broker.log")
    yield broker
    broker.stop()


@pytest.fixture(scope="session")
def e2e_stripe_url() -> str:
    """Where the platform's localstripe listens (the platform starts it)."""
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture(scope="session")
def otlp() -> Iterator[OtlpReceiver]:
    """Where the platform exports its traces (OTEL_EXPORTER_OTLP_ENDPOINT)."""
    receiver = OtlpReceiver(free_port()).start()
    yield receiver
    receiver.stop()


@pytest.fixture(scope="session")
def platform(
    e2e_database: str, e2e_broker: ManagedProcess, e2e_stripe_url: str, infra_dir: Path, otlp: OtlpReceiver
) -> Iterator[RunningPlatform]:
    running = launch(e2e_database, e2e_broker.url, infra_dir / "e2e-state", E2E_OFFSET,
                     infra_dir / "e2e-platform.out", FUSION_STRIPE_PORT=e2e_stripe_url.rsplit(":", 1)[1],
                     ORDER_HOLD_SECONDS="6", FUSION_SCHEDULE_INTERVAL="1", OTEL_EXPORTER_OTLP_ENDPOINT=otlp.endpoint)
    yield running
    assert running.stop() == 0
