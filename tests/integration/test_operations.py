"""The operations API for the staff console, against a real broker and a real PostgreSQL: who may call it,
the platform's status, and dead letters listed and replayed to their topic."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from flask.testing import FlaskClient
from support import ServedOverHttp, Tokens

from fusion import config, dlq
from fusion.binding import Event, from_kafka, new_event
from fusion.contracts import InventoryReleased, StockLine
from fusion.kafka import consumer, ensure_topics, produce, producer
from fusion.local.process import ManagedProcess
from fusion.registry import service_named, services
from fusion.topics import all_topic_names
from fusion.waiting import wait_until

Clients = Callable[..., FlaskClient]
TOPIC = "inventory.released"
STAFF_SCOPE = "operations:manage"


@pytest.fixture
def operations(client: Clients, broker: ManagedProcess, tokens: Tokens,
               monkeypatch: pytest.MonkeyPatch) -> FlaskClient:
    monkeypatch.setenv("KAFKA_BROKERS", broker.url)
    config.settings.cache_clear()
    ensure_topics(broker.url, all_topic_names())
    return client("operations", token=tokens.staff(STAFF_SCOPE))


def _dead_letter(broker: str) -> Event:
    """An event the router gave up on, on the topic's .dlq, with the error attributes Knative adds."""
    subject = f"order-{uuid.uuid4()}"
    event = new_event(TOPIC, "inventory", subject, InventoryReleased(order_id=subject, items=[
        StockLine(sku="SKU-1", quantity=1)], reason="test"))
    failed = event.with_attributes(knativeerrorcode="500", knativeerrordest="http://orders/_functions/fail-order")
    kafka = producer(broker)
    produce(kafka, TOPIC + ".dlq", failed)
    assert kafka.flush(10) == 0
    return event


def _read_until(broker: str, topic: str, event_id: str) -> list[Event]:
    """The events on `topic` from its start up to the one with this id (the topic has one partition)."""
    reader = consumer(broker, f"operations-test-{uuid.uuid4()}")
    reader.subscribe([topic])
    seen: list[Event] = []
    try:
        def found() -> bool:
            message = reader.poll(0.5)
            if message is not None and not message.error():
                seen.append(from_kafka(message.value(), message.headers()))
            return bool(seen) and seen[-1].id == event_id

        wait_until(found, 30, 0, f"{event_id} on {topic}")
        return seen
    finally:
        reader.close()


@pytest.mark.parametrize("path", ["/operations/status", "/operations/dead-letters"])
def test_only_staff_with_operations_manage_may_look(client: Clients, tokens: Tokens, path: str) -> None:
    assert client("operations", token=None).get(path).status_code == 401
    assert client("operations", token=tokens.customer("alice")).get(path).status_code == 403
    assert client("operations", token=tokens.staff("catalog:write", "orders:manage")).get(path).status_code == 403
    refused = client("operations", token=tokens.customer("alice")).post(
        "/operations/dead-letters/replay", json={"topic": TOPIC, "eventIds": ["x"]})
    assert refused.status_code == 403


def test_the_status_lists_every_service_and_part(operations: FlaskClient, monkeypatch: pytest.MonkeyPatch) -> None:
    import functions_framework

    catalog = ServedOverHttp(functions_framework.create_app("serve", service_named("catalog").source))
    try:
        # The ports the status reads are the shifted ones: the catalog's is where it is served here.
        monkeypatch.setenv("FUSION_PORT_OFFSET", str(catalog.port - service_named("catalog").port))
        answer = operations.get("/operations/status")
    finally:
        catalog.stop()
    assert answer.status_code == 200, answer.get_json()
    status = answer.get_json()
    health = {row["name"]: row["health"] for row in status["services"]}
    assert list(health) == [*services(), "relay", "router"]
    assert health["catalog"] == "ok" and health["shipping"] == "failing"
    handlers = {row["name"]: row for row in status["handlers"]}
    assert "reserve-stock" in handlers and handlers["reserve-stock"]["service"] == "inventory"
    assert handlers["reserve-stock"]["lag"] is None  # the router is not running here, and the status says so
    assert any("router" in line and "lag" in line for line in status["unavailable"])


def test_a_dead_letter_is_listed_and_replayed_to_its_topic(operations: FlaskClient, broker: ManagedProcess) -> None:
    event = _dead_letter(broker.url)
    listed = operations.get(f"/operations/dead-letters?topic={TOPIC}&limit=500")
    assert listed.status_code == 200, listed.get_json()
    letter = next(row for row in listed.get_json() if row["id"] == event.id)
    assert letter["dlqTopic"] == TOPIC + ".dlq" and letter["errorCode"] == "500"
    assert letter["data"]["orderId"] == event.subject and letter["replayedAt"] is None

    replayed = operations.post("/operations/dead-letters/replay", json={"topic": TOPIC, "eventIds": [event.id]})
    assert replayed.status_code == 200, replayed.get_json()
    assert replayed.get_json() == {"topic": TOPIC, "replayed": [event.id]}
    back = _read_until(broker.url, TOPIC, event.id)[-1]
    assert back.data == event.data and "knativeerrorcode" not in back.attributes

    again = operations.get(f"/operations/dead-letters?topic={TOPIC}.dlq&limit=500").get_json()
    assert next(row for row in again if row["id"] == event.id)["replayedAt"] is not None


def test_a_replay_naming_an_unknown_dead_letter_publishes_nothing(operations: FlaskClient,
                                                                   broker: ManagedProcess) -> None:
    event = _dead_letter(broker.url)
    missing = str(uuid.uuid4())
    answer = operations.post("/operations/dead-letters/replay", json={"topic": TOPIC, "eventIds": [event.id, missing]})
    assert answer.status_code == 404 and missing in answer.get_json()["message"]
    sentinel = _dead_letter(broker.url)
    assert operations.post("/operations/dead-letters/replay",
                           json={"topic": TOPIC, "eventIds": [sentinel.id]}).status_code == 200
    assert event.id not in [seen.id for seen in _read_until(broker.url, TOPIC, sentinel.id)]


def test_the_dead_letters_of_every_topic_are_listed_at_once(operations: FlaskClient, broker: ManagedProcess) -> None:
    event = _dead_letter(broker.url)
    listed = operations.get("/operations/dead-letters?limit=500")
    assert listed.status_code == 200, listed.get_json()
    assert event.id in [row["id"] for row in listed.get_json() if row["topic"] == TOPIC]


def test_a_dead_letter_topic_not_created_yet_holds_none(operations: FlaskClient, broker: ManagedProcess) -> None:
    event = _dead_letter(broker.url)
    letters = dlq.stored([f"never.created.{uuid.uuid4()}.dlq", TOPIC + ".dlq"], 500)
    assert event.id in [letter.event.id for letter in letters]
    assert {letter.topic for letter in letters} == {TOPIC + ".dlq"}


def test_the_limit_keeps_the_oldest_dead_letters(operations: FlaskClient, broker: ManagedProcess) -> None:
    _dead_letter(broker.url)
    _dead_letter(broker.url)
    every = dlq.stored([TOPIC + ".dlq"])
    assert len(every) >= 2
    assert dlq.stored([TOPIC + ".dlq"], 1) == every[:1]


def test_a_replay_beyond_the_letters_it_reads_says_so(operations: FlaskClient, broker: ManagedProcess,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    _dead_letter(broker.url)
    newest = _dead_letter(broker.url)
    monkeypatch.setattr(dlq, "REPLAY_SEARCH_LIMIT", 1)
    answer = operations.post("/operations/dead-letters/replay", json={"topic": TOPIC, "eventIds": [newest.id]})
    assert answer.status_code == 422, answer.get_json()
    assert "oldest 1 dead letters" in answer.get_json()["message"] and newest.id in answer.get_json()["message"]


@pytest.mark.parametrize(("body", "field"), [
    ({"topic": "no.such.topic", "eventIds": ["x"]}, "topic"),
    ({"topic": TOPIC, "eventIds": []}, "eventIds"),
    ({"eventIds": ["x"]}, "topic"),
])
def test_a_bad_replay_request_names_the_field(operations: FlaskClient, body: dict[str, object], field: str) -> None:
    answer = operations.post("/operations/dead-letters/replay", json=body)
    assert answer.status_code == 400 and answer.get_json()["field"] == field, answer.get_json()


def test_an_unknown_topic_is_a_400(operations: FlaskClient) -> None:
    answer = operations.get("/operations/dead-letters?topic=nothing")
    assert answer.status_code == 400 and answer.get_json()["field"] == "topic"
