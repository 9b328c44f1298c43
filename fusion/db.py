"""One SQLAlchemy engine (and connection pool) per process, created on first use."""

from __future__ import annotations

import threading

from sqlalchemy import Engine, create_engine, text

from fusion.config import settings

_engine: Engine | None = None
_lock = threading.Lock()


def engine() -> Engine:
    global _engine
    if _engine is None:
        with _lock:
            if _engine is None:
                config = settings()
                _engine = create_engine(
                    config.sqlalchemy_url,
                    pool_size=config.db_pool_size,
                    max_overflow=config.db_pool_size,
                    pool_pre_ping=True,
                    pool_recycle=1800,
                    connect_args={"connect_timeout": 3, "application_name": "fusioncommerce"},
                )
    return _engine


def reset_engine() -> None:
    """Drop the pool (tests that switch databases, and forked workers)."""
    global _engine
    with _lock:
        if _engine is not None:
            _engine.dispose()
        _engine = None


def database_reachable() -> bool:
    try:
        with engine().connect() as conn:
            conn.execute(text("SELECT 1"))
        return True
    except Exception:
        return False
