"""core.blacklist on SQLite and PostgreSQL: add, move, remove, expiry."""

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from core import blacklist, clock
from core.db import make_engine
from core.models import BlacklistEntry, BlacklistGroup
from tests import factories as f


@pytest.fixture
def db(any_db_url):
    engine = make_engine(any_db_url)
    with Session(engine) as s:
        a, b = f.account(s, "A"), f.account(s, "B")
        groups = [BlacklistGroup(account_id=a.id, name=n) for n in ("默认分组", "投诉")]
        other = BlacklistGroup(account_id=b.id, name="B")
        s.add_all(groups + [other])
        s.commit()
        yield s, a.id, [g.id for g in groups], other.id
    engine.dispose()


def test_add_normalises_reports_invalid_and_refreshes_existing(db):
    s, acct, (g1, _), _ = db
    r = blacklist.add(s, acct, g1, ["138 1234 5678", "+86 13812345679", "12", "13812345678"],
                      reason="投诉", source="call")
    assert r.added == ["13812345678", "13812345679"] and r.updated == []
    assert [raw for raw, _ in r.invalid] == ["12"]
    soon = clock.now() + timedelta(days=1)
    r = blacklist.add(s, acct, g1, ["13812345678"], reason="again", expires_at=soon)
    assert r.updated == ["13812345678"]
    entry = s.scalar(select(BlacklistEntry).where(BlacklistEntry.phone == "13812345678"))
    assert entry.reason == "again" and entry.expires_at == soon


def test_expiry_releases_a_number(db):
    s, acct, (g1, g2), _ = db
    now = clock.now()
    blacklist.add(s, acct, g1, ["13800000001"], expires_at=now + timedelta(hours=1))
    blacklist.add(s, acct, g2, ["13800000002"])  # never released
    s.commit()
    assert blacklist.is_blacklisted(s, acct, [g1], "138-0000-0001", now)
    assert not blacklist.is_blacklisted(s, acct, [g1], "13800000001", now + timedelta(hours=2))
    assert blacklist.is_blacklisted(s, acct, [g2], "13800000002", now + timedelta(days=999))
    assert not blacklist.is_blacklisted(s, acct, [], "13800000002", now)
    assert not blacklist.is_blacklisted(s, acct, [g1], "13800000002", now)  # other group
    assert blacklist.live_numbers(s, [g1, g2], ["13800000001", "13800000002", "13800000003"],
                                  now + timedelta(hours=2)) == {"13800000002"}
    assert blacklist.live_numbers(s, [g1, g2], ["13800000001"], now) == {"13800000001"}


def test_move_merges_and_remove_is_scoped(db):
    s, acct, (g1, g2), other = db
    blacklist.add(s, acct, g1, ["13800000001", "13800000002"], reason="from g1")
    blacklist.add(s, acct, g2, ["13800000001"], reason="old in g2")
    ids = list(s.scalars(select(BlacklistEntry.id).where(BlacklistEntry.group_id == g1)))
    assert blacklist.move(s, acct, ids, g2) == 2
    rows = s.execute(select(BlacklistEntry.phone, BlacklistEntry.reason)
                     .where(BlacklistEntry.group_id == g2).order_by(BlacklistEntry.phone)).all()
    assert rows == [("13800000001", "from g1"), ("13800000002", "from g1")]
    with pytest.raises(blacklist.BlacklistError):
        blacklist.move(s, acct, ids, other)  # another account's group
    with pytest.raises(blacklist.BlacklistError):
        blacklist.add(s, acct, other, ["13800000009"])
    assert blacklist.remove(s, acct + 1, ids) == 0  # not this account's entries
    assert blacklist.remove(s, acct, ids) == 2
    s.commit()


def test_group_release_days_is_the_default_release_time(db):
    s, acct, (g1, _), _ = db
    s.get(BlacklistGroup, g1).release_days = 7
    before = clock.now()
    blacklist.add(s, acct, g1, ["13800000001"])
    blacklist.add(s, acct, g1, ["13800000002"], expires_at=None)  # explicitly never
    entries = {e.phone: e.expires_at for e in s.scalars(select(BlacklistEntry))}
    assert before + timedelta(days=7) <= entries["13800000001"] <= clock.now() + timedelta(days=7)
    assert entries["13800000002"] is None
