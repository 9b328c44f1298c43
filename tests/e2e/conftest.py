"""One running platform for the end-to-end tests: `fusion dev` on shifted ports, with its own
database (in the session's PostgreSQL) and its own broker, which a test may stop and restart."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from platform_runner import RunningPlatform, start_platform
from support import free_port

from fusion.local.infra import ManagedProcess, start_broker
from fusion.migrate import upgrade

E2E_OFFSET = 200


@pytest.fixture(scope="session")
def e2e_database(postgres: ManagedProcess) -> str:
    name = f"e2e_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres.url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    url = postgres.url.rsplit("/", 1)[0] + "/" + name
    upgrade(url)
    return url


@pytest.fixture(scope="session")
def e2e_broker_port() -> int:
    return free_port()


@pytest.fixture(scope="session")
def e2e_broker(e2e_broker_port: int, infra_dir: Path) -> Iterator[list[ManagedProcess]]:
    """A broker the tests may stop and start again on the same port (the list holds the live one)."""
    holder = [start_broker(e2e_broker_port, log_file=infra_dir / "e2e-broker.log")]
    yield holder
    holder[0].stop()


@pytest.fixture(scope="session")
def e2e_stripe_url() -> str:
    """Where the platform's localstripe listens (the platform starts it)."""
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture(scope="session")
def platform(
    e2e_database: str, e2e_broker: list[ManagedProcess], e2e_stripe_url: str, infra_dir: Path
) -> Iterator[RunningPlatform]:
    env = {
        "DATABASE_URL": e2e_database,
        "KAFKA_BROKERS": e2e_broker[0].url,
        "FUSION_STATE_DIR": str(infra_dir / "e2e-state"),
        "FUSION_STRIPE_PORT": e2e_stripe_url.rsplit(":", 1)[1],
        # empty: the platform starts its own localstripe, whatever other tests left in the environment
        "STRIPE_SECRET_KEY": "", "STRIPE_API_BASE": "", "STRIPE_WEBHOOK_SECRET": "", "STRIPE_AUTO_CONFIRM": "",
        "LOG_LEVEL": "info",
        "ORDER_HOLD_SECONDS": "6",
        "FUSION_SCHEDULE_INTERVAL": "1",
    }
    running = start_platform(env, E2E_OFFSET, infra_dir / "e2e-platform.out")
    yield running
    assert running.stop() == 0
