"""Operations use cases: the platform's status, the dead letters on a topic, and their replay.

The status comes from the same figures `fusion status` shows (fusion.observe): each process's /health and
/metrics on the local platform (or where FUSION_SERVICE_URL_TEMPLATE says, in Compose), or a Prometheus
(OPERATIONS_PROMETHEUS_URL, its series narrowed to this environment's by OPERATIONS_PROMETHEUS_SELECTOR) in the
cluster.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from confluent_kafka import KafkaException
from pydantic import Field

from functions.operations import store
from fusion import dlq
from fusion.binding import Event
from fusion.errors import Invalid, NotFound, Refused, Unavailable
from fusion.local.ports import METRICS_PORTS
from fusion.observe import Prometheus, Snapshot, SourceUnavailable, from_scrapes, local_targets, scrape, service_health
from fusion.registry import FunctionSpec, load_all, services
from fusion.topics import DLQ_SUFFIX, TOPICS
from fusion.uow import UnitOfWork
from fusion.web import Body

MAX_LISTED = 500
MAX_REPLAYED = 500


@dataclass(frozen=True)
class Status:
    snapshot: Snapshot
    handlers: list[FunctionSpec]
    source: str
    unavailable: list[str]  # what could not be read, said plainly


def platform_status() -> Status:
    """Health of every service and part, each handler's lag and dead letters, the outbox backlog."""
    handlers = sorted((spec for spec in declarations() if spec.kind == "cloudevent"), key=lambda s: s.name)
    prometheus = os.environ.get("OPERATIONS_PROMETHEUS_URL", "").strip()
    if prometheus:
        selector = os.environ.get("OPERATIONS_PROMETHEUS_SELECTOR", "").strip()
        try:
            snapshot = Prometheus(prometheus, selector).backlog()
        except SourceUnavailable as exc:
            return Status(Snapshot(window=0.0), handlers, f"Prometheus {prometheus}", [str(exc)])
        return Status(service_health(snapshot), handlers, f"Prometheus {prometheus}", [])
    now = scrape(local_targets(os.environ.get("FUSION_SERVICE_URL_TEMPLATE", "").strip() or None))
    snapshot = from_scrapes([], now.samples, 0.0, now.health)
    missing = [f"the {part}'s /metrics did not answer: {_figures_of(part)} unavailable"
               for part in METRICS_PORTS if not now.health.get(part)]
    return Status(snapshot, handlers, "local platform", missing)


@functools.cache
def declarations() -> list[FunctionSpec]:
    """Every function of the registry, as the platform's parts read it (the router, the gateway), read once."""
    return list(load_all().values())


def process_names() -> list[str]:
    """Every process the status lists: the services, then the outbox relay and the event router."""
    declarations()
    return [*services(), *METRICS_PORTS]


def _figures_of(part: str) -> str:
    return "consumer lag and dead-letter counts are" if part == "router" else "the outbox backlog is"


# What a caller may name: an event topic, or its dead-letter topic.
TOPIC_NAMES = tuple(sorted(name for topic in TOPICS.values() for name in (topic.name, topic.dlq)))


def event_topic(name: str, field: str = "topic") -> str:
    """The event topic a name means (`order.created` or `order.created.dlq`); 400 for an unknown one."""
    base = name.strip().removesuffix(DLQ_SUFFIX)
    if base not in TOPICS:
        raise Invalid(field, f"must be an event topic such as order.created, got {name!r}")
    return base


@dataclass(frozen=True)
class DeadLetter:
    topic: str
    partition: int
    offset: int
    event: Event
    replayed_at: datetime | None

    @property
    def error_code(self) -> str | None:
        return self.event.attributes.get("knativeerrorcode")

    @property
    def error_destination(self) -> str | None:
        return self.event.attributes.get("knativeerrordest")

    @property
    def payload(self) -> object:
        try:
            return self.event.json()
        except (ValueError, TypeError):
            return None


def dead_letters(topics: list[str], limit: int, uow: UnitOfWork) -> list[DeadLetter]:
    """The dead letters on the topics' .dlq topics, oldest first per topic, at most `limit` in all (a .dlq
    topic not created yet holds none)."""
    try:
        letters = dlq.stored([TOPICS[name].dlq for name in topics], limit)
    except (KafkaException, RuntimeError) as exc:
        raise Unavailable(f"the broker did not answer for the dead-letter topics: {exc}") from None
    named = [(letter.topic.removesuffix(DLQ_SUFFIX), letter) for letter in letters]
    replayed = store.last_replays(uow, [(name, letter.event.id) for name, letter in named])
    return [DeadLetter(name, letter.partition, letter.offset, letter.event, replayed.get((name, letter.event.id)))
            for name, letter in named]


class Replay(Body):
    """Dead letters to publish again to their topic, by CloudEvent id."""

    topic: str = Field(min_length=1, max_length=200, json_schema_extra={"enum": list(TOPIC_NAMES)})
    event_ids: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(min_length=1,
                                                                                max_length=MAX_REPLAYED)


def replay(command: Replay, by: str, uow: UnitOfWork) -> list[Event]:
    """Publish the dead letters again to their topic, as they were before they failed, and record who did."""
    name = event_topic(command.topic)
    wanted = set(command.event_ids)
    try:
        events = dlq.replay_events(name, wanted)
    except dlq.NotDeadLettered as exc:
        raise NotFound(f"dead letter on {exc.dlq_topic}:", ", ".join(exc.missing)) from None
    except dlq.SearchLimitReached as exc:
        raise Refused(f"{exc}; replay the older ones first (`fusion dlq replay {name}` replays them all)",
                      code="replay_search_limit") from None
    except (KafkaException, RuntimeError) as exc:
        raise Unavailable(f"the broker did not take the replay to {name}: {exc}") from None
    store.record_replays(uow, name, [event.id for event in events], by)
    return events
