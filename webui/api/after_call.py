"""Blacklist and after-call results over the API (issue 10)."""

from __future__ import annotations

from datetime import datetime

from flask import jsonify, request
from sqlalchemy import select

from core import blacklist, clock
from core.enums import Role
from core.models import BlacklistEntry, BlacklistGroup, Call, Outbox, PushMessage, SmsMessage
from webui.api import ApiError, bp, json_body, paged
from webui.extensions import db
from webui.security import audit, get_visible_or_404, require_role, select_visible


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def group_json(g: BlacklistGroup) -> dict:
    return {"id": g.id, "name": g.name, "description": g.description,
            "release_days": g.release_days, "created_at": _iso(g.created_at)}


def entry_json(e: BlacklistEntry) -> dict:
    return {"id": e.id, "group_id": e.group_id, "phone": e.phone, "reason": e.reason,
            "source": e.source, "created_at": _iso(e.created_at),
            "expires_at": _iso(e.expires_at), "live": blacklist.is_live(e)}


def sms_json(m: SmsMessage) -> dict:
    return {"id": m.id, "call_id": m.call_id, "phone": m.phone, "content": m.content,
            "state": m.state, "attempts": m.attempts, "error": m.error,
            "created_at": _iso(m.created_at), "sent_at": _iso(m.sent_at)}


def push_json(m: PushMessage) -> dict:
    return {"id": m.id, "call_id": m.call_id, "group_id": m.group_id, "user_id": m.user_id,
            "state": m.state, "attempts": m.attempts, "error": m.error,
            "sent_at": _iso(m.sent_at), "seen_at": _iso(m.seen_at)}


@bp.get("/blacklist/groups")
@require_role(Role.ADMIN, Role.STAFF)
def list_blacklist_groups():
    return jsonify(paged(select_visible(BlacklistGroup).order_by(BlacklistGroup.id),
                         group_json))


@bp.get("/blacklist/entries")
@require_role(Role.ADMIN, Role.STAFF)
def list_blacklist_entries():
    stmt = select_visible(BlacklistEntry).order_by(BlacklistEntry.id.desc())
    if (gid := request.args.get("group_id", type=int)) is not None:
        stmt = stmt.where(BlacklistEntry.group_id == gid)
    if phone := request.args.get("phone", "").strip():
        stmt = stmt.where(BlacklistEntry.phone == blacklist.lookup_phone(phone))
    if request.args.get("live") == "true":
        stmt = stmt.where(blacklist.live_clause())
    return jsonify(paged(stmt, entry_json))


@bp.post("/blacklist/groups/<int:group_id>/entries")
@require_role(Role.ADMIN, Role.STAFF)
def add_blacklist_entries(group_id: int):
    group = get_visible_or_404(BlacklistGroup, group_id)
    body = json_body()
    phones = body.get("phones")
    if not isinstance(phones, list) or not phones or len(phones) > 10000:
        raise ApiError(422, "invalid", "phones: a list of 1 to 10000 numbers",
                       {"phones": "required"})
    expires: object = blacklist.GROUP_DEFAULT
    if "expires_at" in body:
        raw = body["expires_at"]
        if raw is None:
            expires = None
        else:
            try:
                expires = datetime.fromisoformat(str(raw))
            except ValueError:
                expires = None
            if expires is None or expires.tzinfo is None:
                raise ApiError(422, "invalid", "expires_at: ISO 8601 with a UTC offset",
                               {"expires_at": "invalid"})
    result = blacklist.add(db.session, group.account_id, group.id, [str(p) for p in phones],
                           reason=str(body.get("reason", ""))[:255], source="api",
                           expires_at=expires)
    audit("blacklist_add", group, added=len(result.added), via="api")
    db.session.commit()
    return jsonify({"added": result.added, "updated": result.updated,
                    "invalid": [{"phone": p, "reason": r} for p, r in result.invalid]}), 201


@bp.delete("/blacklist/entries/<int:entry_id>")
@require_role(Role.ADMIN, Role.STAFF)
def delete_blacklist_entry(entry_id: int):
    entry = get_visible_or_404(BlacklistEntry, entry_id)
    blacklist.remove(db.session, entry.account_id, [entry.id])
    audit("blacklist_delete", None, count=1, via="api")
    db.session.commit()
    return "", 204


@bp.get("/calls/<int:call_id>/after-call")
@require_role(Role.ADMIN, Role.STAFF)
def call_after_call(call_id: int):
    """What happened after a call: each outbox job, and the SMS and notices it sent."""
    call = get_visible_or_404(Call, call_id)
    jobs = db.session.scalars(select(Outbox).where(Outbox.call_id == call.id)
                              .order_by(Outbox.id))
    return jsonify({
        "call_id": call.id, "sms": call.sms, "push": call.push,
        "jobs": [{"key": j.key, "state": j.state, "error": j.last_error,
                  "created_at": _iso(j.created_at), "finished_at": _iso(j.finished_at)}
                 for j in jobs],
        "sms_messages": [sms_json(m) for m in db.session.scalars(
            select(SmsMessage).where(SmsMessage.call_id == call.id))],
        "push_messages": [push_json(m) for m in db.session.scalars(
            select(PushMessage).where(PushMessage.call_id == call.id))],
        "as_of": clock.now().isoformat()})


@bp.get("/sms-messages")
@require_role(Role.ADMIN, Role.STAFF)
def list_sms_messages():
    stmt = select_visible(SmsMessage).order_by(SmsMessage.id.desc())
    if state := request.args.get("state"):
        stmt = stmt.where(SmsMessage.state == state)
    if phone := request.args.get("phone", "").strip():
        stmt = stmt.where(SmsMessage.phone == blacklist.lookup_phone(phone))
    return jsonify(paged(stmt, sms_json))
