"""Endpoints FreeSWITCH calls: mod_xml_curl (configuration, directory, dialplan) and
mod_json_cdr. Not for people: HTTP basic auth with FS_HTTP_SECRET (user `freeswitch`) from
an address in FS_HTTP_ALLOW only, and the node's name (FS_NODES) in the path."""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import re

from flask import Blueprint, Response, abort, current_app, jsonify, render_template, request
from markupsafe import Markup
from sqlalchemy import select

from core.cdr import CdrError, apply_cdr
from core.enums import Direction, Role, TaskState
from core.models import Line, Task, User
from fs_conf.gateways import node_gateways
from fs_conf.render import sofia_conf
from webui.extensions import db

log = logging.getLogger(__name__)
bp = Blueprint("freeswitch", __name__, url_prefix="/freeswitch", template_folder="templates")

FS_USER = "freeswitch"
# The context the external profile (trunks) routes into: fs_conf/templates/sip_profiles.
PUBLIC_CONTEXT = "public"


def _xml(template: str, **context) -> Response:
    return Response(render_template(f"freeswitch/{template}", **context), mimetype="text/xml")


def _not_found() -> Response:
    """FreeSWITCH then reads its own files (or the next binding)."""
    return _xml("not_found.xml")


def _equal(given: str | None, expected: str) -> bool:
    return hmac.compare_digest((given or "").encode(), expected.encode())


@bp.before_request
def _authenticate():
    settings = current_app.config["SETTINGS"]
    try:
        address = ipaddress.ip_address(request.remote_addr or "")
    except ValueError:
        abort(403, "no client address")
    address = getattr(address, "ipv4_mapped", None) or address
    if not any(address in net for net in settings.freeswitch.http_allow):
        log.warning("FreeSWITCH endpoint refused to %s: not in FS_HTTP_ALLOW", address)
        abort(403, "client address not in FS_HTTP_ALLOW")
    auth = request.authorization
    # Both comparisons always run, so timing does not tell which part was wrong.
    user_ok = _equal(auth.username if auth else None, FS_USER)
    secret_ok = _equal(auth.password if auth else None, settings.freeswitch.http_secret)
    if not (auth and auth.type == "basic" and user_ok and secret_ok):
        return Response("authentication required\n", 401,
                        {"WWW-Authenticate": 'Basic realm="freeswitch"'})
    if (request.view_args or {}).get("node") not in {n.name for n in settings.fs_nodes}:
        abort(404, "unknown FreeSWITCH node: not in FS_NODES")
    return None


@bp.errorhandler(400)
@bp.errorhandler(403)
@bp.errorhandler(404)
@bp.errorhandler(415)
def _error(exc):
    # FreeSWITCH logs the body of a failed request: say plainly what was wrong.
    return Response(f"{exc.description}\n", exc.code, mimetype="text/plain")


def _field(name: str) -> str:
    value = request.form.get(name, "").strip()
    if not value:
        abort(400, f"missing form field {name}")
    return value


@bp.post("/<node>/xml_curl")
def xml_curl(node: str):
    section = _field("section")
    if section == "configuration":
        return _configuration(node)
    if section == "directory":
        return _directory()
    if section == "dialplan":
        return _dialplan(node)
    return _not_found()


def _configuration(node: str) -> Response:
    if request.form.get("key_value") != "sofia.conf":
        return _not_found()
    # Markup: fs_conf's own templates already escaped every value in it.
    return _xml("configuration.xml",
                configuration=Markup(sofia_conf(node_gateways(db.session, node))))


def _directory() -> Response:
    """An agent's SIP account, for registration (action=sip_auth) or dialling (user_call)."""
    user, domain = request.form.get("user", ""), request.form.get("domain", "")
    if not (user and domain):
        return _not_found()  # gateway and network-list scans: nothing of ours
    agent = db.session.scalar(select(User).where(
        User.sip_extension == user, User.role == Role.AGENT, User.active.is_(True),
        User.sip_password.is_not(None), User.sip_password != ""))
    if agent is None:
        return _not_found()
    return _xml("directory.xml", domain=domain, agent=agent)


def _dialplan(node: str) -> Response:
    """The public context: a known inbound DID goes to the controller, anything else gets
    404. Other contexts are FreeSWITCH's own files (dialplan/*.xml)."""
    context = request.form.get("Hunt-Context") or request.form.get("Caller-Context")
    if context != PUBLIC_CONTEXT:
        return _not_found()
    number = (request.form.get("Hunt-Destination-Number")
              or _field("Caller-Destination-Number")).strip()
    bare = number.lstrip("+")
    lines = db.session.scalars(select(Line).where(
        Line.enabled.is_(True), Line.inbound_did.in_([number, bare, f"+{bare}"]),
        (Line.fs_node.is_(None)) | (Line.fs_node == node)).order_by(Line.id)).all()
    route = {"context": PUBLIC_CONTEXT, "number_regex": re.escape(number), "variables": []}
    if not lines:
        return _xml("dialplan.xml", name="unknown_did", respond="404 Not Found", **route)
    if len(lines) > 1:
        log.error("inbound DID %s is claimed by lines %s; refusing the call",
                  number, [line.id for line in lines])
        return _xml("dialplan.xml", name="ambiguous_did", respond="480 Temporarily Unavailable",
                    **route)
    line = lines[0]
    task_id = db.session.scalar(select(Task.id).where(
        Task.line_id == line.id, Task.account_id == line.account_id,
        Task.direction == Direction.INBOUND, Task.state == TaskState.RUNNING,
    ).order_by(Task.id.desc()).limit(1))
    variables = [("cc_account_id", line.account_id), ("cc_line_id", line.id)]
    if task_id is not None:
        variables.append(("cc_task_id", task_id))
    route["variables"] = variables
    return _xml("dialplan.xml", name=f"inbound_line_{line.id}", respond=None, **route)


@bp.post("/<node>/cdr")
def cdr(node: str):
    try:
        call = apply_cdr(db.session, _cdr_document(), fs_node=node)
    except CdrError as exc:
        abort(400, str(exc))
    db.session.commit()
    # 2xx also when the CDR was not recorded: posting it again would not change that.
    return jsonify({"call_id": call.id if call else None, "recorded": call is not None})


def _cdr_document() -> dict:
    """The CDR from mod_json_cdr's body: raw JSON (encode=false, ours) or the form field
    `cdr` (encode=true)."""
    if request.mimetype == "application/json":
        raw = request.get_data(as_text=True)
    elif request.mimetype == "application/x-www-form-urlencoded":
        raw = _field("cdr")
    else:
        abort(415, f"unsupported CDR encoding {request.mimetype!r}: set encode=false in "
                   "json_cdr.conf.xml")
    try:
        document = json.loads(raw)
    except ValueError as exc:
        abort(400, f"CDR is not valid JSON: {exc}")
    if not isinstance(document, dict):
        abort(400, "CDR must be a JSON object")
    return document
