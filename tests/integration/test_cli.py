"""The `fusion` command against the real database: migrations up, status and down, the carrier helper."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from decimal import Decimal

import psycopg
import pytest
from flask.testing import FlaskClient

from fusion.binding import new_event, to_http
from fusion.cli import main
from fusion.contracts import PaymentSucceeded
from fusion.local.process import ManagedProcess
from fusion.migrate import PROJECT_ROOT
from fusion.registry import services
from fusion.uow import schema_of


def fusion(args: list[str], database_url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": database_url}
    return subprocess.run([sys.executable, "-m", "fusion.cli", *args], env=env, cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def empty_database(postgres: ManagedProcess) -> str:
    name = f"cli_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres.url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return postgres.url.rsplit("/", 1)[0] + "/" + name


def schemas(database_url: str) -> set[str]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT schema_name FROM information_schema.schemata").fetchall()
    return {row[0] for row in rows}


def test_migrate_up_status_and_down(empty_database: str) -> None:
    status = fusion(["migrate", "status"], empty_database)
    assert status.returncode == 0 and "behind" in status.stdout
    up = fusion(["migrate", "up"], empty_database)
    assert up.returncode == 0, up.stderr
    assert "behind" not in up.stdout and up.stdout.count("up to date") == len(services())  # a branch each
    assert {schema_of(service) for service in services()} <= schemas(empty_database)
    down = fusion(["migrate", "down", "catalog"], empty_database)  # one step: c0002 → c0001
    assert down.returncode == 0, down.stderr
    assert "catalog" in schemas(empty_database) and "behind (head c0002)" in down.stdout
    down = fusion(["migrate", "down", "catalog"], empty_database)  # and the first one
    assert down.returncode == 0, down.stderr
    assert "catalog" not in schemas(empty_database) and "orders" in schemas(empty_database)
    assert fusion(["migrate", "down"], empty_database).returncode == 2
    again = fusion(["migrate", "up"], empty_database)
    assert again.returncode == 0 and "catalog" in schemas(empty_database)


def test_a_bad_setting_stops_the_command_with_the_variable_named(empty_database: str) -> None:
    env = {**os.environ, "DATABASE_URL": empty_database, "LOG_LEVEL": "chatty"}
    result = subprocess.run([sys.executable, "-m", "fusion.cli", "migrate", "status"], env=env, cwd=PROJECT_ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "LOG_LEVEL" in result.stderr


def test_carrier_advance_moves_a_parcel_one_scan(
    client: Callable[[str], FlaskClient], capsys: pytest.CaptureFixture[str]
) -> None:
    shipping = client("shipping")
    order_id = str(uuid.uuid4())
    paid = PaymentSucceeded(payment_id=str(uuid.uuid4()), order_id=order_id, amount=Decimal("5"), currency="EUR")
    headers, body = to_http(new_event("payment.succeeded", "payments", order_id, paid))
    assert shipping.post("/_functions/ship-paid-order", headers=headers, data=body).status_code == 204
    tracking = shipping.get(f"/shipments?orderId={order_id}").get_json()[0]["trackingNumber"]
    assert main(["carrier", "advance", tracking]) == 0
    assert capsys.readouterr().out.strip() == f"{tracking}: in_transit"
    assert main(["carrier", "advance", tracking]) == 0
    assert shipping.get(f"/tracking/{tracking}").get_json()["status"] == "delivered"
    assert main(["carrier", "advance", "FC000000000"]) == 1
