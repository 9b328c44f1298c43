"""The Knative Kafka data plane's delivery contract, in one place for the local router and its tests.

2xx with an empty body = done; 2xx carrying a CloudEvent = done, and the event is a reply to
publish; 2xx with any other body = failed, dead-lettered at once; 5xx, 404, 408, 409, 429 and
network errors or timeouts = retried; any other status = dead-lettered at once.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

from fusion.binding import Event, InvalidEvent, from_http

RETRIED_STATUSES = frozenset({404, 408, 409, 429})


class Verdict(Enum):
    DONE = "done"
    REPLY = "reply"
    RETRY = "retry"
    DEAD = "dead"


@dataclass(frozen=True)
class Attempt:
    status: int | None  # None: no response (connection refused, timeout)
    headers: Mapping[str, str]
    body: bytes
    error: str | None = None


def _carries_event(headers: Mapping[str, str]) -> bool:
    lowered = {name.lower(): value for name, value in headers.items()}
    return "ce-specversion" in lowered or lowered.get("content-type", "").startswith("application/cloudevents")


def judge(attempt: Attempt) -> Verdict:
    status = attempt.status
    if status is None or status >= 500 or status in RETRIED_STATUSES:
        return Verdict.RETRY
    if 200 <= status < 300:
        if not attempt.body and not _carries_event(attempt.headers):
            return Verdict.DONE
        return Verdict.REPLY if reply_event(attempt) is not None else Verdict.DEAD
    return Verdict.DEAD


def reply_event(attempt: Attempt) -> Event | None:
    if not _carries_event(attempt.headers):
        return None
    try:
        return from_http(attempt.headers, attempt.body)
    except InvalidEvent:
        return None


def dead_letter(event: Event, destination: str, attempt: Attempt | None) -> Event:
    """The event as Knative dead-letters it: the original plus `knativeerror*` extensions."""
    extra = {"knativeerrordest": destination}
    if attempt is not None and attempt.status is not None:
        extra["knativeerrorcode"] = str(attempt.status)
    if attempt is not None and attempt.body:
        extra["knativeerrordata"] = base64.b64encode(attempt.body[:1024]).decode()
    return event.with_attributes(**extra)
