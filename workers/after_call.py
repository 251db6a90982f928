"""After-call jobs (issue 10): hang-up SMS, staff notices, lead allocation, redial and quota
checks. The outbox relay enqueues them with (call id, target id, outbox key).

Each job is idempotent by its outbox key:
- deliveries (SMS, push) keep a row per key and claim it with a conditional UPDATE before
  sending, so a job run twice (relayed twice, retried, or on two workers at once) sends once;
- database-only jobs (allocation, redial, quotas) do their work and mark the outbox row done
  in one transaction, after checking it is not done already.

A failed delivery raises so rq records it and retries it with back-off (workers.relay); the
failure and its reason are written first to the delivery row and the call (call.sms /
call.push), which the console shows. Failures that no retry can fix (no template, daily cap,
number refused) end the retries at once.
"""

from __future__ import annotations

import logging
import secrets
from datetime import timedelta

from rq import get_current_job
from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from core import allocation, clock, quota
from core.db import session_factory
from core.enums import NumberState, TaskState
from core.models import (
    Account,
    Call,
    Lead,
    LeadAllocationRule,
    Outbox,
    ProviderConfig,
    PushGroup,
    PushGroupMember,
    PushMessage,
    QuotaRule,
    SmsMessage,
    SmsTemplate,
    Task,
    TaskNumber,
    User,
)
from core.outbox import OutboxState, finish, insert_ignore, note_error
from core.push import Notice, PushError, PushState
from core.push import build as build_push
from core.settings import get_settings
from core.sms import SmsError, SmsRequest, SmsState, call_variables, render
from core.sms import build as build_sms

log = logging.getLogger(__name__)

CLAIM_STALE = timedelta(minutes=5)  # a "sending" claim older than this was a dead worker


class DeliveryError(Exception):
    """A delivery failed; rq retries it unless it was the last attempt or cannot succeed."""


class DeliveryBusy(Exception):
    """Another worker is sending this delivery right now; try again later."""


def _factory():
    return session_factory(get_settings().database_url)


def _last_attempt(permanent: bool) -> bool:
    """Whether this failure ends the job; a permanent one also stops rq's retries."""
    job = get_current_job()
    if job is None:
        return True
    if permanent:
        job.retries_left = 0
    return not job.should_retry


def _done_already(session: Session, key: str) -> bool:
    row = session.scalar(select(Outbox).where(Outbox.key == key).with_for_update())
    return row is not None and row.state == OutboxState.DONE


def _finished(session: Session, key: str) -> bool:
    """The job of `key` ended already (done, or failed for good): a stray duplicate of it
    must not try the provider again."""
    state = session.scalar(select(Outbox.state).where(Outbox.key == key))
    return state in (OutboxState.DONE, OutboxState.FAILED)


def _claim(session: Session, model, row_id: int) -> bool:
    """Take a delivery row for sending: only from queued/failed, or a stale sending claim."""
    now = clock.now()
    result = session.execute(update(model).where(
        model.id == row_id,
        or_(model.state.in_(("queued", "failed")),
            (model.state == "sending") & (model.claimed_at < now - CLAIM_STALE)),
    ).values(state="sending", claimed_at=now, attempts=model.attempts + 1))
    return result.rowcount == 1


def _result(state: str, reason: str | None = None, **extra) -> dict:
    data = {"state": state, "at": clock.now().isoformat(), **extra}
    if reason:
        data["reason"] = reason
    return data


# --- hang-up SMS -----------------------------------------------------------------------

def _sms_provider(session: Session, template: SmsTemplate) -> ProviderConfig | None:
    if template.provider_id:
        row = session.get(ProviderConfig, template.provider_id)
        if row is not None and row.account_id == template.account_id and row.enabled:
            return row
    return session.scalar(select(ProviderConfig).where(
        ProviderConfig.account_id == template.account_id, ProviderConfig.channel == "sms",
        ProviderConfig.enabled.is_(True)).order_by(ProviderConfig.is_default.desc(),
                                                   ProviderConfig.id).limit(1))


def _sent_today(session: Session, msg: SmsMessage, zone: str) -> int:
    since = quota.period_start(quota.Period.DAY, clock.now(), zone)
    return session.scalar(select(func.count()).select_from(SmsMessage).where(
        SmsMessage.account_id == msg.account_id, SmsMessage.phone == msg.phone,
        SmsMessage.id != msg.id, SmsMessage.created_at >= since,
        SmsMessage.state.in_((SmsState.SENDING, SmsState.SENT, SmsState.DELIVERED))))


def send_sms(call_id: int, template_id: int, key: str) -> str:
    """Send the hang-up SMS of template `template_id` for call `call_id`, once."""
    factory = _factory()
    with factory() as s, s.begin():
        if _finished(s, key):
            return "already finished"
        call = s.get(Call, call_id)
        template = s.get(SmsTemplate, template_id)
        if call is None:
            finish(s, key, OutboxState.DONE, "call deleted")
            return "call deleted"
        if template is None or template.account_id != call.account_id:
            call.sms = _result("failed", "SMS template not found")
            finish(s, key, OutboxState.FAILED, "SMS template not found")
            return "failed: SMS template not found"
        provider = _sms_provider(s, template)
        cap = provider.daily_cap_per_number if provider else 0
        if cap:
            # Count and claim one at a time per account: two workers sending to the same
            # number at once would otherwise each count the other's message as not there.
            # NO KEY UPDATE on PostgreSQL, so rows that merely reference the account wait
            # for nothing.
            s.execute(select(Account.id).where(Account.id == call.account_id)
                      .with_for_update(key_share=True))
        task = s.get(Task, call.task_id) if call.task_id else None
        text, params = render(template.signature, template.body,
                              call_variables(call, task.name if task else ""))
        insert_ignore(s, SmsMessage, "key", dict(
            account_id=call.account_id, key=key, call_id=call.id, template_id=template.id,
            provider_id=provider.id if provider else None, phone=call.phone, content=text,
            state=SmsState.QUEUED, attempts=0))
        msg = s.scalar(select(SmsMessage).where(SmsMessage.key == key))
        if msg.state in (SmsState.SENT, SmsState.DELIVERED):
            finish(s, key, OutboxState.DONE)
            return f"already sent (message {msg.id})"
        if not _claim(s, SmsMessage, msg.id):
            raise DeliveryBusy(f"SMS {msg.id} is being sent by another worker")
        s.refresh(msg)
        zone = s.get(Account, call.account_id).timezone
        if cap and _sent_today(s, msg, zone) >= cap:
            reason = f"daily cap reached ({cap} per number)"
            msg.state, msg.error = SmsState.FAILED, reason
            call.sms = _result("failed", reason, message_id=msg.id, target=call.phone)
            finish(s, key, OutboxState.FAILED, reason)
            return "failed: " + reason
        request = SmsRequest(phone=call.phone, text=text, signature=template.signature,
                             template_code=template.provider_template_code, params=params,
                             out_id=str(msg.id))
        msg_id = msg.id

    error, permanent = None, False
    try:
        provider_id = (build_sms(provider) if provider else build_sms(_OUTBOX)).send(request)
    except SmsError as exc:
        error, permanent = str(exc), not exc.retryable
    except Exception as exc:  # noqa: BLE001 — a provider's bug must show, not stick "sending"
        log.exception("SMS %s: provider raised", msg_id)
        error = f"provider error: {type(exc).__name__}: {exc}"[:500]

    with factory() as s, s.begin():
        msg = s.get(SmsMessage, msg_id)
        call = s.get(Call, call_id)
        if error is None:
            if msg.state == SmsState.SENDING:  # else a delivery report came first: keep it
                msg.state, msg.error = SmsState.SENT, None
            msg.sent_at = clock.now()
            msg.provider_message_id = provider_id or None
            if call is not None:
                extra = {"delivered": msg.state == SmsState.DELIVERED} \
                    if msg.state != SmsState.SENT else {}
                call.sms = _result("success" if msg.state != SmsState.FAILED else "failed",
                                   msg.error, message_id=msg.id, target=call.phone,
                                   attempts=msg.attempts, **extra)
            finish(s, key, OutboxState.DONE)
            return f"sent (message {msg.id})"
        last = _last_attempt(permanent)
        msg.state, msg.error = SmsState.FAILED, error
        if call is not None:
            call.sms = _result("failed", error, message_id=msg.id, target=call.phone,
                               attempts=msg.attempts, retrying=not last)
        if last:
            finish(s, key, OutboxState.FAILED, error)
        else:
            note_error(s, key, error)
    raise DeliveryError(f"SMS {msg_id}: {error}")


class _OutboxConfig:
    kind, settings, secrets = "outbox", {}, {}


_OUTBOX = _OutboxConfig()


# --- staff notices (push groups) --------------------------------------------------------

def _console_url(provider: ProviderConfig | None) -> str:
    if provider is not None and (url := (provider.settings or {}).get("console_url")):
        return url.rstrip("/")
    cfg = get_settings()
    return f"http://{cfg.web_host}:{cfg.web_port}"


def _notice_text(call: Call, task: Task | None) -> tuple[str, str]:
    title = f"【{call.grade or '-'}级意向】{call.phone}"
    parts = [f"任务：{task.name}" if task else "", f"通话时长：{call.talk_seconds or 0}秒",
             f"交互次数：{call.interactions or 0}",
             "标签：" + "、".join(call.tags) if call.tags else ""]
    return title, "\n".join(p for p in parts if p)


def push(call_id: int, group_id: int, key: str) -> str:
    """Notify the staff of push group `group_id` chosen by its strategy about call `call_id`,
    once per chosen member."""
    factory = _factory()
    with factory() as s, s.begin():
        if _finished(s, key):
            return "already finished"
        call = s.get(Call, call_id)
        if call is None:
            finish(s, key, OutboxState.DONE, "call deleted")
            return "call deleted"
        group = s.scalar(select(PushGroup).where(PushGroup.id == group_id).with_for_update())
        if group is None or group.account_id != call.account_id:
            call.push = _result("failed", "push group not found")
            finish(s, key, OutboxState.FAILED, "push group not found")
            return "failed: push group not found"
        mine = PushMessage.key.startswith(key + ":u", autoescape=True)
        messages = list(s.scalars(select(PushMessage).where(mine).order_by(PushMessage.id)))
        if not messages:
            members = list(s.scalars(select(PushGroupMember).where(
                PushGroupMember.group_id == group.id).order_by(PushGroupMember.position,
                                                              PushGroupMember.id)))
            chosen, group.state = allocation.pick(group.strategy,
                                                  [m.user_id for m in members], group.state)
            if not chosen:
                call.push = _result("failed", "push group has no members")
                finish(s, key, OutboxState.FAILED, "push group has no members")
                return "failed: push group has no members"
            task = s.get(Task, call.task_id) if call.task_id else None
            title, text = _notice_text(call, task)
            for uid in chosen:
                insert_ignore(s, PushMessage, "key", dict(
                    account_id=call.account_id, key=f"{key}:u{uid}", call_id=call.id,
                    group_id=group.id, user_id=uid, content=f"{title}\n{text}",
                    state=PushState.QUEUED, attempts=0, token=secrets.token_urlsafe(24)))
            messages = list(s.scalars(select(PushMessage).where(mine)
                                      .order_by(PushMessage.id)))
        provider = s.get(ProviderConfig, group.provider_id) if group.provider_id else None
        if provider is not None and (provider.account_id != call.account_id
                                     or not provider.enabled):
            provider = None
        base = _console_url(provider)
        members = {m.user_id: m for m in s.scalars(select(PushGroupMember).where(
            PushGroupMember.group_id == group.id))}
        todo = []
        for m in messages:
            if m.state in (PushState.PUSHED, PushState.SEEN):
                continue
            if not _claim(s, PushMessage, m.id):
                raise DeliveryBusy(f"push {m.id} is being sent by another worker")
            user = s.get(User, m.user_id) if m.user_id else None
            member = members.get(m.user_id)
            title, _, text = m.content.partition("\n")
            todo.append((m.id, Notice(title=title, text=text, url=f"{base}/after-call/seen/"
                                      f"{m.token}",
                                      wecom_userid=member.wecom_userid if member else "",
                                      mobile=(user.phone or "") if user else "")))
        names = {m.id: m.user_id for m in messages}

    results = {}
    try:
        sender = build_push(provider)
    except PushError as exc:
        sender, results = None, {message_id: exc for message_id, _ in todo}
    for message_id, notice in todo if sender is not None else ():
        try:
            sender.send(notice)
            results[message_id] = None
        except PushError as exc:
            results[message_id] = exc
        except Exception as exc:  # noqa: BLE001 — shown as a failure, retried
            log.exception("push %s: provider raised", message_id)
            results[message_id] = PushError(
                f"provider error: {type(exc).__name__}: {exc}"[:500])

    with factory() as s, s.begin():
        errors = []
        permanent = True
        for message_id, exc in results.items():
            m = s.get(PushMessage, message_id)
            if exc is None:
                m.state, m.error, m.sent_at = PushState.PUSHED, None, clock.now()
            else:
                m.state, m.error = PushState.FAILED, str(exc)
                errors.append(str(exc))
                permanent = permanent and not exc.retryable
        call = s.get(Call, call_id)
        targets = [u for u in names.values() if u]
        staff = {u.id: u.display_name or u.username
                 for u in s.scalars(select(User).where(User.id.in_(targets)))}
        target = "、".join(staff.get(u, "") for u in targets)
        if not errors:
            if call is not None:
                call.push = _result("success", target=target)
            finish(s, key, OutboxState.DONE)
            return f"pushed to {target}"
        last = _last_attempt(permanent)
        if call is not None:
            call.push = _result("failed", "; ".join(errors), target=target, retrying=not last)
        if last:
            finish(s, key, OutboxState.FAILED, errors[0])
        else:
            note_error(s, key, errors[0])
    raise DeliveryError("push: " + "; ".join(errors))


# --- lead allocation, redial, quotas (database only) ------------------------------------

# Notes on a finished allocation's outbox row (the call detail shows them).
KEPT = "the lead already has an owner and keeps it"
NO_LEAD = "no lead for this grade"


def allocate_lead(call_id: int, rule_id: int, key: str) -> str:
    """Make or update the call's lead and give it to staff or the pool per rule `rule_id`.
    A lead that already has an owner keeps it."""
    with _factory()() as s, s.begin():
        if _done_already(s, key):
            return "already done"
        call = s.get(Call, call_id)
        rule = s.scalar(select(LeadAllocationRule).where(LeadAllocationRule.id == rule_id)
                        .with_for_update())
        if call is None or rule is None or rule.account_id != call.account_id:
            finish(s, key, OutboxState.FAILED, "call or allocation rule not found")
            return "failed: call or allocation rule not found"
        lead = s.scalar(select(Lead).where(Lead.account_id == call.account_id,
                                           Lead.phone == call.phone))
        if lead is not None and lead.owner_id is not None:
            lead.grade = call.grade or lead.grade
            finish(s, key, OutboxState.DONE, KEPT)
            return f"lead {lead.id} kept by user {lead.owner_id}"
        decision, rule.state = allocation.allocate(rule.grades, call.grade, rule.state)
        if not decision.make_lead:
            finish(s, key, OutboxState.DONE, NO_LEAD)
            return "no lead for this grade"
        if lead is None:
            lead = Lead(account_id=call.account_id, phone=call.phone,
                        name=str((call.variables or {}).get("name", ""))[:120],
                        source="call", task_id=call.task_id)
            s.add(lead)
        lead.grade, lead.call_id, lead.owner_id = call.grade, call.id, decision.owner_id
        lead.assigned_at = clock.now() if decision.owner_id else None
        s.flush()
        finish(s, key, OutboxState.DONE)
        return f"lead {lead.id} to {decision.owner_id or 'pool'}"


# A post-call redial rule may requeue one number this many times: a rule like "no answer →
# redial in an hour" would otherwise call a number that never answers for ever.
MAX_POST_CALL_REDIALS = 3
REQUEUED = "requeued"  # how a redial's note starts when it did requeue the number


def _redials_done(session: Session, number_id: int) -> int:
    return session.scalar(select(func.count()).select_from(Outbox).join(
        Call, Call.id == Outbox.call_id).where(
        Call.task_number_id == number_id, Outbox.job == "workers.after_call.redial",
        Outbox.state == OutboxState.DONE,
        or_(Outbox.last_error.is_(None), Outbox.last_error.startswith(REQUEUED))))


def redial(call_id: int, delay_minutes: int, key: str) -> str:
    """Put the call's number back into its task's queue after `delay_minutes` (加入重呼), as
    the dialer expects it: state pending with next_attempt_at (controller.store.claim).

    Only a settled number (done) is requeued: one the dialer is calling again or has
    queued already (the task's own redial rule, core.pacing.settle_number) is left alone, so
    the number is never dialled twice at once; a skipped (blacklisted) one stays skipped. A
    task that finished meanwhile (its last number was this one) becomes paused, as 重呼 does
    (core.task_service.redial), so it can be started again. The outcome is the outbox row's
    note (shown on the call)."""
    with _factory()() as s, s.begin():
        if _done_already(s, key):
            return "already done"
        call = s.get(Call, call_id)
        number = s.scalar(select(TaskNumber).where(TaskNumber.id == call.task_number_id)
                          .with_for_update()) if call and call.task_number_id else None
        if number is None or number.account_id != call.account_id:
            finish(s, key, OutboxState.DONE, "no task number")
            return "no task number"
        latest = s.scalar(select(func.max(Call.id)).where(
            Call.task_number_id == number.id))
        if number.state != NumberState.DONE or latest != call.id:
            note = f"not requeued: the number is {number.state}" \
                if number.state != NumberState.DONE else \
                "not requeued: the number was called again since"
            finish(s, key, OutboxState.DONE, note)
            return note
        if _redials_done(s, number.id) >= MAX_POST_CALL_REDIALS:
            note = f"not requeued: redial limit reached ({MAX_POST_CALL_REDIALS})"
            finish(s, key, OutboxState.DONE, note)
            return note
        number.state = NumberState.PENDING
        number.next_attempt_at = clock.now() + timedelta(minutes=int(delay_minutes or 0))
        task = s.get(Task, number.task_id)
        reopened = task is not None and task.state == TaskState.FINISHED
        if reopened:
            task.state, task.finished_at = TaskState.PAUSED, None
        finish(s, key, OutboxState.DONE, f"{REQUEUED}; the task had finished and is paused"
               " now: start it to dial the number" if reopened else None)
    if reopened:
        from core.redis_conn import connect, publish_task_change

        try:
            publish_task_change(connect(get_settings().redis_url), task.id, task.state)
        except Exception:  # noqa: BLE001 — the change is committed; consoles poll anyway
            log.warning("redial: could not publish task %s change", task.id)
    return f"number {number.id} queued again" + (f"; task {task.id} paused" if reopened
                                                  else "")


def check_quotas(call_id: int, key: str) -> str:
    """Apply the account's quotas (任务暂停) after call `call_id`: pause or start tasks
    whose count is reached, once per period. Publishes each change to the controllers."""
    from core.redis_conn import connect, publish_task_change
    from core.task_service import TaskStateError, pause_task, start_task

    changed: list[tuple[int, str]] = []
    notes = []
    with _factory()() as s, s.begin():
        if _done_already(s, key):
            return "already done"
        call = s.get(Call, call_id)
        if call is None:
            finish(s, key, OutboxState.DONE, "call deleted")
            return "call deleted"
        zone = s.get(Account, call.account_id).timezone
        now = clock.now()
        rules = s.scalars(select(QuotaRule).where(
            QuotaRule.account_id == call.account_id, QuotaRule.enabled.is_(True),
            or_(QuotaRule.task_id.is_(None), QuotaRule.task_id == call.task_id))
            .with_for_update())
        all_tasks = None
        for rule in rules:
            stmt = select(func.count()).select_from(Call).where(
                Call.account_id == call.account_id)
            if rule.task_id:
                stmt = stmt.where(Call.task_id == rule.task_id)
            if rule.grade:
                stmt = stmt.where(Call.grade == rule.grade)
            if rule.status:
                stmt = stmt.where(Call.status == rule.status)
            if since := quota.period_start(rule.period, now, zone):
                stmt = stmt.where(Call.created_at >= since)
            if all_tasks is None:
                all_tasks = list(s.scalars(select(Task.id).where(
                    Task.account_id == call.account_id, Task.state.in_(
                        (TaskState.RUNNING, TaskState.PAUSED)))))
            decision = quota.decide(rule, s.scalar(stmt), now, zone, all_tasks)
            if decision is None:
                continue
            rule.fired_on = decision.fired_on
            for task_id in decision.task_ids:
                task = s.get(Task, task_id)
                if task is None or task.account_id != call.account_id:
                    continue
                before = task.state
                try:
                    (pause_task if decision.action == quota.QuotaAction.PAUSE
                     else start_task)(s, task)
                except TaskStateError as exc:
                    notes.append(f"task {task.id}: {exc}")
                    continue
                if task.state != before:
                    changed.append((task.id, task.state))
        notes += [f"task {tid} → {st}" for tid, st in changed]
        finish(s, key, OutboxState.DONE, "; ".join(notes) or None)
    if changed:
        conn = connect(get_settings().redis_url)
        for task_id, state in changed:
            publish_task_change(conn, task_id, state)
    return "changed " + ", ".join(f"task {t} → {st}" for t, st in changed) if changed \
        else "no quota reached"
