"""Transfer to agents in the console (FEATURES.md C8): transfer groups (转接组), agents'
extensions and presence, and the agent workbench (坐席工作台): a browser phone (JsSIP, SIP
over WSS to FreeSWITCH), presence buttons, and the screen pop (弹屏) fed by Server-Sent
Events from the agent's Redis channel `cc:agent:<user_id>`, with a notes box saved to the
call.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from urllib.parse import urlsplit

import redis
from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user, login_required

from core.enums import Role, TransferStrategy
from core.models import Call, Line, TransferGroup, TransferGroupMember, User
from core.presence import MANUAL_STATES, AgentState, Presence, agent_channel, last_pop_key
from webui.extensions import db
from webui.security import actor, audit, get_visible_or_404, select_visible

log = logging.getLogger(__name__)

bp = Blueprint("agents", __name__, url_prefix="/agents")

STAFF = (Role.ADMIN, Role.STAFF)
KEEPALIVE_S = 15
MAX_NOTES = 4000


@bp.before_request
@login_required
def _logged_in():
    """Every page needs a login; each view checks the role it serves."""


def _require(*roles: Role) -> None:
    if actor().role not in roles:
        abort(403)


def _presence() -> Presence:
    conf = current_app.config["SETTINGS"].agents
    return Presence(current_app.extensions["redis"], wrap_up_s=conf.wrap_up_s,
                    max_missed=conf.max_missed)


def _agents():
    return db.session.scalars(select_visible(User).where(User.role == Role.AGENT)
                              .order_by(User.sip_extension, User.id)).all()


def _snapshots(user_ids) -> dict:
    try:
        return {uid: s.as_dict() for uid, s in _presence().many(user_ids).items()}
    except redis.RedisError as exc:
        log.warning("presence unavailable: %s", exc)
        return {}


# --- transfer groups (转接组) ---------------------------------------------------------------
@bp.get("/groups")
def groups():
    _require(*STAFF)
    rows = db.session.scalars(select_visible(TransferGroup).order_by(TransferGroup.id)).all()
    members: dict[int, list] = {g.id: [] for g in rows}
    for m, u in db.session.execute(
            db.select(TransferGroupMember, User).join(User, User.id == TransferGroupMember.user_id)
            .where(TransferGroupMember.group_id.in_(list(members) or [0]))
            .order_by(TransferGroupMember.position, TransferGroupMember.id)).all():
        members[m.group_id].append(u)
    edit_id = request.args.get("edit", type=int)
    editing = next((g for g in rows if g.id == edit_id), None)
    agents = _agents()
    lines = db.session.scalars(select_visible(Line).order_by(Line.id)).all()
    return render_template("agents/groups.html", groups=rows, members=members, agents=agents,
                           lines=lines, editing=editing, strategies=list(TransferStrategy),
                           chosen=[u.id for u in members.get(edit_id, [])],
                           presence=_snapshots(u.id for u in agents))


@bp.post("/groups")
def save_group():
    _require(*STAFF)
    form = request.form
    group_id = form.get("group_id", type=int)
    group = get_visible_or_404(TransferGroup, group_id) if group_id else None
    name = form.get("name", "").strip()[:120]
    strategy = form.get("strategy", "")
    ring = form.get("ring_timeout_s", type=int)
    remote_number = form.get("remote_number", "").strip()[:32] or None
    line_id = form.get("remote_line_id", type=int)
    agents = {u.id: u for u in _agents()}
    # Members in the order the form lists them (顺序 strategy tries them top-down).
    chosen = [int(x) for x in form.getlist("members") if x.isdigit() and int(x) in agents]
    back = url_for("agents.groups", edit=group_id) if group_id else url_for("agents.groups")
    if not name:
        flash(_("A group name is required."), "danger")
        return redirect(back)
    if strategy not in set(TransferStrategy):
        flash(_("Choose a strategy."), "danger")
        return redirect(back)
    if ring is None or not 5 <= ring <= 120:
        flash(_("The ring timeout is 5 to 120 seconds."), "danger")
        return redirect(back)
    if strategy == TransferStrategy.REMOTE and not remote_number:
        flash(_("The remote strategy needs a number to call."), "danger")
        return redirect(back)
    if line_id is not None:
        get_visible_or_404(Line, line_id)
    if group is None:
        group = TransferGroup(account_id=actor().account_id)
        db.session.add(group)
    group.name, group.strategy, group.ring_timeout_s = name, TransferStrategy(strategy), ring
    group.remote_number, group.remote_line_id = remote_number, line_id
    group.music = form.get("music", "").strip()[:255] or None
    db.session.flush()
    db.session.execute(db.delete(TransferGroupMember)
                       .where(TransferGroupMember.group_id == group.id))
    for position, uid in enumerate(dict.fromkeys(chosen)):
        db.session.add(TransferGroupMember(account_id=group.account_id, group_id=group.id,
                                           user_id=uid, position=position))
    audit("transfer_group_save", group, name=name, strategy=strategy, members=chosen)
    db.session.commit()
    flash(_("Transfer group %(name)s saved.", name=name), "success")
    return redirect(url_for("agents.groups"))


@bp.post("/groups/<int:group_id>/delete")
def delete_group(group_id: int):
    _require(*STAFF)
    group = get_visible_or_404(TransferGroup, group_id)
    audit("transfer_group_delete", group, name=group.name)
    db.session.delete(group)
    db.session.commit()
    flash(_("Transfer group %(name)s deleted.", name=group.name), "success")
    return redirect(url_for("agents.groups"))


# --- agents: extensions, SIP passwords, presence ----------------------------------------------
@bp.get("/")
def agents():
    _require(*STAFF)
    rows = _agents()
    return render_template("agents/agents.html", agents=rows,
                           presence=_snapshots(u.id for u in rows))


@bp.post("/<int:user_id>/extension")
def save_extension(user_id: int):
    _require(Role.ADMIN)
    agent = get_visible_or_404(User, user_id)
    if agent.role != Role.AGENT:
        abort(404)
    ext = request.form.get("sip_extension", "").strip()
    if not (ext.isdigit() and 2 <= len(ext) <= 16):
        flash(_("An extension is 2 to 16 digits."), "danger")
        return redirect(url_for("agents.agents"))
    taken = db.session.scalar(db.select(User.id).where(User.sip_extension == ext,
                                                       User.id != agent.id))
    if taken:
        flash(_("Extension %(ext)s is taken.", ext=ext), "danger")
        return redirect(url_for("agents.agents"))
    agent.sip_extension = ext
    if request.form.get("new_password") or not agent.sip_password:
        agent.sip_password = secrets.token_urlsafe(12)
    audit("agent_extension", agent, extension=ext)
    db.session.commit()
    flash(_("Extension %(ext)s saved for %(name)s.", ext=ext, name=agent.username), "success")
    return redirect(url_for("agents.agents"))


@bp.post("/<int:user_id>/presence")
def set_agent_presence(user_id: int):
    """An administrator sets an agent offline (or back online)."""
    _require(*STAFF)
    agent = get_visible_or_404(User, user_id)
    if agent.role != Role.AGENT:
        abort(404)
    return _set_presence(agent.id, request.form.get("state", ""), redirect_to="agents.agents")


# --- the agent's own workbench ----------------------------------------------------------------
def _me_agent() -> User:
    if current_user.role != Role.AGENT:
        abort(403)
    return current_user


def _set_presence(user_id: int, state: str, redirect_to: str | None = None):
    if state not in {str(s) for s in MANUAL_STATES}:
        abort(400)
    try:
        out = _presence().set_state(user_id, state, reason="")
    except redis.RedisError:
        if redirect_to is None:
            return jsonify(error=_("Presence is unavailable, try again.")), 503
        flash(_("Presence is unavailable, try again."), "danger")
        return redirect(url_for(redirect_to))
    if redirect_to is not None:
        return redirect(url_for(redirect_to))
    return jsonify(result=out, presence=_presence().get(user_id).as_dict())


@bp.get("/phone")
def phone():
    """坐席工作台: the browser phone, presence and the screen pop."""
    agent = _me_agent()
    snap = _snapshots([agent.id]).get(agent.id)
    return render_template("agents/phone.html", agent=agent, presence=snap,
                           states=[str(s) for s in MANUAL_STATES])


@bp.get("/phone/config")
def phone_config():
    """The agent's SIP account for JsSIP (never embedded in the page's HTML)."""
    agent = _me_agent()
    conf = current_app.config["SETTINGS"].agents
    wss = conf.sip_wss_url or f"wss://{request.host.split(':')[0]}:7443"
    domain = conf.sip_domain or urlsplit(wss).hostname
    resp = jsonify(extension=agent.sip_extension, password=agent.sip_password,
                   domain=domain, wss_url=wss,
                   display_name=agent.display_name or agent.username)
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.post("/me/presence")
def my_presence():
    agent = _me_agent()
    payload = request.get_json(silent=True) or request.form
    return _set_presence(agent.id, str(payload.get("state", "")))


@bp.post("/me/registration")
def my_registration():
    """The browser phone tells whether its SIP registration is up (so that an agent whose
    phone is not registered is not offered calls)."""
    agent = _me_agent()
    payload = request.get_json(silent=True) or {}
    try:
        _presence().set_registered(agent.id, bool(payload.get("registered")))
    except redis.RedisError:
        return jsonify(error=_("Presence is unavailable, try again.")), 503
    return jsonify(ok=True)


@bp.get("/me/events")
def my_events():
    """Server-Sent Events: the agent's presence now, the last screen pop, then whatever is
    published on `cc:agent:<user_id>` (presence changes, screen pops)."""
    agent = _me_agent()
    conn = current_app.extensions["redis"]
    user_id = agent.id
    presence = _presence()

    def stream():
        pubsub = conn.pubsub(ignore_subscribe_messages=True)
        try:
            pubsub.subscribe(agent_channel(user_id))
            snap = presence.get(user_id).as_dict()
            yield f"data: {json.dumps({'type': 'presence', **snap})}\n\n"
            last = conn.get(last_pop_key(user_id))
            if last:
                yield f"data: {last.decode()}\n\n"
            quiet_since = time.monotonic()
            while True:
                message = pubsub.get_message(timeout=KEEPALIVE_S)
                if message is None:  # nothing, or a subscribe confirmation
                    if time.monotonic() - quiet_since >= KEEPALIVE_S:
                        quiet_since = time.monotonic()
                        yield ": keep-alive\n\n"
                    continue
                quiet_since = time.monotonic()
                data = message["data"]
                yield f"data: {data.decode() if isinstance(data, bytes) else data}\n\n"
        except redis.RedisError as exc:
            log.warning("agent %s event stream: %s", user_id, exc)
            yield "event: error\ndata: {}\n\n"
        finally:
            pubsub.close()

    return Response(stream_with_context(stream()), mimetype="text/event-stream",
                    headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


@bp.post("/calls/<call_uuid>/notes")
def save_notes(call_uuid: str):
    """The notes box of the screen pop, saved to the call (the agent who writes them is
    recorded as the call's agent if none is yet)."""
    _require(Role.AGENT, *STAFF)
    call = db.session.scalar(select_visible(Call).where(Call.uuid == call_uuid))
    if call is None:
        abort(404)
    payload = request.get_json(silent=True) or request.form
    notes = str(payload.get("notes", ""))[:MAX_NOTES]
    call.agent_notes = notes
    if call.agent_id is None and actor().role == Role.AGENT:
        call.agent_id = actor().id
    audit("call_agent_notes", call, length=len(notes))
    db.session.commit()
    return jsonify(ok=True, saved=len(notes))


@bp.app_template_global()
def agent_state_label(state: str) -> str:
    return {
        AgentState.OFFLINE: _("Offline"), AgentState.AVAILABLE: _("Online"),
        AgentState.RINGING: _("Ringing"), AgentState.IN_CALL: _("In a call"),
        AgentState.WRAP_UP: _("Wrap-up"), AgentState.BREAK: _("On break"),
    }.get(state, state)


@bp.app_template_global()
def strategy_label(strategy: str) -> str:
    return {
        TransferStrategy.AVERAGE: _("Average (least calls, longest idle)"),
        TransferStrategy.ORDER: _("Order (top-down)"),
        TransferStrategy.RANDOM: _("Random"),
        TransferStrategy.REMOTE: _("Remote (an external number)"),
    }.get(strategy, strategy)

