"""Shared fixtures: real Redis, SQLite and PostgreSQL (when TEST_POSTGRES_URL is set).

- Redis: REDIS_URL when set (its database 15, flushed per test), else an embedded server.
- SQLite: migrated once per session with the real Alembic migrations, copied per test.
- PostgreSQL: migrated once into a template database, cloned per test (CREATE DATABASE …
  TEMPLATE), dropped afterwards.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis
import sqlalchemy as sa

from core import migrate
from core.settings import ROOT, load_settings

ADMIN_PASSWORD = "admin-pass-123"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def redis_server_url(tmp_path_factory):
    url = os.environ.get("REDIS_URL")
    if url:
        parts = urlsplit(url)
        yield urlunsplit(parts._replace(path="/15"))
        return
    from core.embedded_redis import command

    port = free_port()
    proc = subprocess.Popen(command(port, tmp_path_factory.mktemp("redis")),
                            stdout=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while True:
        try:
            redis.Redis.from_url(url).ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    yield url
    proc.terminate()
    proc.wait(10)


@pytest.fixture
def redis_url(redis_server_url):
    conn = redis.Redis.from_url(redis_server_url)
    conn.flushdb()
    yield redis_server_url
    conn.flushdb()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("sqlite") / "template.db"
    migrate.upgrade(f"sqlite:///{path}")
    return path


def _pg_admin_url() -> str | None:
    url = os.environ.get("TEST_POSTGRES_URL")
    if not url:
        return None
    scheme = urlsplit(url).scheme
    return url if "+" in scheme else url.replace(scheme, "postgresql+psycopg", 1)


def _pg_url(admin_url: str, name: str) -> str:
    return urlunsplit(urlsplit(admin_url)._replace(path="/" + name))


@pytest.fixture(scope="session")
def pg_template():
    admin_url = _pg_admin_url()
    if admin_url is None:
        yield None
        return
    name = f"cc_tmpl_{uuid.uuid4().hex[:8]}"
    engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}"'))
    migrate.upgrade(_pg_url(admin_url, name))
    yield admin_url, name
    with engine.connect() as c:
        c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


def _fresh_db(kind: str, tmp_path: Path, sqlite_template: Path, pg_template):
    if kind == "sqlite":
        path = tmp_path / "test.db"
        shutil.copy(sqlite_template, path)
        yield f"sqlite:///{path}"
        return
    if pg_template is None:
        pytest.skip("TEST_POSTGRES_URL is not set")
    admin_url, template = pg_template
    name = f"cc_test_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    yield _pg_url(admin_url, name)
    with engine.connect() as c:
        c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


@pytest.fixture
def db_url(tmp_path, sqlite_template, pg_template):
    """A migrated, empty SQLite database (the embedded default)."""
    yield from _fresh_db("sqlite", tmp_path, sqlite_template, pg_template)


@pytest.fixture(params=["sqlite", "postgresql"])
def any_db_url(request, tmp_path, sqlite_template, pg_template):
    """A migrated, empty database of each kind this machine has."""
    yield from _fresh_db(request.param, tmp_path, sqlite_template, pg_template)


def make_settings(tmp_path: Path, database_url: str, redis_url: str, **extra):
    env = {"DATA_DIR": str(tmp_path / "data"), "DATABASE_URL": database_url,
           "REDIS_URL": redis_url, "ADMIN_PASSWORD": ADMIN_PASSWORD, "SIMSWITCH": "no",
           "FS_NODES": f"t=127.0.0.1:{free_port()}:ClueCon", **extra}
    return load_settings(environ=env, env_file=tmp_path / "no.env"), env


@pytest.fixture
def settings(tmp_path, db_url, redis_url):
    return make_settings(tmp_path, db_url, redis_url)[0]


@pytest.fixture
def subprocess_env(tmp_path, db_url, redis_url):
    """Environment for running the project's real entry points as child processes."""
    _, env = make_settings(tmp_path, db_url, redis_url)
    return {**os.environ, **env, "PYTHONPATH": str(ROOT)}
