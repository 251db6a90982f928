"""Starting a call records export (FEATURES.md R4) from the page or the API.

The export runs as a background job (workers.exports.export_calls) shown in the user's
notifications. Numbers are masked (M3: 隐藏号码中间四位) unless an administrator asks for
full numbers; AGENT_PHONE_MASK=all makes the mask hide all but the last two digits.
The requester's words (column titles, statuses …) travel with the job, which has no request
to translate them in.
"""

from __future__ import annotations

from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _

from core import call_query, jobs
from core.call_columns import Column
from core.enums import Role
from core.models import Notification, User
from webui.extensions import db
from webui.records import labels
from webui.security import audit

JOB = "workers.exports.export_calls"


class ExportRefused(Exception):
    """The user may not export this way (full numbers are for administrators)."""


def mask_mode(full_numbers: bool) -> str | None:
    if full_numbers:
        return None
    return "all" if current_app.config["SETTINGS"].agents.phone_mask == "all" else "middle"


def start_export(user: User, group: call_query.Group, columns: list[Column],
                 full_numbers: bool = False) -> Notification:
    """Queue the export of the calls `user` sees that match `group` (committed)."""
    if full_numbers and user.role != Role.ADMIN:
        raise ExportRefused("only administrators export full numbers")
    with force_locale(user.locale or "zh"):
        spec = {"filter": call_query.to_json(group), "columns": [c.key for c in columns],
                "headers": [str(labels.COLUMNS[c.key]) for c in columns],
                "labels": labels.value_words(), "sheet": _("Call records"),
                "mask": mask_mode(full_numbers), "zone": user.account.timezone}
        title = _("Export call records (%(n)d columns)", n=len(columns))
    note = jobs.start(db.session, user, kind="export", title=title, job=JOB, args=[spec])
    audit("calls_export", note, columns=spec["columns"], full_numbers=full_numbers,
          filter=spec["filter"])
    db.session.commit()
    return note
