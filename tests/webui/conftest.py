from __future__ import annotations

import pytest

from tests import factories as f
from webui.app import create_app
from webui.extensions import db as _db


@pytest.fixture
def app(settings):
    app = create_app(settings, TESTING=True)
    yield app
    with app.app_context():
        _db.engine.dispose()


@pytest.fixture
def world(app):
    """Main account A with an admin and a staff user, its sub-account A1, and an unrelated
    account B with its own admin. Returns plain ids and names."""
    with app.app_context():
        s = _db.session
        a = f.account(s, "A")
        a1 = f.account(s, "A1", parent=a)
        b = f.account(s, "B")
        ids = {
            "a": a.id, "a1": a1.id, "b": b.id,
            "admin_a": f.user(s, a, "admin_a").id,
            "staff_a": f.user(s, a, "staff_a", f.Role.STAFF).id,
            "admin_a1": f.user(s, a1, "admin_a1").id,
            "agent_a": f.user(s, a, "agent_a", f.Role.AGENT).id,
            "admin_b": f.user(s, b, "admin_b").id,
        }
        s.commit()
    return ids


@pytest.fixture
def client(app):
    return app.test_client()
