"""A dialogue result lands on the Call row and as DialogueTurn rows."""

import sqlalchemy as sa
from sqlalchemy.orm import Session

from controller.dialogue.persist import apply_result
from controller.dialogue.runtime import DialogueResult
from controller.dialogue.verbs import TurnLog
from core.db import make_engine
from core.models import Account, Call, DialogueTurn


def test_apply_result(db_url):
    engine = make_engine(db_url)
    with Session(engine) as s:
        acct = Account(name="A")
        s.add(acct)
        s.flush()
        call = Call(account_id=acct.id, uuid="u1", phone="13800000001", tags=["老客户"])
        s.add(call)
        s.flush()
        result = DialogueResult(
            turns=[TurnLog("robot", "您好", "opening", None, 100, 1500, True),
                   TurnLog("callee", "可以", "opening", "affirm", 1200, 1800)],
            grade="A", grade_reasons=["default rule 2", "tag 有意向"], tags=["有意向"],
            score=10, interactions=1, unrecognised=0, hangup_side="robot",
            end_reason="script", duration_ms=5000)
        apply_result(s, call, result)
        s.commit()
        call = s.scalar(sa.select(Call))
        assert (call.grade, call.grade_source, call.score) == ("A", "auto", 10)
        assert call.grade_reasons == ["default rule 2", "tag 有意向"]
        assert call.tags == ["老客户", "有意向"] and call.hangup_side == "robot"
        turns = s.scalars(sa.select(DialogueTurn).order_by(DialogueTurn.seq)).all()
        assert [(t.speaker, t.text, t.interrupted, t.intent) for t in turns] == [
            ("robot", "您好", True, None), ("callee", "可以", False, "affirm")]
        assert (turns[0].start_ms, turns[0].end_ms) == (100, 1500)
    engine.dispose()


def test_a_running_task_keeps_the_version_it_started_with(db_url):
    from datetime import timedelta

    from core import clock
    from core.dialogue.versions import pinned_version, save_version
    from core.models import Script, ScriptVersion

    engine = make_engine(db_url)
    with Session(engine) as s:
        acct = Account(name="A")
        s.add(acct)
        s.flush()
        script = Script(account_id=acct.id, name="s")
        s.add(script)
        s.flush()
        v1 = save_version(s, script, {"v": 1}, None)
        v1.created_at = clock.now() - timedelta(hours=2)
        started = clock.now() - timedelta(hours=1)
        save_version(s, script, {"v": 2}, None)
        s.commit()
        assert pinned_version(s, script.id, started).body == {"v": 1}
        assert pinned_version(s, script.id, None).body == {"v": 2}  # not started: current
        assert script.current_version == 2
        assert s.scalar(sa.select(sa.func.count()).select_from(ScriptVersion)) == 2
    engine.dispose()


def test_the_scripts_sms_wait_for_the_calls_final_row_and_are_queued_once(db_url):
    """The SMS a script node asked for are kept on the call (the dialogue ends before the
    call's final row, which may even be written by another controller); every finaliser's
    enqueue_after_call then writes one hang-up SMS job per template — beside a rule's SMS,
    unless the rule's is the same template — and never again."""
    from core.models import Outbox, PostCallRule, SmsTemplate
    from core.outbox import enqueue_after_call

    engine = make_engine(db_url)
    with Session(engine) as s:
        acct = Account(name="A")
        s.add(acct)
        s.flush()
        t1, t2, t3 = (SmsTemplate(account_id=acct.id, name=n, signature="云帆", body="感谢")
                      for n in "xyz")
        s.add_all([t1, t2, t3])
        s.flush()
        rule = PostCallRule(account_id=acct.id, name="A 发短信", conditions={
            "match": "all", "items": [{"field": "grade", "op": "in", "value": ["A"]}]},
            actions=[{"type": "sms", "template_id": t3.id}])
        s.add(rule)
        call = Call(account_id=acct.id, uuid="u1", phone="13800000001")
        s.add(call)
        s.flush()
        result = DialogueResult(
            turns=[], grade="A", grade_reasons=[], tags=[], score=0, interactions=0,
            unrecognised=0, hangup_side="robot", end_reason="script", duration_ms=0,
            sms=[t1.id, t2.id, t1.id, "x"])
        apply_result(s, call, result)
        s.commit()
        assert call.sms == {"state": "queued", "script_templates": [t1.id, t2.id, "x"]}
        assert s.scalar(sa.select(sa.func.count()).select_from(Outbox)) == 0  # not yet

        keys = enqueue_after_call(s, call)  # the final row's transaction
        assert sorted(k.split(":", 2)[2] for k in keys) == sorted(
            [f"rule:{rule.id}:sms:{t3.id}", f"script:sms:{t1.id}", f"script:sms:{t2.id}"])
        assert enqueue_after_call(s, call) == []  # the CDR, a restarted controller …
        call.sms = {"state": "success"}  # the worker's result replaces the request
        assert enqueue_after_call(s, call) == []
        jobs = s.scalars(sa.select(Outbox).order_by(Outbox.id)).all()
        assert {tuple(j.args[:2]) for j in jobs} == {(call.id, t1.id), (call.id, t2.id),
                                                     (call.id, t3.id)}
        assert {j.job for j in jobs} == {"workers.after_call.send_sms"}

        # The rule's SMS is the script's template: one message, the script's.
        other = Call(account_id=acct.id, uuid="u2", phone="13800000002", grade="A")
        s.add(other)
        s.flush()
        apply_result(s, other, DialogueResult(
            turns=[], grade="A", grade_reasons=[], tags=[], score=0, interactions=0,
            unrecognised=0, hangup_side="robot", end_reason="script", duration_ms=0,
            sms=[t3.id]))
        assert [k.split(":", 2)[2] for k in enqueue_after_call(s, other)] == [
            f"script:sms:{t3.id}"]
        s.commit()
    engine.dispose()

