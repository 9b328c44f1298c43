"""Filtered, paged collections: how every `GET /<things>` builds its query (bounded pages, indexed filters)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import flask

from fusion.db import Sql, T
from fusion.web import query_int

PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
MAX_OFFSET = 1_000_000  # deeper than any real browsing; keeps OFFSET within what PostgreSQL accepts


@dataclass(frozen=True)
class Page:
    limit: int
    offset: int


def page_of(request: flask.Request, size: int = PAGE_SIZE, most: int = MAX_PAGE_SIZE) -> Page:
    """The page `limit`/`offset` of the request ask for (400 when out of range)."""
    return Page(limit=query_int(request, "limit", size, low=1, high=most),
                offset=query_int(request, "offset", 0, low=0, high=MAX_OFFSET))


@dataclass
class Listing:
    table: str
    columns: str
    order_by: str
    key: str = "id"  # the table's unique column, which a deep page is found by
    clauses: list[str] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)

    def where(self, clause: str, **values: Any) -> None:
        """Add a condition (its named parameters with it); conditions are ANDed."""
        self.clauses.append(clause)
        self.values.update(values)

    def statement(self, page: Page) -> tuple[str, dict[str, Any]]:
        where = (" WHERE " + " AND ".join(self.clauses)) if self.clauses else ""
        values = {**self.values, "limit": page.limit, "offset": page.offset}
        if page.offset == 0:
            return f"SELECT {self.columns} FROM {self.table}{where} ORDER BY {self.order_by} LIMIT :limit", values
        # A deep page skips its offset on the keys alone (an index-only scan of the ordering index once the
        # table is vacuumed) and reads only its own rows: OFFSET over whole rows visits every skipped one.
        keys = f"SELECT {self.key} FROM {self.table}{where} ORDER BY {self.order_by} LIMIT :limit OFFSET :offset"
        return (f"SELECT {self.columns} FROM {self.table} JOIN ({keys}) AS page USING ({self.key}) "
                f"ORDER BY {self.order_by}"), values

    def fetch(self, db: Sql, page: Page, kind: type[T]) -> list[T]:
        """One page, as rows of `kind`."""
        sql, values = self.statement(page)
        return db.execute(sql, values).all_as(kind)
