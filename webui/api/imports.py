"""Number imports by API (T3/T4): the same job as the console's import form."""

from __future__ import annotations

from flask import jsonify, request

from core.enums import Role
from core.models import Task
from webui.api import ApiError, bp
from webui.api import serialise as ser
from webui.extensions import db
from webui.numbers.uploads import UploadError, form_options, queue_import
from webui.security import require_role, select_visible


@bp.post("/tasks/<int:task_id>/imports")
@require_role(Role.ADMIN, Role.STAFF)
def create_import(task_id: int):
    """multipart/form-data: file (.xlsx, .xls, .csv), mode normal|fast, shuffle true|false.
    202 with the notification that follows the job (GET /notifications)."""
    task = db.session.scalar(select_visible(Task).where(Task.id == task_id))
    if task is None:
        raise ApiError(404, "not_found", f"task {task_id} not found")
    try:
        mode, shuffle = form_options(request.form)
        note = queue_import(request.files.get("file"), task, mode, shuffle)
    except UploadError as exc:
        raise ApiError(422, "validation_error", str(exc), {exc.field: str(exc)}) from None
    return jsonify(ser.notification(note)), 202
