"""CloudEvents 1.0 and their two wire forms here: Kafka records and HTTP requests.

Kafka records are written in binary content mode (`ce_*` headers, record key = `partitionkey`)
so Knative's KafkaSource passes them through unchanged. HTTP requests are read in binary or
structured mode, CloudEvents 1.0 or 0.3; they are written in binary mode, as the Knative Kafka
dispatcher does.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple
from urllib.parse import quote, unquote

from fusion.contracts import Contract
from fusion.topics import topic

SPEC_VERSIONS = ("1.0", "0.3")
REQUIRED = ("id", "source", "type", "specversion")
JSON_TYPE = "application/json"
STRUCTURED_PREFIX = "application/cloudevents"
BATCH_TYPE = "application/cloudevents-batch+json"


KafkaHeaders = dict[str, str | bytes | None] | list[tuple[str, str | bytes | None]] | None


class InvalidEvent(ValueError):
    """A message that is not a CloudEvent this platform can read."""


@dataclass(frozen=True)
class Event:
    attributes: Mapping[str, str]
    data: bytes | None = None

    @property
    def id(self) -> str:
        return self.attributes["id"]

    @property
    def source(self) -> str:
        return self.attributes["source"]

    @property
    def type(self) -> str:
        return self.attributes["type"]

    @property
    def subject(self) -> str | None:
        return self.attributes.get("subject")

    @property
    def partition_key(self) -> str | None:
        return self.attributes.get("partitionkey")

    @property
    def content_type(self) -> str | None:
        return self.attributes.get("datacontenttype")

    def json(self) -> Any:
        """The data parsed as JSON."""
        try:
            return json.loads(self.data) if self.data else None
        except ValueError as exc:
            raise InvalidEvent(f"event data is not JSON: {exc}") from None
        except RecursionError:
            raise InvalidEvent("event data is nested too deeply") from None

    def with_attributes(self, **extra: str) -> Event:
        return Event({**self.attributes, **extra}, self.data)


def now_iso() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def new_event(
    topic_name: str,
    service: str,
    subject: str,
    payload: Contract,
    *,
    partition_key: str | None = None,
    traceparent: str | None = None,
) -> Event:
    """A new event of the catalogue: type and source derived from the topic and service."""
    attributes = {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": f"/fusioncommerce/{service}",
        "type": topic(topic_name).type,
        "subject": subject,
        "time": now_iso(),
        "datacontenttype": JSON_TYPE,
        "partitionkey": partition_key or subject,
    }
    if traceparent:
        attributes["traceparent"] = traceparent
    return Event(attributes, json.dumps(payload.to_json(), separators=(",", ":")).encode())


def _checked(attributes: dict[str, str], data: bytes | None) -> Event:
    missing = [name for name in REQUIRED if not attributes.get(name)]
    if missing:
        raise InvalidEvent(f"missing CloudEvents attribute(s): {', '.join(missing)}")
    if attributes["specversion"] not in SPEC_VERSIONS:
        raise InvalidEvent(f"unsupported specversion {attributes['specversion']!r}")
    return Event(attributes, data)


# Kafka (binary content mode)


class KafkaMessage(NamedTuple):
    """The parts of the Kafka record that carries an event."""

    headers: list[tuple[str, str | bytes | None]]
    key: bytes | None
    value: bytes | None


def to_kafka(event: Event) -> KafkaMessage:
    headers: list[tuple[str, str | bytes | None]] = [
        ("content-type" if name == "datacontenttype" else f"ce_{name}", value.encode())
        for name, value in event.attributes.items()
    ]
    key = event.partition_key
    return KafkaMessage(headers, key.encode() if key else None, event.data)


def _text(raw: str | bytes | None) -> str:
    return raw.decode() if isinstance(raw, bytes) else (raw or "")


def from_kafka(value: bytes | None, headers: KafkaHeaders) -> Event:
    items = headers.items() if isinstance(headers, dict) else (headers or ())
    pairs = {name.lower(): _text(raw) for name, raw in items}
    content_type = pairs.get("content-type", "")
    if content_type.startswith(STRUCTURED_PREFIX):
        return from_structured(value or b"")
    attributes = {name[3:]: v for name, v in pairs.items() if name.startswith("ce_")}
    if content_type:
        attributes["datacontenttype"] = content_type
    return _checked(attributes, value)


# HTTP


def to_http(event: Event) -> tuple[dict[str, str], bytes]:
    """(headers, body) of a binary-mode HTTP request; values percent-encoded as the binding asks."""
    headers = {
        ("Content-Type" if name == "datacontenttype" else f"ce-{name}"): quote(value, safe=" !#$&'()*+,/:;=?@[]~")
        for name, value in event.attributes.items()
    }
    return headers, event.data or b""


def from_http(headers: Mapping[str, str], body: bytes) -> Event:
    lowered = {name.lower(): value.strip() for name, value in headers.items() if value.strip()}
    content_type = lowered.get("content-type", "")
    if content_type.startswith(BATCH_TYPE):
        raise InvalidEvent("batched CloudEvents are not accepted; send one event per request")
    if content_type.startswith(STRUCTURED_PREFIX):
        return from_structured(body)
    attributes = {name[3:]: unquote(value) for name, value in lowered.items() if name.startswith("ce-")}
    if not attributes:
        raise InvalidEvent("not a CloudEvent: no ce-* headers and not application/cloudevents+json")
    if content_type:
        attributes["datacontenttype"] = content_type
    return _checked(attributes, body or None)


def from_structured(body: bytes) -> Event:
    try:
        envelope = json.loads(body)
    except ValueError as exc:
        raise InvalidEvent(f"structured CloudEvent is not JSON: {exc}") from None
    except RecursionError:
        raise InvalidEvent("structured CloudEvent is nested too deeply") from None
    if not isinstance(envelope, dict):
        raise InvalidEvent("structured CloudEvent must be a JSON object")
    data: bytes | None = None
    if "data_base64" in envelope:
        data = base64.b64decode(envelope.pop("data_base64"))
    elif "data" in envelope:
        raw = envelope.pop("data")
        if envelope.get("datacontentencoding") == "base64" and isinstance(raw, str):
            data = base64.b64decode(raw)
        elif isinstance(raw, str) and not str(envelope.get("datacontenttype", JSON_TYPE)).endswith("json"):
            data = raw.encode()
        else:
            data = json.dumps(raw, separators=(",", ":")).encode()
    attributes = {name: v if isinstance(v, str) else json.dumps(v) for name, v in envelope.items()}
    return _checked(attributes, data)


def to_structured(event: Event) -> dict[str, Any]:
    """The JSON event format of `event` (structured content mode)."""
    envelope: dict[str, Any] = dict(event.attributes)
    if event.data is not None:
        try:
            envelope["data"] = json.loads(event.data)
        except ValueError:
            envelope["data_base64"] = base64.b64encode(event.data).decode()
    return envelope
