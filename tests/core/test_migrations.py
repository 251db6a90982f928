"""The real Alembic migrations build the models' schema on SQLite and PostgreSQL alike."""

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from core import migrate
from core.db import make_engine
from core.models import Base


def test_migrated_schema_matches_models(any_db_url):
    engine = make_engine(any_db_url)
    with engine.connect() as conn:
        opts = {"compare_type": True, "include_object": migrate.for_dialect(conn.dialect.name)}
        diff = compare_metadata(MigrationContext.configure(conn, opts=opts), Base.metadata)
    engine.dispose()
    assert diff == []


def test_downgrade_to_base_and_upgrade_again(any_db_url):
    migrate.downgrade(any_db_url, "base")
    engine = make_engine(any_db_url)
    assert set(sa.inspect(engine).get_table_names()) <= {"alembic_version"}
    engine.dispose()
    migrate.upgrade(any_db_url)
    engine = make_engine(any_db_url)
    assert set(Base.metadata.tables) <= set(sa.inspect(engine).get_table_names())
    engine.dispose()


def test_sqlite_runs_in_wal_mode(db_url):
    engine = make_engine(db_url)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    engine.dispose()
