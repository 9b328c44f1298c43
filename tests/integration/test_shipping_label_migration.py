"""Shipping's migration s0003 on a real database: labels stored before it keep their document, a label
stored without one keeps what printing it needs, and going back refuses while a label is not printed."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest
from sqlalchemy.exc import DBAPIError

from fusion.local.process import ManagedProcess
from fusion.migrate import downgrade, upgrade


@pytest.fixture
def shipping_at_s0002(postgres: ManagedProcess) -> str:
    """A database of its own with shipping's tables as they were before s0003."""
    name = f"labels_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres.url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    url = postgres.url.rsplit("/", 1)[0] + "/" + name
    upgrade(url, "shipping@s0002")
    return url


def run(url: str, sql: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        cursor = conn.execute(sql, params)
        return cursor.fetchall() if cursor.description else []


def add_shipment(url: str) -> uuid.UUID:
    shipment_id = uuid.uuid4()
    run(url, "INSERT INTO shipping.shipments (id, order_id, carrier, tracking_number, status, label_url, recipient) "
             "VALUES (%(id)s, %(id)s, 'fusion-offline', %(id)s, 'label_created', 'http://label', 'Customer')",
        {"id": shipment_id})
    return shipment_id


def labels(url: str) -> dict[uuid.UUID, tuple[Any, ...]]:
    rows = run(url, "SELECT shipment_id, document, sender FROM shipping.labels")
    return {row[0]: row[1:] for row in rows}


def test_labels_stored_before_keep_their_document_and_may_now_wait_to_be_printed(shipping_at_s0002: str) -> None:
    url = shipping_at_s0002
    printed = add_shipment(url)
    run(url, "INSERT INTO shipping.labels (shipment_id, content_type, document) "
             "VALUES (%(id)s, 'application/pdf', '%%PDF-printed')", {"id": printed})

    upgrade(url, "shipping@s0003")
    unprinted = add_shipment(url)
    run(url, "INSERT INTO shipping.labels (shipment_id, content_type, sender) "
             "VALUES (%(id)s, 'application/pdf', ARRAY['Shop Ltd', 'Leeds'])", {"id": unprinted})

    assert labels(url) == {printed: (b"%PDF-printed", None), unprinted: (None, ["Shop Ltd", "Leeds"])}
    with pytest.raises(psycopg.errors.CheckViolation):  # neither a document nor what printing one needs
        run(url, "INSERT INTO shipping.labels (shipment_id, content_type) VALUES (%(id)s, 'application/pdf')",
            {"id": add_shipment(url)})


def test_going_back_refuses_while_a_label_is_not_printed_and_keeps_every_document(shipping_at_s0002: str) -> None:
    url = shipping_at_s0002
    upgrade(url, "shipping@s0003")
    shipment = add_shipment(url)
    run(url, "INSERT INTO shipping.labels (shipment_id, content_type, sender) "
             "VALUES (%(id)s, 'application/pdf', ARRAY['Shop Ltd'])", {"id": shipment})

    with pytest.raises(DBAPIError, match=r"shipping labels not printed yet \(document IS NULL\): 1"):
        downgrade("shipping@s0002", url)
    assert labels(url) == {shipment: (None, ["Shop Ltd"])}  # nothing changed

    run(url, "UPDATE shipping.labels SET document = '%%PDF-printed' WHERE shipment_id = %(id)s", {"id": shipment})
    downgrade("shipping@s0002", url)
    assert run(url, "SELECT document FROM shipping.labels") == [(b"%PDF-printed",)]
    with pytest.raises(psycopg.errors.NotNullViolation):  # the document is required again
        run(url, "INSERT INTO shipping.labels (shipment_id, content_type) VALUES (%(id)s, 'application/pdf')",
            {"id": add_shipment(url)})
