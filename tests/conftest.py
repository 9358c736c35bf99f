"""Shared fixtures: a store on SQLite and on PostgreSQL, migrated the way production is.

- `sqlite_url`: an empty SQLite file under the test's tmp_path.
- `postgres_url`: a fresh empty database `handrail_test_<random>` on the local PostgreSQL
  (HANDRAIL_TEST_PG_ADMIN_URL, default postgres@127.0.0.1:5432), dropped afterwards. Unreachable
  PostgreSQL skips the test, or fails it when the CI environment variable is set.
- `store_url`: both of the above, ids "sqlite" and "postgres" (the latter marked `postgres`).
- `engine` / `session`: a migrated, empty store on the same database kind as `store_url` (one
  `store_backend` parameter drives both). For speed the migrations run once per session: SQLite
  tests get a copy of a migrated file, PostgreSQL tests share one migrated database that is
  emptied before each test.
- `sqlite_engine`: SQLite only, migrated, for tests that need a store but not both databases.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session, SQLModel

from handrail.store import migrate
from handrail.store.db import make_engine

PG_ADMIN_URL = os.environ.get(
    "HANDRAIL_TEST_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)

_pg_unreachable_reason: list[str] = []  # filled once per session by _pg_admin_conninfo()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # A test asking for postgres_url directly needs PostgreSQL as much as store_url[postgres].
    for item in items:
        if "postgres_url" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.postgres)


def _pg_admin_conninfo() -> str:
    url = make_url(PG_ADMIN_URL)
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def _pg_connect() -> psycopg.Connection:
    return psycopg.connect(_pg_admin_conninfo(), autocommit=True, connect_timeout=3)


def _require_postgres() -> None:
    if not _pg_unreachable_reason:
        try:
            with _pg_connect() as connection:
                connection.execute("SELECT 1")
            _pg_unreachable_reason.append("")
        except psycopg.OperationalError as error:
            _pg_unreachable_reason.append(
                f"PostgreSQL unreachable at {make_url(PG_ADMIN_URL).render_as_string()}: "
                f"{str(error).strip().splitlines()[0]} (start it with `pg_ctlcluster "
                "--skip-systemctl-redirect <version> main start`)"
            )
    reason = _pg_unreachable_reason[0]
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set and {reason}", pytrace=False)
        pytest.skip(reason)


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'handrail.db'}"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    _require_postgres()
    name = f"handrail_test_{secrets.token_hex(6)}"
    with _pg_connect() as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with _pg_connect() as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_backend(request) -> str:
    return request.param


@pytest.fixture
def store_url(store_backend, request) -> str:
    return request.getfixturevalue(f"{store_backend}_url")


@pytest.fixture(scope="session")
def _sqlite_migrated_template(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("store-template") / "handrail.db"
    migrate.upgrade(f"sqlite:///{path}")
    return str(path)


@pytest.fixture(scope="session")
def _postgres_migrated_url() -> Iterator[str]:
    _require_postgres()
    name = f"handrail_test_{secrets.token_hex(6)}"
    with _pg_connect() as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    url = make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    try:
        migrate.upgrade(url)
        yield url
    finally:
        with _pg_connect() as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _empty_postgres(url: str) -> None:
    # DELETE, children first: for a test's handful of rows it is ~50x faster than TRUNCATE.
    conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True, connect_timeout=3) as connection:
        connection.execute("SET lock_timeout = '5s'")  # a leaked transaction fails fast, not hangs
        with connection.transaction():
            for table in reversed(SQLModel.metadata.sorted_tables):
                connection.execute(f'DELETE FROM "{table.name}"')


def _sqlite_engine_from(template: str, tmp_path) -> Engine:
    path = tmp_path / "handrail-store.db"
    shutil.copyfile(template, path)
    return make_engine(f"sqlite:///{path}")


@pytest.fixture
def engine(store_backend, request, tmp_path) -> Iterator[Engine]:
    if store_backend == "sqlite":
        engine = _sqlite_engine_from(request.getfixturevalue("_sqlite_migrated_template"), tmp_path)
    else:
        url = request.getfixturevalue("_postgres_migrated_url")
        _empty_postgres(url)
        engine = make_engine(url)
    yield engine
    engine.dispose()


@pytest.fixture
def sqlite_engine(_sqlite_migrated_template, tmp_path) -> Iterator[Engine]:
    engine = _sqlite_engine_from(_sqlite_migrated_template, tmp_path)
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine) -> Iterator[Session]:
    with Session(engine, expire_on_commit=False) as session:
        yield session
