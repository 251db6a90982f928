"""Engines and sessions for processes that do not run inside Flask (controller, workers, CLI)."""

from __future__ import annotations

from functools import cache

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    # WAL lets the console read while the controller and workers write.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def engine_options(url: str) -> dict:
    """create_engine keyword arguments suited to the database behind `url`."""
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": 10}}
    return {"pool_pre_ping": True}


def configure_engine(engine: Engine) -> Engine:
    """Install per-connection set-up (SQLite pragmas) on an engine we did not create."""
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def make_engine(url: str) -> Engine:
    return configure_engine(create_engine(url, **engine_options(url)))


@cache
def session_factory(url: str) -> sessionmaker[Session]:
    """One session factory (and engine pool) per database URL and process."""
    return sessionmaker(make_engine(url), expire_on_commit=False)
