"""The database: one small connection pool per process (psycopg 3), created on first use.

SQL is written with `:name` parameters. The pool hands out plain psycopg connections. Functions
use it instead of a SQLAlchemy engine because every function cold-starts: importing SQLAlchemy and
initialising its dialect took about 140 ms of a 430 ms start. SQLAlchemy stays for Alembic's
migrations, which run as a Job.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import lru_cache
from typing import Any, Protocol, TypeVar

import psycopg
from psycopg.pq import TransactionStatus
from psycopg.rows import namedtuple_row

from fusion.config import settings

T = TypeVar("T")
PING_AFTER_IDLE_SECONDS = 10.0
_PARAMETER = re.compile(r"(?<![:\w]):(\w+)")


class PoolExhausted(psycopg.OperationalError):
    """Every connection of the pool stayed busy for the whole wait."""


@lru_cache(maxsize=2048)
def _to_psycopg(sql: str) -> str:
    return _PARAMETER.sub(r"%(\1)s", sql.replace("%", "%%"))


class Scalars(list[Any]):
    def all(self) -> list[Any]:
        return list(self)


class Result:
    """The rows of one statement, read the way the call sites need them."""

    def __init__(self, cursor: psycopg.Cursor[Any]):
        self._cursor = cursor
        self.rowcount = cursor.rowcount

    def all(self) -> list[Any]:
        return self._cursor.fetchall() if self._cursor.description else []

    def first(self) -> Any:
        return self._cursor.fetchone() if self._cursor.description else None

    def one(self) -> Any:
        rows = self.all()
        if len(rows) != 1:
            raise LookupError(f"expected exactly one row, got {len(rows)}")
        return rows[0]

    def scalar(self) -> Any:
        row = self.first()
        return None if row is None else row[0]

    def scalar_one(self) -> Any:
        return self.one()[0]

    def scalars(self) -> Scalars:
        return Scalars(row[0] for row in self.all())

    def first_as(self, kind: type[T]) -> T | None:
        """The first row as `kind` (a dataclass or NamedTuple whose fields are the selected columns)."""
        row = self.first()
        return None if row is None else kind(**row._asdict())

    def all_as(self, kind: type[T]) -> list[T]:
        return [kind(**row._asdict()) for row in self.all()]

    def one_as(self, kind: type[T]) -> T:
        """The single row of a statement that always returns one (an upsert, an update of a known row)."""
        return kind(**self.one()._asdict())


class Sql(Protocol):
    """What a store's functions run their SQL on: a unit of work or a connection."""

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> Result: ...


class Connection:
    def __init__(self, raw: psycopg.Connection[Any]):
        self.raw = raw

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> Result:
        cursor = self.raw.cursor()
        if params:
            cursor.execute(_to_psycopg(sql), dict(params))
        else:
            cursor.execute(sql)
        return Result(cursor)

    def commit(self) -> None:
        self.raw.commit()


class Pool:
    def __init__(self, url: str, size: int):
        self.url = url
        self._idle: list[tuple[psycopg.Connection[Any], float]] = []
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(size)

    def _open(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.url, row_factory=namedtuple_row, connect_timeout=3,
                               application_name="fusioncommerce")

    def _reuse(self) -> psycopg.Connection[Any] | None:
        while True:
            with self._lock:
                if not self._idle:
                    return None
                raw, since = self._idle.pop()
            if raw.closed:
                continue
            if time.monotonic() - since < PING_AFTER_IDLE_SECONDS:
                return raw
            try:  # a connection idle for a while may have been closed by a database restart
                raw.execute("SELECT 1")
                raw.rollback()
                return raw
            except psycopg.Error:
                raw.close()

    def _checkout(self) -> psycopg.Connection[Any]:
        if not self._slots.acquire(timeout=30):
            raise PoolExhausted("no database connection became free within 30 s")
        try:
            return self._reuse() or self._open()
        except BaseException:
            self._slots.release()
            raise

    def _checkin(self, raw: psycopg.Connection[Any]) -> None:
        try:
            if raw.closed or raw.broken or raw.info.transaction_status != TransactionStatus.IDLE:
                raw.close()
            else:
                with self._lock:
                    self._idle.append((raw, time.monotonic()))
        finally:
            self._slots.release()

    @contextmanager
    def connect(self, snapshot: bool = False) -> Iterator[Connection]:
        """A connection for reads. Each statement runs on its own (autocommit): under READ COMMITTED a
        transaction would give every statement its own snapshot all the same, and costs a BEGIN and a
        ROLLBACK round trip. With `snapshot`, every statement of the block reads one moment (a REPEATABLE
        READ, READ ONLY transaction, rolled back when the block ends)."""
        raw = self._checkout()
        try:
            if snapshot:
                raw.isolation_level, raw.read_only = psycopg.IsolationLevel.REPEATABLE_READ, True
            else:
                raw.autocommit = True
            yield Connection(raw)
        finally:
            if not raw.closed:
                _quietly_roll_back(raw)
                _as_for_transactions(raw)
            self._checkin(raw)

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """A transaction: committed when the block ends normally, rolled back when it raises."""
        raw = self._checkout()
        try:
            yield Connection(raw)
            raw.commit()
        except BaseException:
            _quietly_roll_back(raw)
            raise
        finally:
            self._checkin(raw)

    def dispose(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for raw, _ in idle:
            raw.close()


def _as_for_transactions(raw: psycopg.Connection[Any]) -> None:
    """Back to what `Pool.begin` expects: transactions at the server's default isolation, read-write."""
    try:
        raw.autocommit, raw.isolation_level, raw.read_only = False, None, None
    except psycopg.Error:
        raw.close()


def _quietly_roll_back(raw: psycopg.Connection[Any]) -> None:
    try:
        raw.rollback()
    except psycopg.Error:
        raw.close()


_pool: Pool | None = None
_create = threading.Lock()


def pool() -> Pool:
    """The process's connection pool."""
    global _pool
    if _pool is None:
        with _create:
            if _pool is None:
                config = settings()
                _pool = Pool(config.libpq_url, config.db_pool_size * 2)
    return _pool


def reset_pool() -> None:
    """Drop the pool (tests that switch databases)."""
    global _pool
    with _create:
        if _pool is not None:
            _pool.dispose()
        _pool = None


def database_reachable() -> bool:
    try:
        with pool().connect() as conn:
            conn.execute("SELECT 1")
        return True
    except psycopg.Error:
        return False
