"""通话详情 and 分享通话记录 (R2, R3): the detail page, the recording with HTTP ranges, the grade
changed by hand, blacklisting from the detail, share links (signed, expiring, public) —
over HTTP with real users, a real database and a real WAV file."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from html import unescape
from pathlib import Path

import numpy as np
import pytest
import soundfile
from sqlalchemy import select

from core import clock
from core.models import AuditLog, BlacklistEntry, BlacklistGroup, Call, DialogueTurn, Task
from tests import factories as f
from tests.conftest import make_settings
from webui.call_detail import recording, sharing, transcript
from webui.call_detail.share import public_mask
from webui.extensions import db

PHONE = "13900000001"


@pytest.fixture
def settings(tmp_path, db_url, redis_url):
    # Recordings in a directory of their own; AGENT_PHONE_MASK=none must still not put the
    # whole number on a public page.
    return make_settings(tmp_path, db_url, redis_url, RECORDINGS_DIR=str(tmp_path / "rec"),
                         AGENT_PHONE_MASK="none")[0]


@pytest.fixture
def wav(settings) -> Path:
    """A real one-second stereo 8 kHz WAV where the controller would put it."""
    path = settings.recordings_dir / "2026" / "01" / "05" / "u-1.wav"
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(8000) / 8000
    soundfile.write(path, np.stack([np.sin(2 * np.pi * 440 * t),
                                    np.sin(2 * np.pi * 660 * t)], axis=1) * 0.3, 8000,
                    subtype="PCM_16")
    return path


def _call(app, account_id, recording_path=None, **extra) -> int:
    """An answered call of a task, with a robot turn the callee barged in on, a callee turn
    with an intent and an agent turn."""
    with app.app_context():
        s = db.session
        task = Task(account_id=account_id, name="双十一回访")
        s.add(task)
        s.flush()
        answered = datetime(2026, 1, 5, 2, 0, 10, tzinfo=UTC)
        call = Call(account_id=account_id, uuid=str(uuid.uuid4()),
                    task_id=task.id, phone=PHONE, status="answered", sip_code=200,
                    hangup_cause="NORMAL_CLEARING", hangup_side="callee",
                    ringing_at=answered - timedelta(seconds=8), answered_at=answered,
                    ended_at=answered + timedelta(seconds=75), ring_seconds=8, talk_seconds=75,
                    grade="C", grade_source="auto", grade_reasons=["命中节点: 拒绝"],
                    tags=["价格敏感"], score=42, interactions=3, recording_path=recording_path,
                    variables={"姓名": "王先生"}, agent_notes="客户要求下周再联系",
                    transfer={"state": "failed", "reason": "all_busy", "group": "售后组",
                              "target": None, "tries": []},
                    sms={"state": "success"}, push={"state": "failed", "reason": "webhook 403"},
                    **extra)
        s.add(call)
        s.flush()
        for seq, (speaker, text, start, end, cut, intent) in enumerate([
                ("robot", "您好，这里是回访中心", 0, 3000, True, None),
                ("callee", "我不需要，谢谢", 3200, 5100, False, "拒绝"),
                ("agent", "好的，打扰了", 65_000, 67_000, False, None)]):
            s.add(DialogueTurn(account_id=account_id, call_id=call.id, seq=seq, speaker=speaker,
                               text=text, start_ms=start, end_ms=end, interrupted=cut,
                               intent=intent))
        s.commit()
        return call.id


def _token(client, path="/calls") -> str:
    return f.csrf_from(client.get(path).get_data(as_text=True))


def _audits(app, action):
    with app.app_context():
        return db.session.scalars(select(AuditLog).where(AuditLog.action == action)).all()


# --- the detail page ---------------------------------------------------------------------

def test_detail_shows_the_conversation_and_facts_and_marks_the_call_viewed(app, client, world):
    call_id = _call(app, world["a"])
    f.login(client, "staff_a")
    resp = client.get(f"/calls/{call_id}")
    assert resp.status_code == 200
    page = resp.get_data(as_text=True)
    # Bubbles per speaker, in order, with mm:ss from the call start.
    assert [m for m in re.findall(r'class="turn turn-(\w+)"', page)] == \
        ["robot", "callee", "agent"]
    assert "00:03" in page and "01:05" in page
    assert "被打断" in page and "拒绝" in page  # barged-in marker, recognised intent
    assert 'id="hide-ai"' in page
    # Facts: task, status, SIP, hang-up side, times in the account's zone, talk time …
    assert "双十一回访" in page and "呼叫成功" in page and "NORMAL_CLEARING" in page
    assert "2026-01-05 10:00:10" in page and "2026-01-05 10:01:25" in page  # Asia/Shanghai
    assert "01:15" in page  # 75 s talk time
    assert "命中节点: 拒绝" in page and "价格敏感" in page and "王先生" in page
    assert "客户要求下周再联系" in page
    assert "人工全忙" in page  # the transfer failed, and why
    assert "挂机短信" in page and "webhook 403" in page  # the after-call partial
    assert 'id="no-recording"' in page
    # The plain-text transcript the copy button copies.
    text = unescape(re.search(r'<textarea id="transcript-text"[^>]*>(.*?)</textarea>', page,
                              re.S).group(1))
    assert text.splitlines() == ["[00:00] AI: 您好，这里是回访中心 (被打断)",
                                 "[00:03] 客户: 我不需要，谢谢", "[01:05] 坐席: 好的，打扰了"]
    with app.app_context():
        assert db.session.get(Call, call_id).viewed is True


def test_other_accounts_roles_and_anonymous_cannot_reach_a_call(app, client, world, wav):
    call_id = _call(app, world["a"], recording_path=str(wav))
    assert client.get(f"/calls/{call_id}").status_code == 302  # to the login page
    assert client.get(f"/calls/{call_id}/recording").status_code == 302
    for other in ("admin_b", "admin_a1"):  # another account; a sub-account sees not its parent
        c = app.test_client()
        f.login(c, other)
        token = _token(c)
        assert c.get(f"/calls/{call_id}").status_code == 404
        assert c.get(f"/calls/{call_id}/recording").status_code == 404
        assert c.post(f"/calls/{call_id}/grade", data={"csrf_token": token, "grade": "A"}) \
            .status_code == 404
        assert c.post(f"/calls/{call_id}/share", data={"csrf_token": token, "days": 7}) \
            .status_code == 404
    agent = app.test_client()
    f.login(agent, "agent_a")
    assert agent.get(f"/calls/{call_id}").status_code == 403
    with app.app_context():
        call = db.session.get(Call, call_id)
        assert call.viewed is False and call.grade == "C"
    assert _audits(app, "call_share") == []


# --- the recording -----------------------------------------------------------------------

def test_recording_streams_with_range_requests(app, client, world, wav):
    call_id = _call(app, world["a"], recording_path=str(wav))
    data = wav.read_bytes()
    f.login(client, "staff_a")
    assert 'id="recording"' in client.get(f"/calls/{call_id}").get_data(as_text=True)
    url = f"/calls/{call_id}/recording"
    whole = client.get(url)
    assert whole.status_code == 200 and whole.mimetype == "audio/wav"
    assert whole.headers["Accept-Ranges"] == "bytes" and whole.data == data
    part = client.get(url, headers={"Range": "bytes=100-1099"})
    assert part.status_code == 206
    assert part.headers["Content-Range"] == f"bytes 100-1099/{len(data)}"
    assert part.data == data[100:1100]
    tail = client.get(url, headers={"Range": "bytes=-44"})  # the last 44 bytes
    assert tail.status_code == 206 and tail.data == data[-44:]
    beyond = client.get(url, headers={"Range": f"bytes={len(data) + 10}-"})
    assert beyond.status_code == 416
    assert beyond.headers["Content-Range"] == f"bytes */{len(data)}"
    saved = client.get(url + "?download=1")
    assert saved.headers["Content-Disposition"].startswith("attachment")
    assert f"call-{call_id}.wav" in saved.headers["Content-Disposition"]


def test_recordings_outside_the_directory_or_missing_are_refused(app, client, world, settings,
                                                                 wav, tmp_path):
    secret = tmp_path / "secret.wav"
    secret.write_bytes(wav.read_bytes())
    link = settings.recordings_dir / "link.wav"
    link.symlink_to(secret)
    f.login(client, "staff_a")
    for stored in (str(settings.recordings_dir / ".." / "secret.wav"), "../secret.wav",
                   str(secret), str(link), "/etc/passwd",
                   str(settings.recordings_dir / "2026" / "gone.wav"), str(wav.parent)):
        call_id = _call(app, world["a"], recording_path=stored)
        assert client.get(f"/calls/{call_id}/recording").status_code == 404, stored
    # A path relative to the recordings directory is fine.
    call_id = _call(app, world["a"], recording_path="2026/01/05/u-1.wav")
    assert client.get(f"/calls/{call_id}/recording").data == wav.read_bytes()


def test_locate_keeps_to_the_directory(tmp_path):
    root = tmp_path / "rec"
    (root / "a").mkdir(parents=True)
    (root / "a" / "x.wav").write_bytes(b"RIFF")
    (tmp_path / "y.wav").write_bytes(b"RIFF")
    assert recording.locate(root, "a/x.wav") == (root / "a" / "x.wav").resolve()
    assert recording.locate(root, str(root / "a" / ".." / "a" / "x.wav")) is not None
    assert recording.locate(root, "a/../../y.wav") is None
    assert recording.locate(root, "a/x.wav\x00.txt") is None
    assert recording.locate(root, None) is None and recording.locate(root, "") is None


# --- grade and blacklist -----------------------------------------------------------------

def test_grade_changed_by_hand_is_audited(app, client, world):
    call_id = _call(app, world["a"])
    f.login(client, "staff_a")
    url = f"/calls/{call_id}/grade"
    assert client.post(url, data={"grade": "A"}).status_code == 400  # no CSRF token
    token = f.csrf_from(client.get(f"/calls/{call_id}").get_data(as_text=True))
    assert client.post(url, data={"csrf_token": token, "grade": "Z"}).status_code == 400
    resp = client.post(url, data={"csrf_token": token, "grade": "A"}, follow_redirects=True)
    assert resp.status_code == 200 and "A 有明确意向" in resp.get_data(as_text=True)
    assert "手动设置" in resp.get_data(as_text=True)
    with app.app_context():
        call = db.session.get(Call, call_id)
        assert (call.grade, call.grade_source) == ("A", "manual")
    [row] = _audits(app, "call_grade")
    assert (row.target_type, row.target_id, row.user_id) == ("call", call_id, world["staff_a"])
    assert row.detail == {"old": "C", "new": "A"}


def test_blacklist_the_number_from_the_detail(app, client, world):
    call_id = _call(app, world["a"])
    with app.app_context():
        mine = BlacklistGroup(account_id=world["a"], name="投诉")
        theirs = BlacklistGroup(account_id=world["b"], name="B的分组")
        db.session.add_all([mine, theirs])
        db.session.commit()
        mine_id = mine.id
    f.login(client, "admin_a")
    page = client.get(f"/calls/{call_id}").get_data(as_text=True)
    form = re.search(r'<form method="post" action="([^"]+)"[^>]*id="blacklist-form">(.*?)</form>',
                     page, re.S)
    assert form and "投诉" in form.group(2) and "B的分组" not in form.group(2)
    fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', form.group(2)))
    resp = client.post(form.group(1), data={**fields, "group_id": mine_id})
    assert resp.status_code == 302 and resp.headers["Location"].endswith(f"/calls/{call_id}")
    with app.app_context():
        [entry] = db.session.scalars(select(BlacklistEntry)).all()
        assert (entry.phone, entry.group_id, entry.source) == (PHONE, mine_id, "call")
    assert "已在黑名单：投诉" in client.get(f"/calls/{call_id}").get_data(as_text=True)


# --- sharing -----------------------------------------------------------------------------

def _share(app, client, call_id, days=7) -> str:
    token = f.csrf_from(client.get(f"/calls/{call_id}").get_data(as_text=True))
    resp = client.post(f"/calls/{call_id}/share", data={"csrf_token": token, "days": days},
                       follow_redirects=True)
    assert resp.status_code == 200
    url = re.search(r'id="share-url" value="([^"]+)"', resp.get_data(as_text=True)).group(1)
    return unescape(url)


def test_a_share_link_opens_the_call_without_login_on_a_phone(app, client, world, wav):
    call_id = _call(app, world["a"], recording_path=str(wav))
    f.login(client, "staff_a")
    token = _token(client, f"/calls/{call_id}")
    assert client.post(f"/calls/{call_id}/share", data={"csrf_token": token, "days": 3}) \
        .status_code == 400  # 1, 7 or 30 days only
    url = _share(app, client, call_id, days=30)
    [row] = _audits(app, "call_share")
    assert row.target_id == call_id and row.detail["days"] == 30
    until = datetime.fromisoformat(row.detail["until"])
    assert timedelta(days=29) < until - clock.now() <= timedelta(days=30)

    public = app.test_client()  # nobody logged in
    resp = public.get(url)
    assert resp.status_code == 200
    page = resp.get_data(as_text=True)
    assert "双十一回访" in page and "139****0001" in page and PHONE not in page
    assert "2026-01-05 10:00" in page and "C 无意向" in page
    assert "我不需要，谢谢" in page and 'name="viewport"' in page and "share-page" in page
    # Nothing else: no menu, no other pages' links, no notes, variables or tags.
    assert 'id="menu"' not in page
    share_path = url.split("localhost", 1)[1]
    assert {u for u in re.findall(r'(?:href|src)="([^"]+)"', page)
            if not u.startswith("/static/")} == {share_path + "/recording"}
    for private in ("客户要求下周再联系", "王先生", "价格敏感", "命中节点", "NORMAL_CLEARING"):
        assert private not in page
    assert resp.headers["X-Frame-Options"] == "DENY"
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Referrer-Policy"] == "no-referrer"
    assert "no-store" in resp.headers["Cache-Control"]
    # The recording through the token, with ranges.
    rec = re.search(r'<audio id="recording"[^>]*src="([^"]+)"', page).group(1)
    part = public.get(rec, headers={"Range": "bytes=0-43"})
    assert part.status_code == 206 and part.data == wav.read_bytes()[:44]
    assert part.mimetype == "audio/wav"


def test_tampered_foreign_and_expired_links(app, client, world, wav):
    call_id = _call(app, world["a"], recording_path=str(wav))
    public = app.test_client()
    secret = app.secret_key
    good = sharing.make_token(secret, call_id, clock.now() + timedelta(days=1))
    assert public.get(f"/share/calls/{good}").status_code == 200
    forged = [good[:-2] + ("AA" if good[-2:] != "AA" else "BB"),
              sharing.make_token("another key", call_id, clock.now() + timedelta(days=1)),
              "not-a-token"]
    # A value the app signed for something else (another salt) is not a share link either.
    from itsdangerous import URLSafeSerializer
    forged.append(URLSafeSerializer(secret, salt="other").dumps(
        {"call": call_id, "until": int((clock.now() + timedelta(days=1)).timestamp())}))
    for token in forged:
        assert public.get(f"/share/calls/{token}").status_code == 404
        assert public.get(f"/share/calls/{token}/recording").status_code == 404
    old = sharing.make_token(secret, call_id, clock.now() - timedelta(minutes=1))
    resp = public.get(f"/share/calls/{old}")
    assert resp.status_code == 410
    page = resp.get_data(as_text=True)
    assert "该链接已过期" in page and "双十一回访" not in page and "0001" not in page
    assert public.get(f"/share/calls/{old}/recording").status_code == 410
    gone = sharing.make_token(secret, call_id + 999, clock.now() + timedelta(days=1))
    assert public.get(f"/share/calls/{gone}").status_code == 404


def test_share_tokens_round_trip_and_expire():
    now = datetime(2026, 1, 5, tzinfo=UTC)
    token = sharing.make_token("k", 7, now + timedelta(days=7))
    assert sharing.read_token("k", token, now) == (7, now + timedelta(days=7))
    with pytest.raises(sharing.ShareExpired) as exc:
        sharing.read_token("k", token, now + timedelta(days=7))
    assert exc.value.until == now + timedelta(days=7)
    with pytest.raises(sharing.ShareInvalid):
        sharing.read_token("other", token, now)


def test_public_pages_always_mask_the_number():
    assert public_mask("none") == "middle"
    assert public_mask("all") == "all" and public_mask("middle") == "middle"


def test_transcript_times_and_text():
    assert [transcript.mmss(ms) for ms in (0, 999, 61_999, 3_600_000, -5, None)] == \
        ["00:00", "00:00", "01:01", "60:00", "00:00", "00:00"]
    lines = [transcript.Line("robot", "你好", "00:00", 0, 1, True, None),
             transcript.Line("other", "x", "00:02", 2, 3, False, None)]
    assert transcript.plain_text(lines, {"robot": "AI"}, "cut") == \
        "[00:00] AI: 你好 (cut)\n[00:02] other: x"
