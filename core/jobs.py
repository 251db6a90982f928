"""Background jobs that a person waits for (number imports, exports …), shown in their
notification list (通知, FEATURES.md P6).

Starting one writes its Notification and an outbox row in the caller's transaction, so a
dead Redis only delays the job (the relay hands it to rq when Redis is back) and a
rolled-back request starts nothing::

    note = jobs.start(session, user, kind="import", title="导入号码：任务A",
                      job="workers.imports.import_numbers", args=[task.id, path])
    session.commit()

The job function receives the notification id first, then `args`, and reports through a
`Progress`::

    def import_numbers(notification_id, task_id, path):
        with jobs.Progress(notification_id) as progress:
            if progress.finished:         # rq ran it again after it had finished
                return
            progress.begin(total=len(rows))
            ...
            progress.step(done=n, failed=bad)
            progress.done(result_path=..., done=n, failed=bad)

`JobError` carries a message for the user (Chinese): the notification shows it and the job
ends without a retry. Any other exception marks the notification failed with a generic
message and is re-raised so rq retries it (workers.relay.RETRY_INTERVALS); a later attempt
that succeeds clears the failure.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from sqlalchemy import update
from sqlalchemy.orm import Session

from core import clock, outbox
from core.db import session_factory
from core.enums import JobState
from core.models import Notification, User
from core.settings import Settings, get_settings

log = logging.getLogger(__name__)
QUEUE = "default"
PROGRESS_EVERY_S = 0.5  # at most two progress writes a second


class JobError(Exception):
    """A failure the user can act on; the message (Chinese) is shown as is."""


def outbox_key(notification_id: int) -> str:
    return f"notification:{notification_id}"


def files_dir(settings: Settings | None = None) -> Path:
    """Where uploads waiting for their job and the files jobs produce (exports, error
    lists) live; the console serves a result only to the notification's owner. The console
    passes its app's settings; workers use the process settings."""
    path = (settings or get_settings()).data_dir / "jobs"
    path.mkdir(parents=True, exist_ok=True)
    return path


def start(session: Session, user: User, *, kind: str, title: str, job: str,
          args: list | None = None, total: int = 0) -> Notification:
    """Add a queued notification for `user` and its job to the outbox (no commit)."""
    note = Notification(account_id=user.account_id, user_id=user.id, kind=kind,
                        title=title[:255], state=JobState.QUEUED, total=total)
    session.add(note)
    session.flush()
    outbox.write(session, account_id=user.account_id, key=outbox_key(note.id), job=job,
                 args=[note.id, *(args or [])], queue=QUEUE)
    return note


class Progress:
    """The running job's side of a notification. Each write is its own short transaction,
    so the console sees progress while the job's own work is still uncommitted."""

    def __init__(self, notification_id: int, factory=None):
        self.id = notification_id
        self.factory = factory or session_factory(get_settings().database_url)
        self._last = 0.0
        self.finished = False
        self.total = 0

    def __enter__(self) -> Progress:
        with self.factory() as session, session.begin():
            note = session.get(Notification, self.id)
            if note is None:
                raise JobError(f"通知 {self.id} 不存在")
            self.finished = note.state == JobState.DONE
            self.account_id, self.user_id = note.account_id, note.user_id
            if not self.finished:
                note.state, note.error = JobState.RUNNING, None
        return self

    def __exit__(self, kind, exc, _tb) -> bool:
        key = outbox_key(self.id)
        if exc is None:
            if not self.finished:
                self.done()
            return False
        if isinstance(exc, JobError):
            self._write(state=JobState.FAILED, error=str(exc))
            self._finish_outbox(key, outbox.OutboxState.FAILED, str(exc))
            log.info("job %s failed: %s", self.id, exc)
            return True  # the user's mistake: no retry
        log.exception("job %s crashed", self.id)
        self._write(state=JobState.FAILED, error="处理出错，系统将自动重试")
        with self.factory() as session, session.begin():
            outbox.note_error(session, key, f"{kind.__name__}: {exc}")
        return False  # rq records it and retries

    def begin(self, total: int) -> None:
        self.total = total
        self._write(total=total, progress=0, done_count=0, failed_count=0)

    def step(self, done: int, failed: int = 0, force: bool = False) -> None:
        """Report `done` (and `failed`) items so far; throttled unless `force`."""
        now = time.monotonic()
        if not force and now - self._last < PROGRESS_EVERY_S:
            return
        self._last = now
        percent = min(99, (done + failed) * 100 // self.total) if self.total else 0
        self._write(progress=percent, done_count=done, failed_count=failed)

    def done(self, result_path: str | None = None, done: int | None = None,
             failed: int | None = None, error: str | None = None) -> None:
        """Mark the job done; `error` may say what went partly wrong (e.g. bad rows)."""
        values = {"state": JobState.DONE, "progress": 100, "error": error}
        if result_path is not None:
            values["result_path"] = result_path
        if done is not None:
            values["done_count"] = done
        if failed is not None:
            values["failed_count"] = failed
        self._write(**values)
        self._finish_outbox(outbox_key(self.id), outbox.OutboxState.DONE)
        self.finished = True

    def _write(self, **values) -> None:
        with self.factory() as session, session.begin():
            session.execute(update(Notification).where(Notification.id == self.id)
                            .values(updated_at=clock.now(), **values))

    def _finish_outbox(self, key: str, state, error: str | None = None) -> None:
        with self.factory() as session, session.begin():
            outbox.finish(session, key, state, error)
