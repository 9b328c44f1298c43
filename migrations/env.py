"""Alembic environment: one branch per service (its own schema), upgraded together with `heads`."""

from alembic import context
from sqlalchemy import create_engine, pool

from fusion.config import settings, to_sqlalchemy_url

url = context.config.get_main_option("sqlalchemy.url") or to_sqlalchemy_url(settings().database_url)


def run_migrations_offline() -> None:
    context.configure(url=url, literal_binds=True, version_table_schema="public")
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        # One lock at a time: two migration Jobs racing each other would both try to create tables.
        connection.exec_driver_sql("SELECT pg_advisory_lock(727274)")
        context.configure(connection=connection, version_table_schema="public", transaction_per_migration=True)
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()
        connection.exec_driver_sql("SELECT pg_advisory_unlock(727274)")
        connection.commit()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
