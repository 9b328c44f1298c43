"""Operations HTTP API for the staff console: the platform's status, the dead letters, their replay."""

from __future__ import annotations

from typing import Annotated, Any

import flask

from functions.operations import flow
from functions.operations.flow import DeadLetter, Replay
from functions.operations.store import SERVICE
from fusion.auth import caller, staff
from fusion.declare import command, query
from fusion.topics import TOPICS
from fusion.uow import UnitOfWork, reading
from fusion.web import (
    Instant,
    View,
    answer,
    choice_param,
    count_param,
    one_of,
    parse_body,
    query_choice,
    query_int,
    utc_now,
)

OPERATIONS = staff("operations:manage")
HEALTH = ("ok", "failing", "unknown")


class ServiceHealth(View):
    """A process of the platform: a service, the outbox relay or the event router."""

    name: str
    health: Annotated[str, one_of(HEALTH)]


class HandlerStatus(View):
    """An event handler: how many events wait for it, and how many it dead-lettered since the router started."""

    name: str
    service: str
    topics: list[str]
    lag: float | None  # None: not known (the router's figures did not answer, or no event yet)
    dead_lettered: float


class OutboxStatus(View):
    """A service's outbox: events written but not yet published, and the age of the oldest."""

    schema_name: str
    waiting: float
    oldest_age_seconds: float


class StatusView(View):
    """The platform at a glance."""

    source: str
    checked_at: Instant
    services: list[ServiceHealth]
    handlers: list[HandlerStatus]
    outbox: list[OutboxStatus]
    unavailable: list[str]  # what could not be read, e.g. the router's figures while it restarts


class DeadLetterView(View):
    """An event that failed its last delivery and waits on `<topic>.dlq`."""

    topic: str
    dlq_topic: str
    partition: int
    offset: int
    id: str
    type: str
    source: str
    subject: str | None
    time: str | None
    error_code: str | None  # the status the handler last answered
    error_destination: str | None  # the handler it was delivered to
    data: Any
    replayed_at: Instant | None


class ReplayView(View):
    """The dead letters published again to their topic."""

    topic: str
    replayed: list[str]


def _health(status: flow.Status, name: str) -> str:
    known = status.snapshot.health.get(name)
    return "unknown" if known is None else "ok" if known else "failing"


def status_view(status: flow.Status) -> StatusView:
    snapshot = status.snapshot
    return StatusView(
        source=status.source,
        checked_at=utc_now(),
        services=[ServiceHealth(name=name, health=_health(status, name)) for name in flow.process_names()],
        handlers=[HandlerStatus(name=spec.name, service=spec.service, topics=list(spec.topics),
                                lag=snapshot.lag.get(spec.name),
                                dead_lettered=snapshot.dead_letters.get(spec.name, 0.0))
                  for spec in status.handlers],
        outbox=[OutboxStatus(schema_name=schema, waiting=waiting, oldest_age_seconds=oldest)
                for schema, (waiting, oldest) in sorted(snapshot.outbox.items())],
        unavailable=status.unavailable,
    )


def dead_letter_view(letter: DeadLetter) -> DeadLetterView:
    event = letter.event
    return DeadLetterView(topic=letter.topic, dlq_topic=TOPICS[letter.topic].dlq, partition=letter.partition,
                          offset=letter.offset, id=event.id, type=event.type, source=event.source,
                          subject=event.subject, time=event.attributes.get("time"), error_code=letter.error_code,
                          error_destination=letter.error_destination, data=letter.payload,
                          replayed_at=letter.replayed_at)


@query("get-operations-status", service=SERVICE, routes=["GET /operations/status"], auth=OPERATIONS,
       answers=StatusView)
def get_status(request: flask.Request, params: dict[str, str]) -> flask.Response:
    """Each service's health, each handler's consumer lag and dead letters, and the outbox backlog."""
    return answer(status_view(flow.platform_status()))


@query("list-dead-letters", service=SERVICE, routes=["GET /operations/dead-letters"], auth=OPERATIONS,
       params=[choice_param("topic", flow.TOPIC_NAMES), count_param("limit", 1, flow.MAX_LISTED)],
       answers=list[DeadLetterView])
def list_dead_letters(request: flask.Request, params: dict[str, str]) -> flask.Response:
    """The events on the dead-letter topics, oldest first: of one event topic (topic=order.created), else of all."""
    name = query_choice(request, "topic", flow.TOPIC_NAMES)
    topics = [flow.event_topic(name)] if name else sorted(TOPICS)
    limit = query_int(request, "limit", 50, low=1, high=flow.MAX_LISTED)
    with reading(SERVICE) as uow:
        letters = flow.dead_letters(topics, limit, uow)
    return answer([dead_letter_view(letter) for letter in letters])


@command("replay-dead-letters", service=SERVICE, routes=["POST /operations/dead-letters/replay"], auth=OPERATIONS,
         body=Replay, answers=ReplayView)
def replay_dead_letters(request: flask.Request, params: dict[str, str], uow: UnitOfWork) -> flask.Response:
    """Publish dead letters again to their topic, as they were before they failed (what `fusion dlq replay`
    does, for the chosen events); the handlers' inboxes keep an event handled before from taking effect twice."""
    command_body = parse_body(request, Replay)
    events = flow.replay(command_body, caller().subject or "staff", uow)
    return answer(ReplayView(topic=flow.event_topic(command_body.topic), replayed=[event.id for event in events]))
