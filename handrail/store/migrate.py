"""Schema migrations from code: `handrail db upgrade` and the dev command call `upgrade`.

The Alembic scripts live in handrail/store/migrations (shipped inside the package), so an
installed Handrail can migrate its database without a checkout.
"""

from __future__ import annotations

from importlib.resources import files
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, pool
from sqlmodel import SQLModel

from . import models  # noqa: F401  (registers the tables on SQLModel.metadata)

MIGRATIONS_DIR = files("handrail.store") / "migrations"


class UnmanagedDatabase(RuntimeError):
    """Handrail's tables exist but the migrations never ran here (made by create_all?)."""


class SchemaDrift(RuntimeError):
    """The models and the migrations disagree: a revision is missing (or a model is wrong)."""

    def __init__(self, differences: list[Any]):
        self.differences = differences
        listed = "\n".join(f"  {difference}" for difference in differences)
        super().__init__(
            "the database built by the migrations differs from handrail/store/models.py; "
            f"write a revision (alembic revision --autogenerate):\n{listed}"
        )


def alembic_config(url: str | None = None) -> Config:
    config = Config(str(MIGRATIONS_DIR / "alembic.ini"))
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url:
        # Passed as an attribute, not an ini option: a password may hold '%' (ini interpolation).
        config.attributes["url"] = url
    return config


def _engine(url: str):
    return create_engine(url, poolclass=pool.NullPool)


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at `url` up to `revision` (the newest by default); safe to repeat."""
    engine = _engine(url)
    try:
        with engine.begin() as connection:
            _refuse_unmanaged(connection)
            config = alembic_config(url)
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
    finally:
        engine.dispose()


def _refuse_unmanaged(connection) -> None:
    if MigrationContext.configure(connection).get_current_revision() is not None:
        return
    ours = set(inspect(connection).get_table_names()) & set(SQLModel.metadata.tables)
    if ours:
        raise UnmanagedDatabase(
            f"the database already has Handrail tables ({', '.join(sorted(ours)[:3])} …) but no "
            "migration record; it was not made by `handrail db upgrade`. Use a fresh database, "
            "or, if its schema is exactly the current one, run `alembic stamp head` on it first."
        )


def downgrade(url: str, revision: str) -> None:
    engine = _engine(url)
    try:
        with engine.begin() as connection:
            config = alembic_config(url)
            config.attributes["connection"] = connection
            command.downgrade(config, revision)
    finally:
        engine.dispose()


def current(url: str) -> str | None:
    """The revision the database is at; None for a database never migrated."""
    engine = _engine(url)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def at_head(url: str) -> bool:
    """Cheap readiness check: the database has every migration of this code."""
    return current(url) == head()


def head() -> str:
    """The newest revision in the package."""
    revision = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if revision is None:  # pragma: no cover - the package always ships a revision
        raise RuntimeError("no migrations found in handrail/store/migrations/versions")
    return revision


def differences(url: str) -> list[Any]:
    """What autogenerate would write for the database at `url`; empty when it matches the models."""
    engine = _engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"compare_type": True, "compare_server_default": False}
            )
            return compare_metadata(context, SQLModel.metadata)
    finally:
        engine.dispose()


def check(url: str) -> None:
    """Raise SchemaDrift when the database at `url` and the models disagree."""
    found = differences(url)
    if found:
        raise SchemaDrift(found)
