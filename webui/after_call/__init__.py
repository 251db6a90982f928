"""After the call (后续动作, issue 10): post-call rules, SMS templates, push groups, lead
allocation rules, task quotas, the messages sent, and the SMS / WeCom providers.

The console only writes rows; the after-call jobs (workers/after_call.py) do the sending.
Provider secrets are stored per account and only ever shown masked."""

from __future__ import annotations

import hmac
import json
import secrets as secrets_module

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import login_required
from sqlalchemy import func, or_

from core import allocation, clock, post_call, quota
from core.enums import CallStatus, Grade, Role
from core.models import (
    Call,
    Lead,
    LeadAllocationRule,
    Outbox,
    PostCallRule,
    ProviderConfig,
    PushGroup,
    PushGroupMember,
    PushMessage,
    QuotaRule,
    SmsMessage,
    SmsTemplate,
    Task,
    User,
)
from core.outbox import JOBS, QUOTA_JOB, OutboxState
from core.push import PushState
from core.sms import mask, template_variables
from webui.extensions import csrf, db
from webui.security import actor, audit, get_visible_or_404, require_role, select_visible

bp = Blueprint("after_call", __name__, url_prefix="/after-call")
PER_PAGE = 30

# What each provider kind asks for; secrets are write-only in the console.
SETTING_FIELDS = {
    "outbox": (),
    "http": ("url", "method", "content_type", "headers", "body", "success_contains",
             "id_field", "report_id_field", "report_msgid_field", "report_status_field",
             "report_success_values"),
    "aliyun": ("endpoint", "region"),
    "wecom_robot": ("console_url", "api_base"),
    "wecom_app": ("corp_id", "agent_id", "console_url", "api_base"),
}
SECRET_FIELDS = {"outbox": (), "http": ("token",), "aliyun": ("access_key_id",
                                                             "access_key_secret"),
                 "wecom_robot": ("key",), "wecom_app": ("corp_secret",)}
CHANNEL_OF = {"outbox": None, "http": "sms", "aliyun": "sms", "wecom_robot": "push",
              "wecom_app": "push"}


PUBLIC = {"after_call.seen", "after_call.sms_report"}


@bp.before_request
def _staff_only():
    """Every page but the notice's "seen" link and the providers' delivery reports needs an
    administrator or staff member."""
    if request.endpoint in PUBLIC:
        return None
    return login_required(require_role(Role.ADMIN, Role.STAFF)(lambda: None))()


def _rows(model, order=None):
    return db.session.scalars(select_visible(model).order_by(order or model.id)).all()


def _own(model, row_id, account_id):
    """A row the user sees, of `account_id` (references may not cross accounts)."""
    row = get_visible_or_404(model, row_id)
    if row.account_id != account_id:
        abort(400)
    return row


def _staff():
    return db.session.scalars(select_visible(User).where(
        User.active.is_(True), User.role != Role.AGENT).order_by(User.id)).all()


def _int(name, default=None):
    value = request.form.get(name, "").strip()
    return int(value) if value.lstrip("-").isdigit() else default


# --- a call's after-call results (the call detail) -----------------------------------------

_JOB_KIND = {job: str(kind) for kind, job in JOBS.items()} | {QUOTA_JOB: "quota"}


@bp.app_template_global()
def after_call_actions(call) -> list[dict]:
    """Each after-call job of `call` but its SMS and notices (those are on call.sms /
    call.push): allocation, redial, quota check, with their state and what they did or why
    not. The caller has already checked that the user may see `call`."""
    if not getattr(call, "id", None):
        return []
    rows = db.session.scalars(db.select(Outbox).where(
        Outbox.call_id == call.id, Outbox.job.in_([j for j, k in _JOB_KIND.items()
                                                   if k not in ("sms", "push")]))
        .order_by(Outbox.id)).all()
    if not rows:
        return []
    lead = db.session.scalar(db.select(Lead).where(Lead.call_id == call.id))
    owner = db.session.get(User, lead.owner_id) if lead and lead.owner_id else None
    out = []
    for row in rows:
        kind = _JOB_KIND[row.job]
        state = {OutboxState.DONE: "success", OutboxState.FAILED: "failed"}.get(
            row.state, "queued")
        note = row.last_error or ""
        if kind == "allocate" and row.state == OutboxState.DONE and not note and lead:
            note = _("Allocated to %(name)s", name=owner.display_name or owner.username) \
                if owner else _("Put in the pool")
        elif kind == "redial" and row.state == OutboxState.DONE and not note:
            note = _("Requeued")
        elif state == "queued" and note:
            note = _("Waiting: %(why)s", why=note)
        out.append({"kind": kind, "state": state, "note": note})
    return out


# --- providers ---------------------------------------------------------------------------

@bp.route("/providers", methods=["GET", "POST"])
@require_role(Role.ADMIN)
def providers():
    if request.method == "POST":
        form = request.form
        kind = form.get("kind", "")
        if kind not in SETTING_FIELDS:
            abort(400)
        if pid := _int("id"):
            row = get_visible_or_404(ProviderConfig, pid)
            kind = row.kind
        else:
            row = ProviderConfig(account_id=actor().account_id, kind=kind,
                                 channel=CHANNEL_OF[kind] or form.get("channel", "sms"))
            db.session.add(row)
        row.name = form.get("name", "").strip()[:120] or kind
        settings = {}
        for field in SETTING_FIELDS[kind]:
            value = form.get(f"s_{field}", "").strip()
            if field == "headers" and value:
                try:
                    value = json.loads(value)
                    assert isinstance(value, dict)
                except (ValueError, AssertionError):
                    flash(_("Headers must be a JSON object."), "danger")
                    db.session.rollback()
                    return redirect(url_for("after_call.providers"))
            if value:
                settings[field] = value
        # The delivery-report URL's token (Aliyun SmsReport HTTP push): kept across edits.
        settings["report_token"] = (row.settings or {}).get("report_token") \
            or secrets_module.token_urlsafe(24)
        row.settings = settings
        secrets = dict(row.secrets or {})
        for field in SECRET_FIELDS[kind]:
            if value := form.get(f"x_{field}", "").strip():  # empty: keep the stored one
                secrets[field] = value
        row.secrets = secrets
        row.daily_cap_per_number = max(0, _int("daily_cap_per_number", 0))
        row.enabled = form.get("enabled") == "on"
        row.is_default = form.get("is_default") == "on"
        db.session.flush()
        if row.is_default:
            db.session.execute(db.update(ProviderConfig).where(
                ProviderConfig.account_id == row.account_id,
                ProviderConfig.channel == row.channel, ProviderConfig.id != row.id)
                .values(is_default=False))
        audit("provider_save", row, kind=kind, secrets=sorted(secrets))  # names, never values
        db.session.commit()
        flash(_("Provider %(name)s saved.", name=row.name), "success")
        return redirect(url_for("after_call.providers"))
    edit = get_visible_or_404(ProviderConfig, request.args.get("edit", type=int)) \
        if request.args.get("edit") else None
    kind = edit.kind if edit else request.args.get("kind", "http")
    if kind not in SETTING_FIELDS:
        kind = "http"
    return render_template("after_call/providers.html", rows=_rows(ProviderConfig), edit=edit,
                           kind=kind, kinds=list(SETTING_FIELDS), setting_fields=SETTING_FIELDS,
                           secret_fields=SECRET_FIELDS, mask=mask)


# --- SMS templates -----------------------------------------------------------------------

@bp.route("/templates", methods=["GET", "POST"])
def templates():
    if request.method == "POST":
        form = request.form
        if tid := _int("id"):
            row = get_visible_or_404(SmsTemplate, tid)
        else:
            row = SmsTemplate(account_id=actor().account_id)
        row.name = form.get("name", "").strip()[:120]
        row.signature = form.get("signature", "").strip().strip("【】")[:32]
        row.body = form.get("body", "").strip()
        row.provider_template_code = form.get("provider_template_code", "").strip()[:64]
        provider_id = _int("provider_id")
        row.provider_id = _own(ProviderConfig, provider_id, row.account_id).id \
            if provider_id else None
        if not (row.name and row.signature and row.body):
            db.session.rollback()
            flash(_("Name, signature and text are required."), "danger")
            return redirect(url_for("after_call.templates"))
        db.session.add(row)
        db.session.flush()
        audit("sms_template_save", row, name=row.name)
        db.session.commit()
        flash(_("Template %(name)s saved.", name=row.name), "success")
        return redirect(url_for("after_call.templates"))
    edit = get_visible_or_404(SmsTemplate, request.args.get("edit", type=int)) \
        if request.args.get("edit") else None
    sms_providers = [p for p in _rows(ProviderConfig) if p.channel == "sms"]
    return render_template("after_call/templates.html", rows=_rows(SmsTemplate), edit=edit,
                           providers=sms_providers, variables=template_variables)


@bp.post("/<any(templates, rules, push_groups, allocation, quotas, providers):kind>"
         "/<int:row_id>/delete")
def delete(kind: str, row_id: int):
    model = {"templates": SmsTemplate, "rules": PostCallRule, "push_groups": PushGroup,
             "allocation": LeadAllocationRule, "quotas": QuotaRule,
             "providers": ProviderConfig}[kind]
    if kind == "providers" and actor().role != Role.ADMIN:
        abort(403)
    row = get_visible_or_404(model, row_id)
    audit(f"{model.__tablename__}_delete", row)
    db.session.delete(row)
    db.session.commit()
    flash(_("Deleted."), "success")
    return redirect(url_for(f"after_call.{kind}"))


# --- post-call rules ---------------------------------------------------------------------

CONDITION_ROWS = 6


def _conditions_from_form(form) -> dict:
    advanced = form.get("advanced", "").strip()
    if advanced:
        return json.loads(advanced)
    items = []
    for i in range(CONDITION_ROWS):
        field, op, raw = (form.get(f"c{i}_field", ""), form.get(f"c{i}_op", ""),
                          form.get(f"c{i}_value", "").strip())
        if not field or not raw:
            continue
        if field in post_call.NUMBER_FIELDS:
            value = float(raw) if "." in raw else int(raw)
        else:
            value = [v for v in raw.replace("，", ",").replace(" ", ",").split(",") if v]
        items.append({"field": field, "op": op, "value": value})
    return {"match": "any" if form.get("match") == "any" else "all", "items": items}


def _rules_url(task_id=None):
    return url_for("after_call.rules", task_id=task_id) if task_id \
        else url_for("after_call.rules")


@bp.route("/rules", methods=["GET", "POST"])
def rules():
    """All post-call rules, or with ?task_id= one task's page (后续动作配置 of the task): its
    own rules and the all-task rules that also apply to it; the tasks pages link here."""
    if request.method == "POST":
        form = request.form
        back = _rules_url(_int("back_task_id"))
        if rid := _int("id"):
            row = get_visible_or_404(PostCallRule, rid)
        else:
            row = PostCallRule(account_id=actor().account_id)
        task_id = _int("task_id")
        row.task_id = _own(Task, task_id, row.account_id).id if task_id else None
        row.name = form.get("name", "").strip()[:120] or _("Rule")
        row.enabled = form.get("enabled") == "on"
        row.position = _int("position", 0)
        try:
            row.conditions = _conditions_from_form(form)
        except ValueError:
            db.session.rollback()
            flash(_("The conditions are not valid."), "danger")
            return redirect(back)
        actions = []
        if tid := _int("sms_template_id"):
            actions.append({"type": "sms",
                            "template_id": _own(SmsTemplate, tid, row.account_id).id})
        for gid in form.getlist("push_group_ids"):
            if gid.isdigit():
                actions.append({"type": "push",
                                "group_id": _own(PushGroup, int(gid), row.account_id).id})
        if aid := _int("allocation_rule_id"):
            actions.append({"type": "allocate",
                            "rule_id": _own(LeadAllocationRule, aid, row.account_id).id})
        if (delay := _int("redial_minutes")) is not None and delay >= 0 \
                and form.get("redial") == "on":
            actions.append({"type": "redial", "delay_minutes": delay})
        row.actions = actions
        if problems := post_call.validate(row.conditions, actions):
            db.session.rollback()
            for p in problems:
                flash(p, "danger")
            return redirect(back)
        db.session.add(row)
        db.session.flush()
        audit("post_call_rule_save", row, name=row.name)
        db.session.commit()
        flash(_("Rule %(name)s saved.", name=row.name), "success")
        return redirect(back)
    edit = get_visible_or_404(PostCallRule, request.args.get("edit", type=int)) \
        if request.args.get("edit") else None
    tasks = _rows(Task)
    for_task = get_visible_or_404(Task, request.args.get("task_id", type=int)) \
        if request.args.get("task_id") else None
    stmt = select_visible(PostCallRule).order_by(PostCallRule.position, PostCallRule.id)
    if for_task is not None:
        stmt = stmt.where(PostCallRule.account_id == for_task.account_id,
                          or_(PostCallRule.task_id == for_task.id,
                              PostCallRule.task_id.is_(None)))
    items = (edit.conditions or {}).get("items", []) if edit else []
    flat = all("items" not in i for i in items) and len(items) <= CONDITION_ROWS
    prefill = [dict(i, value=",".join(map(str, i["value"])) if isinstance(i.get("value"), list)
                    else i.get("value")) for i in items] if flat else []
    advanced = "" if flat else json.dumps(edit.conditions, ensure_ascii=False)
    return render_template(
        "after_call/rules.html", prefill=prefill, advanced=advanced,
        rows=db.session.scalars(stmt).all(), edit=edit, for_task=for_task,
        tasks=tasks, task_names={t.id: t.name for t in tasks}, templates=_rows(SmsTemplate),
        groups=_rows(PushGroup), allocations=_rows(LeadAllocationRule),
        fields=post_call.FIELDS, number_fields=post_call.NUMBER_FIELDS,
        list_fields=post_call.LIST_FIELDS, number_ops=list(post_call.NUMBER_OPS),
        choice_ops=list(post_call.CHOICE_OPS), list_ops=list(post_call.LIST_OPS),
        condition_rows=CONDITION_ROWS, grades=list(Grade), statuses=list(CallStatus),
        json=json)


# --- push groups -------------------------------------------------------------------------

@bp.route("/push-groups", methods=["GET", "POST"])
def push_groups():
    if request.method == "POST":
        form = request.form
        if gid := _int("id"):
            group = get_visible_or_404(PushGroup, gid)
        else:
            group = PushGroup(account_id=actor().account_id)
        group.name = form.get("name", "").strip()[:120] or _("Push group")
        strategy = form.get("strategy", "average")
        group.strategy = strategy if strategy in allocation.PUSH_STRATEGIES else "average"
        pid = _int("provider_id")
        group.provider_id = _own(ProviderConfig, pid, group.account_id).id if pid else None
        db.session.add(group)
        db.session.flush()
        wanted = [int(u) for u in form.getlist("user_ids") if u.isdigit()]
        allowed = {u.id for u in _staff() if u.account_id == group.account_id}
        existing = {m.user_id: m for m in db.session.scalars(
            db.select(PushGroupMember).where(PushGroupMember.group_id == group.id))}
        for uid, member in existing.items():
            if uid not in wanted:
                db.session.delete(member)
        for position, uid in enumerate(u for u in wanted if u in allowed):
            member = existing.get(uid) or PushGroupMember(
                account_id=group.account_id, group_id=group.id, user_id=uid)
            member.position = position
            member.wecom_userid = form.get(f"wecom_{uid}", "").strip()[:64]
            db.session.add(member)
        audit("push_group_save", group, name=group.name, members=wanted)
        db.session.commit()
        flash(_("Push group %(name)s saved.", name=group.name), "success")
        return redirect(url_for("after_call.push_groups"))
    groups = _rows(PushGroup)
    members: dict[int, list] = {}
    for m in db.session.scalars(select_visible(PushGroupMember).order_by(
            PushGroupMember.position)):
        members.setdefault(m.group_id, []).append(m)
    stats: dict[int, dict] = {}
    for gid, state, n in db.session.execute(
            select_visible(PushMessage).with_only_columns(
                PushMessage.group_id, PushMessage.state, func.count())
            .group_by(PushMessage.group_id, PushMessage.state)):
        stats.setdefault(gid, {})[state] = n
    edit = get_visible_or_404(PushGroup, request.args.get("edit", type=int)) \
        if request.args.get("edit") else None
    staff = _staff()
    return render_template(
        "after_call/push_groups.html", groups=groups, members=members, stats=stats, edit=edit,
        staff=staff, staff_names={u.id: u.display_name or u.username for u in staff},
        providers=[p for p in _rows(ProviderConfig) if p.channel == "push"],
        strategies=allocation.PUSH_STRATEGIES, states=list(PushState))


# --- lead allocation rules ---------------------------------------------------------------

@bp.route("/allocation", methods=["GET", "POST"], endpoint="allocation")
def allocation_rules():
    if request.method == "POST":
        form = request.form
        if rid := _int("id"):
            row = get_visible_or_404(LeadAllocationRule, rid)
        else:
            row = LeadAllocationRule(account_id=actor().account_id)
        row.name = form.get("name", "").strip()[:120] or _("Allocation rule")
        allowed = {u.id for u in _staff() if u.account_id == row.account_id}
        grades = {}
        for g in Grade:
            mode = form.get(f"mode_{g}", "none")
            users = [int(u) for u in form.getlist(f"users_{g}") if u.isdigit()]
            if mode != "none":
                grades[g.value] = {"mode": mode, "user_ids": [u for u in users if u in allowed]}
        if errors := allocation.validate_grades(grades, {g.value for g in Grade}, allowed):
            db.session.rollback()
            for grade, why in errors.items():
                flash(f"{grade}: {why}", "danger")
            return redirect(url_for("after_call.allocation"))
        if row.grades != grades:
            row.grades, row.state = grades, {}
        db.session.add(row)
        db.session.flush()
        chosen = {int(t) for t in form.getlist("task_ids") if t.isdigit()}
        for task in _rows(Task):
            if task.account_id != row.account_id:
                continue
            current = (task.lead_allocation or {}).get("rule_id")
            if task.id in chosen:
                task.lead_allocation = {"rule_id": row.id}
            elif current == row.id:
                task.lead_allocation = {}
        audit("lead_allocation_save", row, name=row.name)
        db.session.commit()
        flash(_("Allocation rule %(name)s saved.", name=row.name), "success")
        return redirect(url_for("after_call.allocation"))
    edit = get_visible_or_404(LeadAllocationRule, request.args.get("edit", type=int)) \
        if request.args.get("edit") else None
    staff = _staff()
    tasks = _rows(Task)
    return render_template(
        "after_call/allocation.html", rows=_rows(LeadAllocationRule), edit=edit, staff=staff,
        staff_names={u.id: u.display_name or u.username for u in staff}, tasks=tasks,
        grades=list(Grade), modes=allocation.LEAD_MODES)



# --- quotas ------------------------------------------------------------------------------

@bp.route("/quotas", methods=["GET", "POST"])
def quotas():
    if request.method == "POST":
        form = request.form
        row = QuotaRule(account_id=actor().account_id)
        task_id, target_id = _int("task_id"), _int("target_task_id")
        row.task_id = _own(Task, task_id, row.account_id).id if task_id else None
        row.target_task_id = _own(Task, target_id, row.account_id).id if target_id else None
        row.name = form.get("name", "").strip()[:120]
        row.grade = form.get("grade") if form.get("grade") in set(Grade) else None
        row.status = form.get("status") if form.get("status") in set(CallStatus) else None
        row.period = form.get("period") if form.get("period") in set(quota.Period) else "day"
        row.action = form.get("action") if form.get("action") in set(quota.QuotaAction) \
            else "pause"
        row.threshold = _int("threshold", 0)
        if row.threshold < 1:
            db.session.rollback()
            flash(_("The count must be at least 1."), "danger")
            return redirect(url_for("after_call.quotas"))
        db.session.add(row)
        db.session.flush()
        audit("quota_save", row, threshold=row.threshold)
        db.session.commit()
        flash(_("Quota saved."), "success")
        return redirect(url_for("after_call.quotas"))
    tasks = _rows(Task)
    return render_template("after_call/quotas.html", rows=_rows(QuotaRule), tasks=tasks,
                           task_names={t.id: t.name for t in tasks}, grades=list(Grade),
                           statuses=list(CallStatus), periods=list(quota.Period),
                           actions=list(quota.QuotaAction))


# --- messages sent, and the notice's "seen" link -----------------------------------------

@bp.get("/messages")
def messages():
    kind = request.args.get("kind", "sms")
    state = request.args.get("state", "")
    if kind == "push":
        stmt = select_visible(PushMessage).order_by(PushMessage.id.desc())
        if state:
            stmt = stmt.where(PushMessage.state == state)
        names = {u.id: u.display_name or u.username for u in _staff()}
    else:
        kind, names = "sms", {}
        stmt = select_visible(SmsMessage).order_by(SmsMessage.id.desc())
        if state:
            stmt = stmt.where(SmsMessage.state == state)
        if phone := request.args.get("phone", "").strip():
            stmt = stmt.where(SmsMessage.phone.contains(phone, autoescape=True))
    page = db.paginate(stmt, per_page=PER_PAGE, error_out=False)
    return render_template("after_call/messages.html", page=page, kind=kind, state=state,
                           names=names)


@bp.get("/seen/<token>")
@csrf.exempt
def seen(token: str):
    """The link in a staff notice: marks it seen, then opens the call in the records."""
    msg = db.session.scalar(db.select(PushMessage).where(PushMessage.token == token))
    if msg is None:
        abort(404)
    if msg.seen_at is None:
        msg.seen_at, msg.state = clock.now(), PushState.SEEN
        db.session.commit()
    call = db.session.get(Call, msg.call_id) if msg.call_id else None
    return redirect(url_for("call_detail.view", call_id=call.id) if call
                    else url_for("console.home"))


# Delivery reports: where a report keeps our message id (the request's out_id), the
# provider's id, the outcome, and which outcome values mean delivered. Aliyun's SmsReport
# format is the default; an HTTP gateway names its own fields in its settings.
REPORT_DEFAULTS = {"report_id_field": "out_id", "report_msgid_field": "biz_id",
                   "report_status_field": "success",
                   "report_success_values": "true,1,success,delivered,delivrd"}


def _reports():
    """The reports in the request: a JSON list or object, else the form or query fields
    (gateways that push one report per form POST or GET)."""
    body = request.get_json(silent=True)
    if body is None:
        fields = request.form if request.form else request.args
        body = fields.to_dict() if fields else None
    return [body] if isinstance(body, dict) else body


@bp.route("/sms-report/<int:provider_id>/<token>", methods=["GET", "POST"])
@csrf.exempt
def sms_report(provider_id: int, token: str):
    """Delivery reports pushed by the provider (Aliyun SmsReport format: a JSON list of
    {"biz_id", "out_id", "success", "err_code", "err_msg", …}; an HTTP gateway's own field
    names from its settings, see REPORT_DEFAULTS). The URL, with its token, is shown on the
    provider's row to paste into the provider's console. A report touches only messages
    of that provider's account sent through it (or through no provider row)."""
    provider = db.session.get(ProviderConfig, provider_id)
    expected = ((provider.settings or {}).get("report_token", "") if provider else "")
    if not expected or not hmac.compare_digest(expected, token):
        abort(404)
    reports = _reports()
    if not isinstance(reports, list):
        return {"code": 1, "msg": "expected a JSON list"}, 400
    conf = {k: (provider.settings or {}).get(k) or v for k, v in REPORT_DEFAULTS.items()}
    success_values = {v.strip().lower() for v in conf["report_success_values"].split(",")}
    for report in reports:
        if not isinstance(report, dict):
            continue
        out_id = str(report.get(conf["report_id_field"]) or "")
        biz_id = str(report.get(conf["report_msgid_field"]) or "")
        msg = None
        if out_id.isdigit():
            msg = db.session.get(SmsMessage, int(out_id))
        if msg is None and biz_id:
            msg = db.session.scalar(db.select(SmsMessage).where(
                SmsMessage.account_id == provider.account_id,
                SmsMessage.provider_message_id == biz_id))
        if msg is None or msg.account_id != provider.account_id \
                or msg.provider_id not in (None, provider.id) or msg.state == "queued":
            continue
        ok = str(report.get(conf["report_status_field"])).strip().lower() in success_values
        msg.state = "delivered" if ok else "failed"
        why = " ".join(str(report.get(k) or "") for k in ("err_code", "err_msg")).strip()
        msg.error = None if ok else f"delivery failed: {why}".strip()
        call = db.session.get(Call, msg.call_id) if msg.call_id else None
        if call is not None and call.sms:
            result = dict(call.sms, state="success" if ok else "failed",
                          delivered=ok)
            if not ok:
                result["reason"] = msg.error
            else:
                result.pop("reason", None)
            call.sms = result
    db.session.commit()
    return {"code": 0, "msg": "成功"}
