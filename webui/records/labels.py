"""Words of the call records: column titles and the filters' choices, translated (zh first)."""

from flask_babel import lazy_gettext as _l

from core.call_query import CARRIERS
from webui import labels
from webui.call_detail.labels import HANGUP_SIDE

COLUMNS = {
    "phone": _l("Phone number"),
    "task": _l("Task"),
    "created_at": _l("Call time"),
    "status": _l("Call status"),
    "grade": _l("Grade"),
    "talk_seconds": _l("Talk time"),
    "ring_seconds": _l("Ring time"),
    "interactions": _l("Interactions"),
    "tags": _l("Tags"),
    "transfer": _l("Transfer to agent"),
    "push": _l("WeChat notice"),
    "sms": _l("Hang-up SMS"),
    "region": _l("Region"),
    "carrier": _l("Carrier"),
    "gender": _l("Gender"),
    "hangup_side": _l("Hang-up side"),
    "viewed": _l("Viewed"),
    "score": _l("Score"),
    "unrecognised": _l("Unrecognised turns"),
    "caller_id": _l("Caller ID"),
    "agent": _l("Agent"),
    "agent_notes": _l("Agent notes"),
    "variables": _l("Imported variables"),
    "answered_at": _l("Answered at"),
    "ended_at": _l("Ended at"),
    "number_created": _l("Number created"),
}
TRANSFER = {"success": _l("Transferred"), "failed": _l("Transfer failed"),
            "none": _l("No transfer")}
PUSH = {"seen": _l("Seen"), "pushed": _l("Pushed, not seen"), "failed": _l("Push failed"),
        "none": _l("No notice")}
SMS = {"sent": _l("SMS sent"), "failed": _l("SMS failed"), "none": _l("No SMS")}
GENDER = {"male": _l("Male"), "female": _l("Female"), "unknown": _l("Unknown")}
CARRIER = dict(zip(CARRIERS, (_l("China Mobile"), _l("China Unicom"), _l("China Telecom"),
                              _l("China Broadnet")), strict=True))
VIEWED = {"yes": _l("Viewed"), "no": _l("Not viewed")}


def value_words() -> dict[str, dict[str, str]]:
    """Every stored value a column turns into words, in the current language, as plain
    strings (an export job gets them in its arguments)."""
    kinds = {"status": labels.CALL_STATUS, "grade": labels.GRADE, "hangup_side": HANGUP_SIDE,
             "transfer": TRANSFER, "push": PUSH, "sms": SMS, "gender": GENDER,
             "viewed": VIEWED}
    return {kind: {str(k): str(v) for k, v in words.items()} for kind, words in kinds.items()}
