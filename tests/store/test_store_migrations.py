"""The migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, inspect, pool, text
from sqlmodel import SQLModel

from handrail.store import migrate


def _tables(url: str) -> set[str]:
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_builds_the_models_schema_with_no_difference_and_repeats_safely(store_url):
    assert migrate.current(store_url) is None

    migrate.upgrade(store_url)
    migrate.upgrade(store_url)  # the dev command runs it at every start

    assert migrate.current(store_url) == migrate.head() and migrate.at_head(store_url)
    assert migrate.differences(store_url) == []
    migrate.check(store_url)
    assert {"transition", "task", "outboxmessage", "auditevent", "apitoken"} <= _tables(store_url)


def test_check_names_what_the_database_lacks(store_url):
    migrate.upgrade(store_url)
    engine = create_engine(store_url, poolclass=pool.NullPool)
    with engine.begin() as connection:
        connection.execute(text("DROP INDEX ix_task_owner_id"))
    engine.dispose()

    with pytest.raises(migrate.SchemaDrift, match="ix_task_owner_id"):
        migrate.check(store_url)


def test_downgrade_to_base_removes_the_tables_and_upgrade_restores_them(store_url):
    migrate.upgrade(store_url)

    migrate.downgrade(store_url, "base")
    assert migrate.current(store_url) is None
    assert _tables(store_url) <= {"alembic_version"}

    migrate.upgrade(store_url)
    assert migrate.differences(store_url) == []


def test_a_database_built_without_the_migrations_is_refused_clearly(store_url):
    engine = create_engine(store_url, poolclass=pool.NullPool)
    SQLModel.metadata.create_all(engine)
    engine.dispose()

    assert not migrate.at_head(store_url)
    with pytest.raises(migrate.UnmanagedDatabase, match="no migration record"):
        migrate.upgrade(store_url)
