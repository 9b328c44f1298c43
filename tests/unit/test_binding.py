"""CloudEvents binding: HTTP (binary, structured, v1.0, v0.3) and Kafka records."""

from __future__ import annotations

import json

import pytest
from cloudevent_cases import Case, all_cases

from fusion.binding import InvalidEvent, from_http, from_kafka, new_event, to_http, to_kafka, to_structured
from fusion.contracts import OrderFailed


@pytest.mark.parametrize("case", all_cases(), ids=lambda c: c.name)
def test_conformance_cases_parse_to_their_attributes_and_data(case: Case) -> None:
    event = from_http(case.headers, case.body)
    for name, value in case.attributes.items():
        assert event.attributes[name] == value
    if (event.content_type or "").startswith("application/json") or "+json" in (case.headers.get("Content-Type")
                                                                                  or ""):
        assert event.json() == json.loads(case.data)
    else:
        assert event.data == case.data


def test_percent_encoded_header_values_are_decoded() -> None:
    event = from_http({"ce-specversion": "1.0", "ce-id": "1", "ce-source": "/s", "ce-type": "t",
                       "ce-subject": "Hello%20%F0%9F%8C%8E"}, b"")
    assert event.subject == "Hello 🌎"


@pytest.mark.parametrize(
    ("headers", "body", "problem"),
    [
        ({"Content-Type": "application/json"}, b"{}", "not a CloudEvent"),
        ({"ce-specversion": "1.0", "ce-source": "/s", "ce-type": "t"}, b"", "missing"),
        ({"ce-specversion": "2.0", "ce-id": "1", "ce-source": "/s", "ce-type": "t"}, b"", "specversion"),
        ({"Content-Type": "application/cloudevents-batch+json"}, b"[]", "batched"),
        ({"Content-Type": "application/cloudevents+json"}, b"{oops", "not JSON"),
        ({"Content-Type": "application/cloudevents+json"}, b"[1]", "JSON object"),
    ],
)
def test_malformed_requests_are_refused_with_a_reason(headers: dict[str, str], body: bytes, problem: str) -> None:
    with pytest.raises(InvalidEvent, match=problem):
        from_http(headers, body)


def sample() -> OrderFailed:
    return OrderFailed(order_id="o-1", customer_id="c-1", reason="out of stock")


def test_new_event_follows_the_catalogue() -> None:
    event = new_event("order.failed", "orders", "o-1", sample(), traceparent="00-abc-def-01")
    assert event.type == "com.fusioncommerce.order.failed"
    assert event.source == "/fusioncommerce/orders"
    assert event.subject == event.partition_key == "o-1"
    assert event.attributes["traceparent"] == "00-abc-def-01"
    assert event.json() == {"orderId": "o-1", "customerId": "c-1", "reason": "out of stock"}


def test_kafka_round_trip_is_binary_mode_with_the_partition_key_as_record_key() -> None:
    event = new_event("order.failed", "orders", "o-1", sample())
    headers, key, value = to_kafka(event)
    assert key == b"o-1"
    names = [name for name, _ in headers]
    assert "ce_specversion" in names and "ce_partitionkey" in names and "content-type" in names
    assert from_kafka(value, headers) == event


def test_structured_kafka_records_are_read_too() -> None:
    event = new_event("order.failed", "orders", "o-1", sample())
    structured = json.dumps(to_structured(event)).encode()
    again = from_kafka(structured, [("content-type", b"application/cloudevents+json")])
    assert again.id == event.id and again.json() == event.json()


def test_http_round_trip() -> None:
    event = new_event("order.failed", "orders", "o/1 ü", sample())
    headers, body = to_http(event)
    assert headers["Content-Type"] == "application/json"
    assert from_http(headers, body) == event


def test_binary_data_survives_structured_form() -> None:
    event = from_http({"ce-specversion": "1.0", "ce-id": "1", "ce-source": "/s", "ce-type": "t",
                       "Content-Type": "application/octet-stream"}, b"\x00\xff")
    assert from_kafka(json.dumps(to_structured(event)).encode(),
                      [("content-type", b"application/cloudevents+json")]).data == b"\x00\xff"
