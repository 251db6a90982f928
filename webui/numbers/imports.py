"""导入号码 (FEATURES.md T3): the import forms, into one task or, with the multi-task
template's task column, into several, and the template downloads. The job itself is
workers.imports; its outcome and error file are in the notification list."""

from __future__ import annotations

import io

from flask import abort, flash, redirect, render_template, request, send_file, url_for
from flask_babel import gettext as _

from core import number_import as rules
from core.models import Task
from webui.numbers import bp
from webui.numbers.uploads import UploadError, form_options, queue_import
from webui.numbers.workbooks import template_xlsx
from webui.security import get_visible_or_404

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _import(task: Task | None):
    if request.method == "GET":
        return render_template("numbers/import.html", task=task, max_rows=rules.MAX_ROWS)
    try:
        mode, shuffle = form_options(request.form)
        queue_import(request.files.get("file"), task, mode, shuffle)
    except UploadError as exc:
        return render_template("numbers/import.html", task=task, max_rows=rules.MAX_ROWS,
                               error=str(exc), form=request.form), 400
    flash(_("The import has started; its result will be in your notifications."), "success")
    return redirect(url_for("console.notifications"))


@bp.route("/tasks/<int:task_id>/import", methods=["GET", "POST"])
def import_task(task_id: int):
    return _import(get_visible_or_404(Task, task_id))


@bp.route("/tasks/import", methods=["GET", "POST"])
def import_multi():
    """One file for several tasks: its 任务别名 column names each row's task."""
    return _import(None)


@bp.get("/tasks/import/template/<kind>.xlsx")
def template(kind: str):
    spec = rules.TEMPLATES.get(kind)
    if spec is None:
        abort(404)
    return send_file(io.BytesIO(template_xlsx(spec)), mimetype=XLSX,
                     as_attachment=True, download_name=spec.filename)
