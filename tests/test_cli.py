"""The command line, run as a real process."""

import subprocess
import sys

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.db import make_engine
from core.models import ApiToken, User, hash_token
from core.settings import ROOT


def manage(env, *args, input=None):
    return subprocess.run([sys.executable, "-m", "scripts.manage", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120, input=input)


@pytest.fixture
def cli_env(subprocess_env, tmp_path):
    env = dict(subprocess_env, DATABASE_URL=f"sqlite:///{tmp_path / 'cli.db'}")
    return env


def test_bootstrap_user_and_token(cli_env):
    out = manage(cli_env, "bootstrap")
    assert out.returncode == 0, out.stderr
    assert "administrator: admin (created)" in out.stdout
    assert "(created)" not in manage(cli_env, "bootstrap").stdout  # idempotent

    out = manage(cli_env, "user", "create", "alice", "--role", "agent",
                 input="pw-alice-1\npw-alice-1\n")
    assert out.returncode == 0, out.stderr
    dup = manage(cli_env, "user", "create", "alice", "--password", "another-1")
    assert dup.returncode != 0 and "exists" in dup.stderr

    out = manage(cli_env, "token", "create", "alice", "--name", "crm")
    token = out.stdout.strip()
    assert token.startswith("cc_")
    engine = make_engine(cli_env["DATABASE_URL"])
    with Session(engine) as s:
        alice = s.scalar(select(User).where(User.username == "alice"))
        assert alice.role == "agent" and alice.check_password("pw-alice-1")
        row = s.scalar(select(ApiToken).where(ApiToken.user_id == alice.id))
        assert row.token_hash == hash_token(token) and token not in row.prefix + row.name
    engine.dispose()


def test_bad_setting_stops_with_the_variable_named(cli_env):
    out = manage(dict(cli_env, WEB_PORT="eighty"), "db", "upgrade")
    assert out.returncode != 0
    assert "configuration error: WEB_PORT:" in out.stderr
