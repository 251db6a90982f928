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
from sqlalchemy import func

from core import allocation, clock, post_call, quota
from core.enums import CallStatus, Grade, Role
from core.models import (
    Call,
    LeadAllocationRule,
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
             "id_field"),
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


@bp.route("/rules", methods=["GET", "POST"])
def rules():
    if request.method == "POST":
        form = request.form
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
            return redirect(url_for("after_call.rules"))
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
            return redirect(url_for("after_call.rules"))
        db.session.add(row)
        db.session.flush()
        audit("post_call_rule_save", row, name=row.name)
        db.session.commit()
        flash(_("Rule %(name)s saved.", name=row.name), "success")
        return redirect(url_for("after_call.rules"))
    edit = get_visible_or_404(PostCallRule, request.args.get("edit", type=int)) \
        if request.args.get("edit") else None
    tasks = _rows(Task)
    items = (edit.conditions or {}).get("items", []) if edit else []
    flat = all("items" not in i for i in items) and len(items) <= CONDITION_ROWS
    prefill = [dict(i, value=",".join(map(str, i["value"])) if isinstance(i.get("value"), list)
                    else i.get("value")) for i in items] if flat else []
    advanced = "" if flat else json.dumps(edit.conditions, ensure_ascii=False)
    return render_template(
        "after_call/rules.html", prefill=prefill, advanced=advanced, rows=_rows(PostCallRule, PostCallRule.position), edit=edit,
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


@bp.post("/sms-report/<int:provider_id>/<token>")
@csrf.exempt
def sms_report(provider_id: int, token: str):
    """Delivery reports pushed by the provider (Aliyun SmsReport format: a JSON list of
    {"biz_id", "out_id", "success", "err_code", "err_msg", …}). The URL, with its token, is
    shown on the provider's row to paste into the provider's console."""
    provider = db.session.get(ProviderConfig, provider_id)
    expected = ((provider.settings or {}).get("report_token", "") if provider else "")
    if not expected or not hmac.compare_digest(expected, token):
        abort(404)
    reports = request.get_json(silent=True)
    if isinstance(reports, dict):
        reports = [reports]
    if not isinstance(reports, list):
        return {"code": 1, "msg": "expected a JSON list"}, 400
    for report in reports:
        if not isinstance(report, dict):
            continue
        out_id, biz_id = str(report.get("out_id") or ""), str(report.get("biz_id") or "")
        msg = None
        if out_id.isdigit():
            msg = db.session.get(SmsMessage, int(out_id))
        if msg is None and biz_id:
            msg = db.session.scalar(db.select(SmsMessage).where(
                SmsMessage.provider_message_id == biz_id))
        if msg is None or msg.account_id != provider.account_id:
            continue
        ok = report.get("success") in (True, "true", "True", 1, "1")
        msg.state = "delivered" if ok else "failed"
        msg.error = None if ok else \
            f"delivery failed: {report.get('err_code', '')} {report.get('err_msg', '')}".strip()
        call = db.session.get(Call, msg.call_id) if msg.call_id else None
        if call is not None and call.sms:
            result = dict(call.sms, state="success" if ok else "failed",
                          delivered=ok)
            if not ok:
                result["reason"] = msg.error
            call.sms = result
    db.session.commit()
    return {"code": 0, "msg": "成功"}
