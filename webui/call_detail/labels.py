"""Display names for the call detail's stored values, translated (zh first)."""

from flask_babel import lazy_gettext as _l

from core.enums import HangupSide, Speaker
from core.transfer import FailReason

SPEAKER = {Speaker.ROBOT: _l("AI"), Speaker.CALLEE: _l("Customer"), Speaker.AGENT: _l("Agent")}
HANGUP_SIDE = {
    HangupSide.CALLEE: _l("Customer"),
    HangupSide.ROBOT: _l("AI"),
    HangupSide.AGENT: _l("Agent"),
    HangupSide.SYSTEM: _l("System"),
}
GRADE_SOURCE = {"auto": _l("Automatic"), "manual": _l("Set by hand"), "llm": _l("LLM")}
TRANSFER_REASON = {
    FailReason.NO_MEMBERS: _l("The transfer group has no members"),
    FailReason.ALL_BUSY: _l("All agents busy"),
    FailReason.NO_ANSWER: _l("No agent answered"),
    FailReason.CUSTOMER_HUNG_UP: _l("The customer hung up first"),
    FailReason.BRIDGE_FAILED: _l("The agent answered but the call could not be joined"),
    FailReason.SWITCH_ERROR: _l("Switch error"),
}
