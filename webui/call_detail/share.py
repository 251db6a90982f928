"""分享通话记录 (FEATURES.md R3): the public page a share link opens, and its recording.

No login: the signed token (webui.call_detail.sharing) is the only key, and it opens one
call. The page shows that call's task name, masked number, time, grade, transcript and
recording — no menu, no ids, no variables, tags or notes."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from flask import Blueprint, abort, current_app, render_template

from core import clock
from core.models import Account, Call, Task
from core.transfer import mask_phone
from webui.call_detail import conversation, labels, recording, sharing
from webui.extensions import db

bp = Blueprint("share", __name__, url_prefix="/share")


def public_mask(mode: str) -> str:
    """How a public page masks the number: the AGENT_PHONE_MASK setting, except that a
    link anyone may forward never shows the whole number ("none" becomes "middle")."""
    return "middle" if mode == "none" else mode


def _shared_call(token: str) -> Call:
    """The call a token opens; 404 for a forged token or a deleted call. An expired token
    raises sharing.ShareExpired, answered by `expired` below."""
    try:
        call_id, _until = sharing.read_token(current_app.secret_key, token, clock.now())
    except sharing.ShareInvalid:
        abort(404)
    call = db.session.get(Call, call_id)
    if call is None:
        abort(404)
    return call


@bp.errorhandler(sharing.ShareExpired)
def expired(exc: sharing.ShareExpired):
    zone = ZoneInfo(current_app.config["SETTINGS"].timezone)  # no call is opened for it
    return render_template("share/expired.html", until=exc.until.astimezone(zone)), 410


@bp.after_request
def _private(response):
    # The token is the secret: keep it out of Referer headers, caches and search engines.
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["X-Robots-Tag"] = "noindex, nofollow"
    return response


@bp.get("/calls/<token>")
def view(token: str):
    call = _shared_call(token)
    settings = current_app.config["SETTINGS"]
    return render_template(
        "share/call.html", call=call, token=token, lines=conversation(call),
        phone=mask_phone(call.phone, public_mask(settings.agents.phone_mask)),
        task=db.session.get(Task, call.task_id) if call.task_id else None,
        zone=ZoneInfo(db.session.get(Account, call.account_id).timezone),
        has_recording=recording.locate(settings.recordings_dir, call.recording_path) is not None,
        detail_labels=labels)


@bp.get("/calls/<token>/recording")
def recording_file(token: str):
    call = _shared_call(token)
    path = recording.locate(current_app.config["SETTINGS"].recordings_dir, call.recording_path)
    if path is None:
        abort(404)
    return recording.send(path, "call")
