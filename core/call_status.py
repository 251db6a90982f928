"""Call status (呼叫状态, FEATURES.md C2) from what the switch reports, and a call's live state.

`classify()` is the one mapping from (SIP code, Hang-up cause, answered?, announcement class)
to the seed's statuses. It is used by the controller when a call ends and by the CDR
reconciliation (core/cdr.py). Anything it does not know returns None: the call keeps its raw
SIP code and cause and the console shows those, nothing is guessed. The table is documented
in controller/README.md; tests/core/test_call_status.py pins every row.

Decision order (after CPA.md §6):

1. answered → 呼叫成功, unless the announcement class says a call-screening assistant
   answered (用户屏蔽);
2. an announcement class from an early-media detector (关机, 空号, 停机 …) → its status;
3. the SIP final response code, when it has a status of its own;
4. the Hang-up cause (Q.850 name as FreeSWITCH writes it);
5. otherwise None.
"""

from __future__ import annotations

from enum import StrEnum

from core.enums import CallStatus


class CallState(StrEnum):
    """Where one attempt is in its life (the controller's state machine, persisted on the
    call row and published for the console)."""

    ORIGINATING = "originating"
    RINGING = "ringing"
    EARLY_MEDIA = "early_media"
    ANSWERED = "answered"
    IN_DIALOGUE = "in_dialogue"
    TRANSFERRING = "transferring"
    BRIDGED = "bridged"
    ENDED = "ended"


# Announcement classes (CPA.md §2: the 19 categories carriers' recordings fall into) → status.
# Classes absent here (无法接通, 网络忙, 稍后再拨 …) say nothing certain: the SIP/cause
# reading decides.
ANNOUNCEMENTS: dict[str, CallStatus] = {
    "关机": CallStatus.POWERED_OFF,
    "空号": CallStatus.VACANT,
    "停机": CallStatus.SUSPENDED,
    "暂停服务": CallStatus.SUSPENDED,
    "用户正忙": CallStatus.BUSY,
    "正在通话中": CallStatus.BUSY,
    "用户拒接": CallStatus.REJECTED,
    "呼入限制": CallStatus.BARRED,
    "欠费": CallStatus.ARREARS,
    "无人接听": CallStatus.NO_ANSWER,
    "来电提醒": CallStatus.SCREENED,
    "智能助理": CallStatus.SCREENED,
    "用户屏蔽": CallStatus.SCREENED,
    "运营商拦截": CallStatus.CARRIER_BLOCKED,
}
# Classes that, heard after answer, mean a screening assistant picked up rather than a person.
SCREENING = frozenset({"来电提醒", "智能助理", "用户屏蔽"})

# SIP final responses with a meaning of their own (RFC 3261/8197/8688).
SIP_CODES: dict[int, CallStatus] = {
    403: CallStatus.CARRIER_BLOCKED,  # Forbidden: the carrier refuses our line
    404: CallStatus.VACANT,  # Not Found
    604: CallStatus.VACANT,  # Does Not Exist Anywhere
    408: CallStatus.NO_ANSWER,  # Request Timeout
    480: CallStatus.NO_ANSWER,  # Temporarily Unavailable
    486: CallStatus.BUSY,  # Busy Here
    600: CallStatus.BUSY,  # Busy Everywhere
    603: CallStatus.REJECTED,  # Decline
    607: CallStatus.REJECTED,  # Unwanted (the callee marked us)
    608: CallStatus.CARRIER_BLOCKED,  # Rejected by an intermediary (call-blocking service)
    502: CallStatus.FAILED,  # Bad Gateway
    503: CallStatus.FAILED,  # Service Unavailable
}

# Hang-up causes (FreeSWITCH's names for Q.850 and its own codes).
CAUSES: dict[str, CallStatus] = {
    "UNALLOCATED_NUMBER": CallStatus.VACANT,
    "USER_BUSY": CallStatus.BUSY,
    "NO_USER_RESPONSE": CallStatus.NO_ANSWER,
    "NO_ANSWER": CallStatus.NO_ANSWER,  # also our own originate timeout
    "CALL_REJECTED": CallStatus.REJECTED,
    "SUBSCRIBER_ABSENT": CallStatus.POWERED_OFF,  # Q.850 20: mobile switched off / detached
    "INCOMING_CALL_BARRED": CallStatus.BARRED,
    "OUTGOING_CALL_BARRED": CallStatus.CARRIER_BLOCKED,
    "NORMAL_TEMPORARY_FAILURE": CallStatus.FAILED,
    "NETWORK_OUT_OF_ORDER": CallStatus.FAILED,
    "DESTINATION_OUT_OF_ORDER": CallStatus.FAILED,
    "NORMAL_CIRCUIT_CONGESTION": CallStatus.FAILED,
    "SWITCH_CONGESTION": CallStatus.FAILED,
    "GATEWAY_DOWN": CallStatus.FAILED,
    "INVALID_GATEWAY": CallStatus.FAILED,
}


def classify(sip_code: int | None, hangup_cause: str | None, answered: bool,
             announcement: str | None = None) -> CallStatus | None:
    """The status of one finished attempt, or None when the inputs do not say.

    `sip_code` is the final response (sip_term_status / sip_invite_failure_status),
    `hangup_cause` FreeSWITCH's cause name, `answered` whether CHANNEL_ANSWER was seen (or
    billsec/answer time > 0), `announcement` a detector's class name (CPA.md §2) if any.
    """
    cause = (hangup_cause or "").strip().upper() or None
    if answered:
        if announcement in SCREENING:
            return CallStatus.SCREENED
        return CallStatus.ANSWERED
    if announcement and announcement in ANNOUNCEMENTS:
        return ANNOUNCEMENTS[announcement]
    if sip_code == 487 and cause == "NO_ANSWER":
        return CallStatus.NO_ANSWER  # our ring timeout cancelled the INVITE
    if sip_code in SIP_CODES:
        return SIP_CODES[sip_code]
    if cause in CAUSES:
        return CAUSES[cause]
    return None


def describe(status: str | None, sip_code: int | None, hangup_cause: str | None) -> str:
    """What the console shows: the status, or the raw code and cause when there is none."""
    if status:
        return str(status)
    raw = " ".join(str(p) for p in (sip_code, hangup_cause) if p)
    return raw or "unknown"
