"""Small helpers that create real rows for tests."""

from __future__ import annotations

import re

from core.enums import Role
from core.models import Account, ApiToken, Line, User

PASSWORD = "secret-pass-1"


def account(session, name: str, parent: Account | None = None) -> Account:
    row = Account(name=name, parent_id=parent.id if parent else None)
    session.add(row)
    session.flush()
    return row


def user(session, acct: Account, username: str, role: Role = Role.ADMIN) -> User:
    row = User(account_id=acct.id, username=username, role=role)
    row.set_password(PASSWORD)
    session.add(row)
    session.flush()
    return row


def token(session, owner: User) -> str:
    row, plain = ApiToken.issue(owner, "test")
    session.add(row)
    session.flush()
    return plain


def line(session, acct: Account, max_concurrency: int = 10, name: str = "L1") -> Line:
    row = Line(account_id=acct.id, name=name, gateway="gw1", max_concurrency=max_concurrency)
    session.add(row)
    session.flush()
    return row


_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_from(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "page has no CSRF token"
    return match.group(1)


def login(client, username: str, password: str = PASSWORD):
    page = client.get("/login")
    return client.post("/login", data={"username": username, "password": password,
                                       "csrf_token": csrf_from(page.get_data(as_text=True))})
