"""The event catalogue: one Kafka topic per event type, with the original topic registry's figures."""

from __future__ import annotations

from dataclasses import dataclass

TYPE_PREFIX = "com.fusioncommerce."
DLQ_SUFFIX = ".dlq"


@dataclass(frozen=True)
class Topic:
    name: str
    producer: str  # the service that publishes it
    key: str  # what the partition key (record key and `partitionkey`) is
    retention_days: int
    partitions: int  # production partition count; development uses 1
    notification: bool = False  # delivered to n8n as well

    @property
    def type(self) -> str:
        return TYPE_PREFIX + self.name

    @property
    def dlq(self) -> str:
        return self.name + DLQ_SUFFIX


def _t(name: str, producer: str, key: str, days: int, parts: int, notify: bool = False) -> Topic:
    return Topic(name, producer, key, days, parts, notify)


TOPICS: dict[str, Topic] = {
    t.name: t
    for t in (
        _t("product.created", "catalog", "product id", 30, 6),
        _t("product.updated", "catalog", "product id", 30, 6),
        _t("order.created", "orders", "order id", 7, 12),
        _t("order.confirmed", "orders", "order id", 7, 12, notify=True),
        _t("order.failed", "orders", "order id", 7, 6),
        _t("order.cancelled", "orders", "order id", 7, 6),
        _t("order.expired", "orders", "order id", 7, 6),
        _t("inventory.reserved", "inventory", "order id", 7, 12),
        _t("inventory.insufficient", "inventory", "order id", 7, 6),
        _t("inventory.released", "inventory", "order id", 7, 6),
        _t("inventory.campaign.held", "inventory", "campaign id", 30, 6),
        _t("inventory.campaign.refused", "inventory", "campaign id", 30, 6),
        _t("group-commerce.campaign.created", "group-commerce", "campaign id", 30, 6),
        _t("group-commerce.campaign.joined", "group-commerce", "campaign id", 7, 6),
        _t("group-commerce.campaign.successful", "group-commerce", "campaign id", 30, 6, notify=True),
        _t("group-commerce.campaign.expired", "group-commerce", "campaign id", 30, 6, notify=True),
        _t("group-commerce.campaign.closed", "group-commerce", "campaign id", 30, 6),
        _t("group-commerce.seat.held", "group-commerce", "campaign id", 30, 6),
        _t("group-commerce.seat.confirmed", "group-commerce", "campaign id", 30, 6),
        _t("group-commerce.seat.released", "group-commerce", "campaign id", 30, 6),
        _t("payment.created", "payments", "order id", 90, 12),
        _t("payment.succeeded", "payments", "order id", 90, 12),
        _t("payment.failed", "payments", "order id", 90, 12, notify=True),
        _t("payment.refunded", "payments", "order id", 90, 12),
        _t("payment.seat.authorized", "payments", "campaign id", 90, 6),
        _t("payment.seat.declined", "payments", "campaign id", 90, 6),
        _t("payment.seat.captured", "payments", "campaign id", 90, 6),
        _t("payment.seat.capture-failed", "payments", "campaign id", 90, 6),
        _t("payment.seat.refunded", "payments", "campaign id", 90, 6),
        _t("shipping.label.created", "shipping", "order id", 30, 6, notify=True),
        _t("shipping.delivered", "shipping", "order id", 30, 6),
    )
}

PING_TYPE = "dev.knative.sources.ping"


def ping_source_address(namespace: str, name: str) -> str:
    """The `source` attribute of a PingSource's events (what its Trigger filters on)."""
    return f"/apis/v1/namespaces/{namespace}/pingsources/{name}"


class UnknownTopic(KeyError):
    pass


def topic(name: str) -> Topic:
    try:
        return TOPICS[name]
    except KeyError:
        raise UnknownTopic(name) from None


def topic_for_type(event_type: str) -> Topic:
    if not event_type.startswith(TYPE_PREFIX):
        raise UnknownTopic(event_type)
    return topic(event_type[len(TYPE_PREFIX) :])


def all_topic_names() -> list[str]:
    """Every topic the platform needs, dead-letter topics included."""
    return [name for t in TOPICS.values() for name in (t.name, t.dlq)]
