"""Database migrations (Alembic, one branch per service), as `fusion migrate` and the pre-deploy Job run them."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, pool

from fusion.config import settings, to_sqlalchemy_url

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def alembic_config(database_url: str | None = None) -> Config:
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("sqlalchemy.url", to_sqlalchemy_url(database_url or settings().database_url))
    return config


def upgrade(database_url: str | None = None, target: str = "heads") -> None:
    command.upgrade(alembic_config(database_url), target)


def upgrade_each_service(database_url: str | None = None) -> None:
    """Every service's branch to its head, one after the other, with a progress line."""
    from fusion.progress import Progress

    behind = [branch for branch, current, head in status(database_url) if current != head]
    with Progress("migrations", len(behind)) as progress:
        for branch in behind:
            command.upgrade(alembic_config(database_url), f"{branch}@head")
            progress.advance()


def downgrade(target: str, database_url: str | None = None) -> None:
    """Downgrade to `target`: a revision, `<service>@-1` (one step of one service) or `base`."""
    command.downgrade(alembic_config(database_url), target)


def status(database_url: str | None = None) -> list[tuple[str, str | None, str]]:
    """(service branch, applied revision or None, head revision) for every service."""
    config = alembic_config(database_url)
    script = ScriptDirectory.from_config(config)
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "", poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            applied = set(MigrationContext.configure(conn, opts={"version_table_schema": "public"}).get_current_heads())
    finally:
        engine.dispose()
    rows = []
    for head in sorted(script.get_revisions("heads"), key=lambda r: sorted(r.branch_labels or {""})[0]):
        branch = sorted(head.branch_labels or {head.revision})[0]
        current = next(
            (rev.revision for rev in script.iterate_revisions(head.revision, "base") if rev.revision in applied),
            None,
        )
        rows.append((branch, current, head.revision))
    return rows
