"""Operations' table: which dead letters staff replayed, when and who (the topics keep the letters themselves)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from fusion.uow import UnitOfWork

SERVICE = "operations"


def record_replays(uow: UnitOfWork, topic: str, event_ids: Iterable[str], by: str) -> None:
    uow.execute(
        "INSERT INTO operations.replays (topic, event_id, replayed_by) "
        "SELECT :topic, unnest(CAST(:ids AS text[])), :by",
        {"topic": topic, "ids": list(event_ids), "by": by},
    )


def last_replays(uow: UnitOfWork, letters: Iterable[tuple[str, str]]) -> dict[tuple[str, str], datetime]:
    """When each of these dead letters, (topic, event id), was last replayed (those never replayed are left out)."""
    pairs = list(letters)
    if not pairs:
        return {}
    rows = uow.execute(
        "SELECT r.topic, r.event_id, max(r.replayed_at) AS replayed_at FROM operations.replays r "
        "JOIN unnest(CAST(:topics AS text[]), CAST(:ids AS text[])) AS wanted(topic, event_id) "
        "ON r.topic = wanted.topic AND r.event_id = wanted.event_id GROUP BY r.topic, r.event_id",
        {"topics": [topic for topic, _ in pairs], "ids": [event_id for _, event_id in pairs]},
    ).all()
    return {(row.topic, row.event_id): row.replayed_at for row in rows}
