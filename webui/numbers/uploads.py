"""Starting a number import from an upload, for the console's forms and the API alike: what
can be told at once (no file, wrong type, empty) is refused here; the rest is the job's
(workers.imports), which reports through the user's notification."""

from __future__ import annotations

import uuid

from flask import current_app
from flask_babel import gettext as _
from werkzeug.datastructures import FileStorage

from core import jobs
from core import number_import as rules
from core.models import Notification, Task
from webui.extensions import db
from webui.security import actor, audit

_TRUE, _FALSE = ("1", "true", "yes", "on"), ("", "0", "false", "no", "off")


class UploadError(ValueError):
    """The request cannot start an import; `field` names the input at fault."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


def form_options(form) -> tuple[str, bool]:
    """(mode, shuffle) from a form: mode normal|fast, shuffle 1/0 (true/false …)."""
    mode = form.get("mode", rules.Mode.NORMAL)
    if mode not in tuple(rules.Mode):
        raise UploadError("mode", _("Mode must be normal or fast."))
    shuffle = form.get("shuffle", "").strip().lower()
    if shuffle not in _TRUE + _FALSE:
        raise UploadError("shuffle", _("Shuffle must be true or false."))
    return mode, shuffle in _TRUE


def queue_import(upload: FileStorage | None, task: Task | None, mode: str,
                 shuffle: bool) -> Notification:
    """Keep the upload under core.jobs.files_dir() and start its job, committing both with
    an audit row; `task` None is a multi-task import. Raises UploadError."""
    if upload is None or not upload.filename:
        raise UploadError("file", _("Choose a file to import."))
    try:
        kind = rules.file_kind(upload.filename, upload.stream.read(8))
    except rules.ImportFileError as exc:
        raise UploadError("file", str(exc)) from None
    upload.stream.seek(0)
    path = jobs.files_dir(current_app.config["SETTINGS"]) / f"import-{uuid.uuid4().hex}.{kind}"
    upload.save(path)
    title = _("Import numbers: %(task)s", task=task.name) if task else \
        _("Import numbers into several tasks: %(file)s", file=upload.filename)
    try:
        note = jobs.start(db.session, actor(), kind="import", title=title, job=rules.JOB,
                          args=[path.name, task.id if task else None, mode, shuffle])
        audit("numbers_import", task, notification_id=note.id, mode=mode, shuffle=shuffle,
              file=upload.filename[:200])
        db.session.commit()
    except Exception:
        path.unlink(missing_ok=True)  # nothing will ever read it
        raise
    return note
