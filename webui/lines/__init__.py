"""呼叫设置 → 线路 (FEATURES.md T2, T10, B3, B4): the SIP trunks tasks call out on and take
calls in through. Administrators manage them, staff see them, each within the accounts they
may see. A line becomes a gateway on FreeSWITCH (fs_conf.gateways, served by
webui/freeswitch through mod_xml_curl); after a change the page says what FreeSWITCH needs
and the console announces it on Redis (reload.py)."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import login_required

from core.enums import Direction, Role
from core.models import Account, Line
from core.redis_conn import publish_task_change
from fs_conf.gateways import GatewayError, gateway_from_line
from webui.extensions import db
from webui.lines.form import form_values, parse_form
from webui.lines.reload import Reload, publish_reload, reload_for, served
from webui.lines.rules import did_clash, gateway_clash, lowering_check
from webui.lines.usage import live_calls, possible_clashes, running_tasks, users_of
from webui.security import (
    account_ids,
    actor,
    audit,
    get_visible_or_404,
    require_role,
    select_visible,
)

bp = Blueprint("lines", __name__, url_prefix="/settings/lines")

# The columns the form edits (the account is chosen once, at creation).
COLUMNS = ("name", "direction", "gateway", "fs_node", "sip_proxy", "register", "sip_username",
           "sip_password", "caller_ids", "codecs", "max_concurrency", "inbound_did", "params")
NAMES_SHOWN = 5  # tasks named in a message; the rest are counted


@bp.before_request
@login_required
@require_role(Role.ADMIN, Role.STAFF)
def _staff_only():
    """Staff see the lines their tasks may use; each change below is for administrators."""


def _redis():
    return current_app.extensions["redis"]


def _accounts() -> list[Account]:
    return list(db.session.scalars(db.select(Account).where(Account.id.in_(account_ids()))
                                   .order_by(Account.id)))


def _nodes(line: Line | None) -> list[str]:
    """Nodes a line may be pinned to: FS_NODES, and the line's own even if it left them."""
    nodes = [n.name for n in current_app.config["SETTINGS"].fs_nodes]
    if line is not None and line.fs_node and line.fs_node not in nodes:
        nodes.append(line.fs_node)
    return nodes


def _names(rows) -> str:
    """Names of `rows` the user may see; other accounts' are only counted."""
    visible = set(account_ids())
    names = [row.name for row in rows if row.account_id in visible][:NAMES_SHOWN]
    more = len(rows) - len(names)
    if not names:
        return _("%(n)d of other accounts", n=more)
    joined = ", ".join(names)
    return _("%(names)s and %(n)d more", names=joined, n=more) if more else joined


def _owner(line: Line) -> str:
    if line.account_id in set(account_ids()):
        return _("line %(name)s", name=line.name)
    return _("a line of another account")


def _problems(candidate: Line, saved: Line | None = None) -> dict[str, str]:
    """What stops `candidate` from being saved (or enabled), by field. `saved` is the line as
    stored, when editing."""
    errors: dict[str, str] = {}
    try:
        gateway_from_line(candidate)
    except GatewayError as exc:
        errors["freeswitch"] = _("FreeSWITCH cannot use this line: %(reason)s", reason=str(exc))
    others = possible_clashes(candidate)
    if clash := gateway_clash(candidate, others):
        errors["gateway"] = _(
            "Gateway name %(gateway)s is already used by %(owner)s on the same FreeSWITCH "
            "node: gateway names are global on a node.",
            gateway=candidate.gateway, owner=_owner(clash))
    if clash := did_clash(candidate, others):
        errors["inbound_did"] = _(
            "Number %(did)s already comes in on %(owner)s on the same FreeSWITCH node: calls "
            "to it would be refused.", did=candidate.inbound_did, owner=_owner(clash))
    if saved is not None and candidate.max_concurrency < saved.max_concurrency:
        tasks = running_tasks([saved.id]).get(saved.id, [])
        check = lowering_check(candidate.max_concurrency, (t.max_concurrency for t in tasks))
        if not check.ok:
            errors["max_concurrency"] = _(
                "Not enough concurrency: running tasks %(tasks)s use %(used)d of this line, so "
                "its max concurrency cannot go below %(used)d. Pause them or lower their "
                "concurrency first.", tasks=_names(tasks), used=check.used)
    return errors


def _tell(line_id: int, reload: Reload) -> None:
    """After the commit: announce the gateway change, wake the controllers for the running
    tasks on the line (they re-read its concurrency, caller IDs and gateway), and tell the
    operator what FreeSWITCH needs."""
    conn = _redis()
    publish_reload(conn, line_id, reload)
    for task in running_tasks([line_id]).get(line_id, []):
        publish_task_change(conn, task.id, task.state)
    if not reload.needed:
        flash(_("FreeSWITCH needs nothing for this change."), "info")
        return
    steps = [f"fs_cli -x '{command}' ("
             + (_("on %(node)s", node=node) if node else _("on every node")) + ")"
             for node, command in reload.commands()]
    flash(_("Apply it on FreeSWITCH: %(steps)s", steps=" → ".join(steps)), "info")


@bp.get("")
def index():
    lines = db.session.scalars(select_visible(Line).order_by(Line.id)).all()
    ids = [line.id for line in lines]
    unusable = {}
    for line in lines:
        try:
            gateway_from_line(line)
        except GatewayError as exc:
            unusable[line.id] = str(exc)
    accounts = {a.id: a.name for a in _accounts()}
    return render_template("lines/index.html", lines=lines, running=running_tasks(ids),
                           live=live_calls(_redis(), ids), unusable=unusable,
                           accounts=accounts if len(accounts) > 1 else {},
                           can_manage=actor().role == Role.ADMIN)


@bp.route("/new", methods=["GET", "POST"])
@require_role(Role.ADMIN)
def new():
    return _form(None)


@bp.route("/<int:line_id>", methods=["GET", "POST"])
@require_role(Role.ADMIN)
def edit(line_id: int):
    return _form(get_visible_or_404(Line, line_id))


def _form(line: Line | None):
    accounts = _accounts()
    if request.method == "GET":
        shown = form_values(line) if line else {
            "direction": Direction.OUTBOUND, "max_concurrency": "10",
            "codecs": Line.__table__.c.codecs.default.arg,
            "account_id": str(actor().account_id)}
        return _render(line, shown, {}, accounts)
    values, errors = parse_form(request.form, _nodes(line))
    account_id = line.account_id if line else (request.form.get("account_id", type=int)
                                               or actor().account_id)
    if account_id not in {a.id for a in accounts}:
        errors["account_id"] = _("Choose an account you manage.")
    stored = {c: getattr(line, c) for c in COLUMNS} if line else {"sip_password": None}
    candidate = Line(id=line.id if line else None, account_id=account_id,
                     enabled=line.enabled if line else True, **{**stored, **values})
    if not errors:
        errors = _problems(candidate, line)
    if errors:
        shown = {k: v for k, v in request.form.items() if k != "sip_password"}
        return _render(line, shown, errors, accounts), 400

    before = served(line) if line else None
    if line is None:
        line = Line(account_id=account_id, enabled=True)
        db.session.add(line)
    changed = sorted(c for c in values if getattr(line, c, None) != values[c])
    for column, value in values.items():
        setattr(line, column, value)
    db.session.flush()
    # Which fields changed, never their values: the password is one of them.
    audit("line_save", line, name=line.name, gateway=line.gateway, changed=changed)
    db.session.commit()
    flash(_("Line %(name)s saved.", name=line.name), "success")
    _tell(line.id, reload_for(before, served(line)))
    return redirect(url_for("lines.index"))


def _render(line: Line | None, shown: dict, errors: dict, accounts: list[Account]):
    return render_template("lines/form.html", line=line, v=shown, errors=errors,
                           accounts=accounts, nodes=_nodes(line), directions=list(Direction),
                           has_password=bool(line and line.sip_password))


@bp.post("/<int:line_id>/enabled")
@require_role(Role.ADMIN)
def set_enabled(line_id: int):
    line = get_visible_or_404(Line, line_id)
    enable = request.form.get("enabled") == "1"
    if enable == line.enabled:
        return redirect(url_for("lines.index"))
    if enable and (errors := _problems(line)):
        for message in errors.values():
            flash(message, "danger")
        return redirect(url_for("lines.index"))
    before = served(line)
    line.enabled = enable
    audit("line_enable" if enable else "line_disable", line, name=line.name)
    db.session.commit()
    if enable:
        flash(_("Line %(name)s enabled.", name=line.name), "success")
    else:
        flash(_("Line %(name)s disabled.", name=line.name), "success")
        if tasks := running_tasks([line.id]).get(line.id):
            flash(_("Running tasks %(tasks)s take no new calls on this line until it is "
                    "enabled again; calls in progress finish.", tasks=_names(tasks)), "warning")
    _tell(line.id, reload_for(before, served(line)))
    return redirect(url_for("lines.index"))


@bp.post("/<int:line_id>/delete")
@require_role(Role.ADMIN)
def delete(line_id: int):
    line = get_visible_or_404(Line, line_id)
    tasks, groups = users_of(line)
    if tasks:
        flash(_("Line %(name)s is used by tasks %(tasks)s: give them another line first, or "
                "disable this line instead.", name=line.name, tasks=_names(tasks)), "danger")
        return redirect(url_for("lines.index"))
    if groups:
        flash(_("Line %(name)s is used by transfer groups %(groups)s: give them another line "
                "first, or disable this line instead.", name=line.name,
                groups=_names(groups)), "danger")
        return redirect(url_for("lines.index"))
    before = served(line)
    audit("line_delete", line, name=line.name, gateway=line.gateway)
    db.session.delete(line)
    db.session.commit()
    flash(_("Line %(name)s deleted.", name=line.name), "success")
    _tell(line_id, reload_for(before, None))
    return redirect(url_for("lines.index"))
