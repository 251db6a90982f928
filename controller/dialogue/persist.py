"""Write a `DialogueResult` onto its Call row and add its DialogueTurn rows (in the caller's
transaction; the controller commits it before the call's final state).

The SMS a script asked for are not sent yet: they are hang-up SMS, written to the outbox
with the call's final row (core.outbox.enqueue_after_call reads them from
`Call.sms["script_templates"]`), so that whichever process finalises the call — this
controller, the one that takes the call over after a restart, the CDR — sends each once,
after the call."""

from __future__ import annotations

from core.models import Call, DialogueTurn


def apply_result(session, call: Call, result) -> None:
    call.grade = result.grade
    call.grade_source = "auto"
    call.grade_reasons = list(result.grade_reasons)
    call.tags = list(dict.fromkeys([*(call.tags or []), *result.tags]))
    call.score = result.score
    call.interactions = result.interactions
    call.unrecognised = result.unrecognised
    if result.hangup_side and not call.hangup_side:
        call.hangup_side = result.hangup_side
    if result.transfer:
        call.transfer = dict(result.transfer)
    if result.sms:
        asked = [*((call.sms or {}).get("script_templates") or ()), *result.sms]
        call.sms = {**(call.sms or {"state": "queued"}),
                    "script_templates": list(dict.fromkeys(asked))}
    for seq, turn in enumerate(result.turns, 1):
        session.add(DialogueTurn(
            account_id=call.account_id, call_id=call.id, seq=seq, speaker=turn.speaker,
            text=turn.text, node=(turn.node or None) and turn.node[:64],
            intent=(turn.intent or None) and turn.intent[:64], start_ms=int(turn.start_ms),
            end_ms=int(turn.end_ms), interrupted=bool(turn.interrupted)))
