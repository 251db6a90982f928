"""Display names of the stored enum values, translated (zh first)."""

from flask_babel import lazy_gettext as _l

from core.enums import CallStatus, Grade, JobState, Role, TaskState

TASK_STATE = {
    TaskState.DRAFT: _l("Not started"),
    TaskState.RUNNING: _l("Running"),
    TaskState.PAUSED: _l("Paused"),
    TaskState.FINISHED: _l("Finished"),
}
CALL_STATUS = {
    CallStatus.ANSWERED: _l("Answered"),
    CallStatus.CARRIER_BLOCKED: _l("Blocked by carrier"),
    CallStatus.REJECTED: _l("Rejected"),
    CallStatus.NO_ANSWER: _l("No answer"),
    CallStatus.VACANT: _l("Vacant number"),
    CallStatus.POWERED_OFF: _l("Powered off"),
    CallStatus.SUSPENDED: _l("Suspended"),
    CallStatus.BUSY: _l("Busy"),
    CallStatus.BARRED: _l("Incoming calls barred"),
    CallStatus.ARREARS: _l("In arrears"),
    CallStatus.BLACKLISTED: _l("Blacklisted"),
    CallStatus.SCREENED: _l("Blocked by call screening"),
    CallStatus.FAILED: _l("Failed"),
}
GRADE = {
    Grade.A: _l("A: clear intent"),
    Grade.B: _l("B: possible intent"),
    Grade.C: _l("C: no intent"),
    Grade.D: _l("D: busy"),
    Grade.E: _l("E: other"),
    Grade.F: _l("F: AI assistant"),
}
ROLE = {Role.ADMIN: _l("Administrator"), Role.STAFF: _l("Staff"), Role.AGENT: _l("Agent")}
JOB_STATE = {
    JobState.QUEUED: _l("Queued"),
    JobState.RUNNING: _l("Running"),
    JobState.DONE: _l("Done"),
    JobState.FAILED: _l("Failed"),
}
