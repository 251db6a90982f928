"""The outbox (ARCHITECTURE.md): jobs that must not be lost while Redis is down are written to
the database in the same transaction as the change that calls for them; `workers.relay`
hands them to rq.

Exactly once, end to end:
1. Writing: each row has a unique key (call + rule + action); writing the same key again
   (the controller and the CDR both finalise a call) does nothing — INSERT … ON CONFLICT DO
   NOTHING, so the caller's transaction is never broken by a duplicate.
2. Relaying: a row is marked relayed only after rq accepted it; the rq job id is derived
   from the row id, so a relay that died between the two re-enqueues the same job id.
3. Running: jobs keep a delivery row per key (SmsMessage, PushMessage …) and claim it with a
   conditional UPDATE before sending; a job that runs again finds it sent and does nothing.

The finalisers call one function inside their transaction::

    from core.outbox import enqueue_after_call
    enqueue_after_call(session, call)   # after setting the call's final status and grade
"""

from __future__ import annotations

import logging
from datetime import datetime
from enum import StrEnum

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from core import clock, post_call
from core.models import Call, Outbox, PostCallRule, QuotaRule, Task

log = logging.getLogger(__name__)


class OutboxState(StrEnum):
    PENDING = "pending"  # written, not yet in rq
    RELAYED = "relayed"  # handed to rq
    DONE = "done"  # the job finished
    FAILED = "failed"  # the job failed for good (its delivery row says why)


JOBS = {
    post_call.ActionType.SMS: "workers.after_call.send_sms",
    post_call.ActionType.PUSH: "workers.after_call.push",
    post_call.ActionType.ALLOCATE: "workers.after_call.allocate_lead",
    post_call.ActionType.REDIAL: "workers.after_call.redial",
}
QUOTA_JOB = "workers.after_call.check_quotas"
SCRIPT = "script"  # the source in the keys of the SMS a call's script asked for


def job_id(row_id: int) -> str:
    """The rq job id of an outbox row: the same however often it is relayed."""
    return f"outbox-{row_id}"


def write(session: Session, *, account_id: int, key: str, job: str, args: list,
          queue: str = "calls", call_id: int | None = None,
          due_at: datetime | None = None) -> bool:
    """Add an outbox row unless one with `key` exists; True when this call added it.

    Runs in the caller's transaction (no commit). Uses the dialect's ON CONFLICT DO NOTHING
    (SQLite and PostgreSQL), so a concurrent writer of the same key cannot fail the
    caller's transaction.
    """
    now = clock.now()
    return insert_ignore(session, Outbox, "key", dict(
        account_id=account_id, key=key, job=job, args=args, queue=queue,
        state=OutboxState.PENDING, due_at=due_at or now, created_at=now, call_id=call_id,
        relay_count=0))


def insert_ignore(session: Session, model, unique_column: str, values: dict) -> bool:
    """INSERT `values` into `model`'s table unless a row with the same `unique_column`
    exists; True when this added the row. Never raises on the duplicate, so it is safe
    inside a caller's transaction while another process writes the same key."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:  # pragma: no cover - the project runs on these two
        raise RuntimeError(f"unsupported database {dialect}")
    values.setdefault("created_at", clock.now())
    # RETURNING, not rowcount: an ORM session reports rowcount -1 for this on psycopg.
    column = getattr(model, unique_column)
    stmt = insert(model).values(**values).on_conflict_do_nothing(
        index_elements=[unique_column]).returning(column)
    return session.execute(stmt).first() is not None


def rules_for(session: Session, call: Call) -> list[PostCallRule]:
    """Enabled rules that apply to `call`: its task's first, then the account's all-task
    rules, each in the operator's order."""
    stmt = select(PostCallRule).where(
        PostCallRule.account_id == call.account_id, PostCallRule.enabled.is_(True),
        or_(PostCallRule.task_id.is_(None), PostCallRule.task_id == call.task_id)
        if call.task_id else PostCallRule.task_id.is_(None))
    rules = list(session.scalars(stmt))
    rules.sort(key=lambda r: (r.task_id is None, r.position, r.id))
    return rules


def action_key(call_id: int, source: str, action: dict) -> str:
    kind = action["type"]
    return f"call:{call_id}:{source}:{kind}:{action.get(post_call.ACTION_TARGET[kind])}"


def enqueue_after_call(session: Session, call: Call) -> list[str]:
    """Evaluate the post-call rules for a finalised `call` and write their jobs to the outbox,
    in the caller's transaction (no commit). Safe to call more than once for the same call.

    Also writes the task's lead allocation (Task.lead_allocation {"rule_id": n}) when no
    rule allocates, the hang-up SMS the call's script asked for (Call.sms
    "script_templates", controller/dialogue/persist.py: one per template, beside the rules'
    one, which is left out when it is the same template), and a quota check when the
    account has quotas. Marks the call's sms / push results "queued" so the console shows
    them at once. Returns the keys written now.
    """
    if call.id is None:
        session.flush()
    done, scripted = _actions_written(session, call.id)
    asked = _script_templates(call)
    plan = []
    for rule, action in post_call.plan(rules_for(session, call), post_call.facts(call), done):
        if action["type"] == post_call.ActionType.SMS \
                and action.get("template_id") in scripted | set(asked):
            continue  # the script sends this very message
        plan.append((f"rule:{rule.id}", action))
    task = session.get(Task, call.task_id) if call.task_id else None
    rule_id = (task.lead_allocation or {}).get("rule_id") if task else None
    if rule_id and call.grade and post_call.ActionType.ALLOCATE not in done \
            and not any(a["type"] == "allocate" for _, a in plan):
        plan.append(("task", {"type": "allocate", "rule_id": int(rule_id)}))
    plan += [(SCRIPT, {"type": "sms", "template_id": t}) for t in asked]

    written = []
    for source, action in plan:
        kind = post_call.ActionType(action["type"])
        key = action_key(call.id, source, action)
        target = action.get(post_call.ACTION_TARGET[kind])
        if write(session, account_id=call.account_id, key=key, job=JOBS[kind],
                 args=[call.id, target, key], call_id=call.id):
            written.append(key)
        if kind == post_call.ActionType.SMS and not call.sms:
            call.sms = {"state": "queued"}
        if kind == post_call.ActionType.PUSH and not call.push:
            call.push = {"state": "queued"}

    has_quota = session.scalar(select(func.count()).select_from(QuotaRule).where(
        QuotaRule.account_id == call.account_id, QuotaRule.enabled.is_(True)))
    if has_quota:
        key = f"call:{call.id}:quota"
        if write(session, account_id=call.account_id, key=key, job=QUOTA_JOB,
                 args=[call.id, key], call_id=call.id):
            written.append(key)
    if written:
        log.info("call %s: %d after-call job(s) in the outbox", call.id, len(written))
    return written


def _actions_written(session: Session, call_id: int) -> tuple[set, set]:
    """The `post_call.once_token`s of the rules' actions already in the outbox for a call,
    and the templates of its script's SMS there. A call finalised again (the CDR after the
    controller, a status settled later) may now match a different rule; its second SMS or
    allocation must not be written under another key. The script's SMS are its own: they do
    not take the place of the rules' one hang-up SMS."""
    kinds = {job: kind for kind, job in JOBS.items()}
    tokens, scripted = set(), set()
    for job, args, key in session.execute(select(Outbox.job, Outbox.args, Outbox.key).where(
            Outbox.call_id == call_id, Outbox.job.in_(list(kinds)))):
        kind = kinds[job]
        target = args[1] if isinstance(args, list) and len(args) > 1 else None
        if key.startswith(f"call:{call_id}:{SCRIPT}:"):
            scripted.add(target)
        else:
            tokens.add(post_call.once_token({"type": kind, "group_id": target}))
    return tokens, scripted


def _script_templates(call: Call) -> list[int]:
    """The SMS templates the call's script asked for (ids; anything else is logged)."""
    asked = []
    for value in (call.sms or {}).get("script_templates") or ():
        if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
            asked.append(int(value))
        else:
            log.warning("call %s: the script's SMS template %r is no template id", call.id,
                        value)
    return list(dict.fromkeys(asked))


def finish(session: Session, key: str, state: OutboxState, error: str | None = None) -> None:
    """Record that the job of `key` finished (done) or failed for good."""
    session.execute(update(Outbox).where(Outbox.key == key).values(
        state=state, finished_at=clock.now(), last_error=error))


def note_error(session: Session, key: str, error: str) -> None:
    """Record a failed attempt that rq will retry."""
    session.execute(update(Outbox).where(Outbox.key == key).values(last_error=error[:2000]))
