"""Write a `DialogueResult` onto its Call row and add its DialogueTurn rows (in the caller's
transaction: the controller commits it with the call's final state)."""

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
    for seq, turn in enumerate(result.turns, 1):
        session.add(DialogueTurn(
            account_id=call.account_id, call_id=call.id, seq=seq, speaker=turn.speaker,
            text=turn.text, node=(turn.node or None) and turn.node[:64],
            intent=(turn.intent or None) and turn.intent[:64], start_ms=int(turn.start_ms),
            end_ms=int(turn.end_ms), interrupted=bool(turn.interrupted)))
