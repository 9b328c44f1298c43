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


def last_replays(uow: UnitOfWork, topic: str, event_ids: Iterable[str]) -> dict[str, datetime]:
    """When each of these dead letters of `topic` was last replayed (those never replayed are left out)."""
    rows = uow.execute(
        "SELECT event_id, max(replayed_at) AS replayed_at FROM operations.replays "
        "WHERE topic = :topic AND event_id = ANY(CAST(:ids AS text[])) GROUP BY event_id",
        {"topic": topic, "ids": list(event_ids)},
    ).all()
    return {row.event_id: row.replayed_at for row in rows}
