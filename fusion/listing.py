"""Filtered, paged collections: how every `GET /<things>` builds its query (bounded pages, indexed filters)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import flask

from fusion.db import pool
from fusion.web import query_int

PAGE_SIZE = 50
MAX_PAGE_SIZE = 200


@dataclass
class Listing:
    table: str
    columns: str
    order_by: str
    page_size: int = PAGE_SIZE
    max_page_size: int = MAX_PAGE_SIZE
    clauses: list[str] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)

    def where(self, clause: str, **values: Any) -> None:
        """Add a condition (its named parameters with it); conditions are ANDed."""
        self.clauses.append(clause)
        self.values.update(values)

    def statement(self, request: flask.Request) -> tuple[str, dict[str, Any]]:
        """The SQL and parameters of the page `limit`/`offset` of the request ask for (400 when out of range)."""
        limit = query_int(request, "limit", self.page_size, low=1, high=self.max_page_size)
        offset = query_int(request, "offset", 0, low=0)
        where = (" WHERE " + " AND ".join(self.clauses)) if self.clauses else ""
        sql = f"SELECT {self.columns} FROM {self.table}{where} ORDER BY {self.order_by} LIMIT :limit OFFSET :offset"
        return sql, {**self.values, "limit": limit, "offset": offset}

    def fetch(self, request: flask.Request) -> Sequence[Any]:
        sql, values = self.statement(request)
        with pool().connect() as conn:
            return conn.execute(sql, values).all()
