"""FreeSWITCH's JSON CDR (mod_json_cdr) reconciled into the call's row.

The CDR is the durable record of a call's timing: the controller writes a `Call` row (uuid =
the channel UUID) before it originates, and this fills in what the switch measured. A CDR
whose row is missing (the controller was down, or the call came in while it was away) makes
a new row from the cc_* channel variables the controller's originate and the inbound
dialplan set. The status comes from core.call_status unless the controller already set one.
Applying the same CDR again changes nothing.

A CDR that completes a call — it made the row, or the row has ended (the controller may have
ended it without its hang-up, so the status comes from here), or the dialogue's grade is
in — queues the call's after-call rules in the caller's transaction (`queue_after_call`,
safe to run again: the outbox is keyed per call and action). A call the controller still
drives and whose grade is not in yet is left to the controller: its final row runs the
rules once the dialogue's result is saved (controller/call_machine.py, "ending").

Variable values are percent-decoded, so CDRs from either `encode-values` setting read the
same (ours sends them plain, see fs_conf/templates/autoload_configs/json_cdr.conf.xml).
"""

from __future__ import annotations

import copy
import logging
import re
from datetime import UTC, datetime
from urllib.parse import unquote

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.call_status import CallState, classify
from core.enums import Direction, HangupSide
from core.models import Account, Call, Line, Task, TaskNumber
from core.outbox import enqueue_after_call

log = logging.getLogger(__name__)

# sip_hangup_disposition: who ended the SIP dialogue. recv_* came from the far end (the
# callee, or their carrier); send_* came from us.
_CALLEE_DISPOSITIONS = {"recv_bye", "recv_cancel", "recv_refuse"}
_OUR_DISPOSITIONS = {"send_bye", "send_cancel", "send_refuse"}
_SIP_CAUSE = re.compile(r"^sip:(\d{3})$")


class CdrError(ValueError):
    """The document is not a usable JSON CDR; the message says what is missing."""


def apply_cdr(session: Session, cdr: dict, fs_node: str | None = None) -> Call | None:
    """Reconcile `cdr` (mod_json_cdr's document) into its Call row, by channel UUID.

    Returns the row (added to `session`, not committed), or None when there is no row and
    the CDR does not say which account the call belongs to (logged; nothing is guessed).
    Raises CdrError when `cdr` has no variables or no uuid.
    """
    variables = cdr.get("variables") if isinstance(cdr, dict) else None
    if not isinstance(variables, dict):
        raise CdrError("CDR has no variables object")
    v = _Vars(variables)
    uuid = v.text("uuid")
    if not uuid:
        raise CdrError("CDR has no variables.uuid")

    call = session.scalar(select(Call).where(Call.uuid == uuid))
    if call is not None and call.cdr == cdr:
        return call  # the same CDR posted again (mod_json_cdr retries)
    if call is None:
        call = _new_call(session, v, cdr, fs_node)
        if call is None:
            return None

    _fill(call, v)
    call.fs_node = call.fs_node or fs_node
    call.cdr = copy.deepcopy(cdr)  # the row must not change with the caller's dict
    if call.state in (None, CallState.ENDED) or call.grade is not None:
        queue_after_call(session, call)
    return call


def queue_after_call(session: Session, call: Call) -> None:
    """core.outbox.enqueue_after_call for a finaliser (this module, controller/store.py), in
    a savepoint: a rule that fails — bad data, or a database error, which on PostgreSQL
    would abort the whole transaction — loses only its own jobs (logged), never the call's
    final record the caller's transaction is writing."""
    try:
        with session.begin_nested():
            enqueue_after_call(session, call)
    except Exception:  # noqa: BLE001 — the call record matters more than one rule
        log.exception("call %s: after-call rules failed", call.uuid)


class _Vars:
    def __init__(self, variables: dict):
        self._v = variables

    def text(self, name: str) -> str | None:
        value = self._v.get(name)
        if value is None or value == "":
            return None
        return unquote(str(value))

    def integer(self, name: str) -> int | None:
        value = self.text(name)
        return int(value) if value is not None and value.lstrip("-").isdigit() else None

    def time(self, name: str) -> datetime | None:
        """`<name>_uepoch` (µs), else `<name>_epoch` (s); 0 means it never happened."""
        micros = self.integer(f"{name}_uepoch")
        if micros is None:
            seconds = self.integer(f"{name}_epoch")
            micros = seconds * 1_000_000 if seconds is not None else None
        if not micros:
            return None
        return datetime.fromtimestamp(micros / 1_000_000, UTC)


def _sip_code(v: _Vars) -> int | None:
    code = v.integer("sip_term_status")
    if code is not None:
        return code
    for name in ("last_bridge_proto_specific_hangup_cause", "proto_specific_hangup_cause"):
        match = _SIP_CAUSE.match(v.text(name) or "")
        if match:
            return int(match.group(1))
    return None


def _hangup_side(v: _Vars) -> HangupSide | None:
    disposition = v.text("sip_hangup_disposition")
    if disposition in _CALLEE_DISPOSITIONS:
        return HangupSide.CALLEE
    if disposition == "send_bye":
        return HangupSide.ROBOT  # we hung up an answered call
    if disposition in _OUR_DISPOSITIONS:
        return HangupSide.SYSTEM  # we gave up ringing, or refused the call
    return None


def _fill(call: Call, v: _Vars) -> None:
    started, answered, ended = v.time("start"), v.time("answer"), v.time("end")
    progress = [t for t in (v.time("progress"), v.time("progress_media")) if t]
    call.originated_at = started or call.originated_at
    call.ringing_at = min(progress) if progress else call.ringing_at
    call.answered_at = answered
    call.ended_at = ended or call.ended_at
    call.talk_seconds = v.integer("billsec") or 0
    # Ringing lasts until answer, or until the end of an unanswered call.
    ring_end = answered or ended
    call.ring_seconds = round((ring_end - started).total_seconds()) if started and ring_end else 0
    call.sip_code = _sip_code(v)
    call.hangup_cause = v.text("hangup_cause")
    # The controller knows better (an agent, not the robot, may have hung up); keep its word.
    call.hangup_side = call.hangup_side or _hangup_side(v)
    call.recording_path = v.text("cc_recording_path") or call.recording_path
    # The controller may know more (a carrier announcement heard in early media): keep its
    # status; otherwise read it from the SIP code and cause.
    call.status = call.status or classify(call.sip_code, call.hangup_cause,
                                          answered=answered is not None)


def _owned_id(session: Session, model, row_id: int | None, account_id: int) -> int | None:
    """`row_id` if that row exists and belongs to the account; never link across accounts."""
    if row_id is None:
        return None
    row = session.get(model, row_id)
    if row is None or row.account_id != account_id:
        log.warning("CDR names %s %s, which is not account %s's; left out",
                    model.__tablename__, row_id, account_id)
        return None
    return row_id


def _profile(cdr: dict) -> dict:
    callflow = cdr.get("callflow")
    first = callflow[0] if isinstance(callflow, list) and callflow else callflow
    profile = first.get("caller_profile") if isinstance(first, dict) else None
    return profile if isinstance(profile, dict) else {}


def _new_call(session: Session, v: _Vars, cdr: dict, fs_node: str | None) -> Call | None:
    account_id = v.integer("cc_account_id")
    uuid = v.text("uuid")
    if account_id is None or session.get(Account, account_id) is None:
        log.warning("CDR %s has no Call row and no known cc_account_id (%r); not recorded",
                    uuid, v.text("cc_account_id"))
        return None
    profile = _profile(cdr)
    outbound = v.text("direction") != Direction.INBOUND
    destination = profile.get("destination_number")
    if outbound:
        # An answered outbound leg's caller profile shows the callee as caller
        # (channel_cid_flipped); the caller ID we sent is the originate variable.
        phone = destination
        caller_id = v.text("origination_caller_id_number") or profile.get("caller_id_number")
    else:
        # phone: always the customer's number; caller_id: ours, here the DID they called.
        phone, caller_id = profile.get("caller_id_number"), destination
    call = Call(
        account_id=account_id, uuid=uuid, fs_node=fs_node, state=CallState.ENDED,
        direction=Direction.OUTBOUND if outbound else Direction.INBOUND,
        # Column widths: a longer "number" is not a phone number anyway.
        phone=(phone or "")[:32], caller_id=caller_id[:32] if caller_id else None,
        task_id=_owned_id(session, Task, v.integer("cc_task_id"), account_id),
        task_number_id=_owned_id(session, TaskNumber, v.integer("cc_number_id"), account_id),
        line_id=_owned_id(session, Line, v.integer("cc_line_id"), account_id),
    )
    session.add(call)
    log.info("CDR %s recorded a call the controller had not written", uuid)
    return call
