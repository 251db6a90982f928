"""通知 (P6): a job's notification and outbox row, its progress and failures as the job
reports them, the list, the unread count, result downloads, the pop-up feed and toggle,
and the 10-day purge."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from core import clock, jobs
from core.db import session_factory
from core.enums import JobState
from core.models import Notification, Outbox, User
from core.outbox import OutboxState
from tests import factories as f
from webui.extensions import db
from workers.maintenance import purge_notifications


def _start(app, username: str, title: str = "导出通话记录") -> int:
    with app.app_context():
        user = db.session.scalar(select(User).where(User.username == username))
        note = jobs.start(db.session, user, kind="export", title=title,
                          job="workers.exports.export_calls", args=[{"op": "and"}])
        db.session.commit()
        return note.id


def test_start_writes_the_notification_and_its_job_in_one_transaction(app, world):
    note_id = _start(app, "staff_a")
    with app.app_context():
        note = db.session.get(Notification, note_id)
        row = db.session.scalar(select(Outbox).where(Outbox.key == f"notification:{note_id}"))
        assert note.state == JobState.QUEUED and note.user_id == world["staff_a"]
        assert row.job == "workers.exports.export_calls" and row.queue == "default"
        assert row.args == [note_id, {"op": "and"}] and row.state == OutboxState.PENDING
        # a rolled-back request starts nothing
        user = db.session.get(User, world["staff_a"])
        jobs.start(db.session, user, kind="export", title="x", job="j")
        db.session.rollback()
        assert db.session.scalar(select(db.func.count()).select_from(Outbox)) == 1


def test_progress_reports_and_a_retry_after_success_does_nothing(app, settings, world):
    note_id = _start(app, "staff_a")
    factory = session_factory(settings.database_url)
    with jobs.Progress(note_id, factory) as progress:
        assert not progress.finished
        with factory() as s:
            assert s.get(Notification, note_id).state == JobState.RUNNING
        progress.begin(total=200)
        progress.step(done=50, failed=10, force=True)
        with factory() as s:
            note = s.get(Notification, note_id)
            assert (note.progress, note.done_count, note.failed_count) == (30, 50, 10)
        progress.done(result_path="/tmp/x.xlsx", done=190, failed=10, error="10 行未导入")
    with factory() as s:
        note = s.get(Notification, note_id)
        assert (note.state, note.progress, note.error) == (JobState.DONE, 100, "10 行未导入")
        assert s.scalar(select(Outbox.state)) == OutboxState.DONE
    with jobs.Progress(note_id, factory) as again:
        assert again.finished  # rq ran it a second time: the job returns at once
    with factory() as s:
        assert s.get(Notification, note_id).state == JobState.DONE


def test_a_users_mistake_fails_without_retry_a_crash_is_retried(app, settings, world):
    factory = session_factory(settings.database_url)
    mistake, crash = _start(app, "staff_a", "a"), _start(app, "staff_a", "b")
    with jobs.Progress(mistake, factory):
        raise jobs.JobError("文件中没有“号码”列")
    with pytest.raises(ZeroDivisionError), jobs.Progress(crash, factory):
        _ = 1 / 0
    with factory() as s:
        first, second = s.get(Notification, mistake), s.get(Notification, crash)
        assert (first.state, first.error) == (JobState.FAILED, "文件中没有“号码”列")
        assert second.state == JobState.FAILED and "重试" in second.error
        states = dict(s.execute(select(Outbox.key, Outbox.state)).all())
        assert states[f"notification:{mistake}"] == OutboxState.FAILED
        assert states[f"notification:{crash}"] == OutboxState.PENDING  # rq retries it
        assert "ZeroDivisionError" in s.scalar(select(Outbox.last_error).where(
            Outbox.key == f"notification:{crash}"))
    with jobs.Progress(crash, factory) as progress:  # the retry succeeds
        progress.done(done=1)
    with factory() as s:
        note = s.get(Notification, crash)
        assert note.state == JobState.DONE and note.error is None


def test_list_unread_count_and_download(app, client, world, settings):
    note_id = _start(app, "staff_a")
    result = jobs.files_dir(settings) / f"export-{note_id}.xlsx"
    result.write_bytes(b"PK-fake-xlsx")
    factory = session_factory(settings.database_url)
    with jobs.Progress(note_id, factory) as progress:
        progress.done(result_path=str(result), done=3)
    f.login(client, "staff_a")
    page = client.get("/tasks").get_data(as_text=True)
    assert 'id="unread-count"\n            >1</span>' in page
    listing = client.get("/notifications").get_data(as_text=True)
    assert "导出通话记录" in listing and f"/notifications/{note_id}/download" in listing
    assert 'id="unread-count"\n            hidden>0</span>' in client.get("/tasks").get_data(
        as_text=True)  # seen on the list: read
    download = client.get(f"/notifications/{note_id}/download")
    assert download.status_code == 200 and download.data == b"PK-fake-xlsx"
    assert "attachment" in download.headers["Content-Disposition"]
    # another user of the same account, and another account, get nothing
    other = app.test_client()
    f.login(other, "admin_a")
    assert other.get(f"/notifications/{note_id}/download").status_code == 404
    assert "导出通话记录" not in other.get("/notifications").get_data(as_text=True)
    stranger = app.test_client()
    f.login(stranger, "admin_b")
    assert stranger.get(f"/notifications/{note_id}/download").status_code == 404


def test_a_result_outside_the_jobs_folder_is_never_served(app, client, world, settings):
    note_id = _start(app, "staff_a")
    with app.app_context():
        db.session.get(Notification, note_id).result_path = str(settings.data_dir /
                                                                "secret_key")
        db.session.commit()
    f.login(client, "staff_a")
    assert client.get(f"/notifications/{note_id}/download").status_code == 404


def test_recent_feed_and_popup_toggle(app, client, world, settings):
    f.login(client, "staff_a")
    since = clock.now().isoformat()
    note_id = _start(app, "staff_a", "导入号码：回访")
    with jobs.Progress(note_id, session_factory(settings.database_url)):
        raise jobs.JobError("文件为空")
    feed = client.get("/notifications/recent.json", query_string={"since": since}).get_json()
    assert feed["unread"] == 1
    assert [(e["title"], e["state"], e["error"]) for e in feed["ended"]] == [
        ("导入号码：回访", "failed", "文件为空")]
    later = client.get("/notifications/recent.json",
                       query_string={"since": feed["now"]}).get_json()
    assert later["ended"] == []
    assert 'data-popup="on"' in client.get("/tasks").get_data(as_text=True)
    token = f.csrf_from(client.get("/notifications").get_data(as_text=True))
    client.post("/notifications/popup", data={"csrf_token": token, "on": "0"})
    assert 'data-popup="off"' in client.get("/tasks").get_data(as_text=True)
    with app.app_context():
        assert db.session.get(User, world["staff_a"]).preferences["notify_popup"] is False


def test_purge_keeps_ten_days_and_removes_result_files(app, world, settings):
    old_id, new_id = _start(app, "staff_a", "old"), _start(app, "staff_a", "new")
    old_file = jobs.files_dir(settings) / "old.xlsx"
    old_file.write_bytes(b"x")
    with app.app_context():
        old = db.session.get(Notification, old_id)
        old.created_at = clock.now() - timedelta(days=11)
        old.result_path = str(old_file)
        db.session.commit()
    assert purge_notifications(session_factory(settings.database_url)) == 1
    with app.app_context():
        assert db.session.get(Notification, old_id) is None
        assert db.session.get(Notification, new_id) is not None
    assert not old_file.exists()
