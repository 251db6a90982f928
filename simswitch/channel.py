"""Channel state and variables, and the channel-data headers FreeSWITCH puts in events.

No I/O here: ``Channel`` holds what ``switch_channel_event_set_data`` reads (states, caller
profile, times, variables) and renders it in FreeSWITCH's header order (PROTOCOL.md §5.3).
"""

import time
from collections import OrderedDict

STATE_NUMBERS = {
    name: i
    for i, name in enumerate(
        "CS_NEW CS_INIT CS_ROUTING CS_SOFT_EXECUTE CS_EXECUTE CS_EXCHANGE_MEDIA CS_PARK "
        "CS_CONSUME_MEDIA CS_HIBERNATE CS_RESET CS_HANGUP CS_REPORTING CS_DESTROY CS_NONE".split()
    )
}

# Q.850 numbers of the causes simswitch produces (switch_types.h).
CAUSE_CODES = {
    "NONE": 0,
    "UNALLOCATED_NUMBER": 1,
    "NO_ROUTE_DESTINATION": 3,
    "NORMAL_CLEARING": 16,
    "USER_BUSY": 17,
    "NO_USER_RESPONSE": 18,
    "NO_ANSWER": 19,
    "SUBSCRIBER_ABSENT": 20,
    "CALL_REJECTED": 21,
    "NUMBER_CHANGED": 22,
    "DESTINATION_OUT_OF_ORDER": 27,
    "INVALID_NUMBER_FORMAT": 28,
    "NORMAL_UNSPECIFIED": 31,
    "NORMAL_CIRCUIT_CONGESTION": 34,
    "NETWORK_OUT_OF_ORDER": 38,
    "NORMAL_TEMPORARY_FAILURE": 41,
    "SWITCH_CONGESTION": 42,
    "OUTGOING_CALL_BARRED": 52,
    "INCOMING_CALL_BARRED": 54,
    "SERVICE_UNAVAILABLE": 63,
    "RECOVERY_ON_TIMER_EXPIRE": 102,
    "ORIGINATOR_CANCEL": 487,
    "MANAGER_REQUEST": 703,
    "ALLOTTED_TIMEOUT": 802,
    "USER_NOT_REGISTERED": 806,
    "PROGRESS_TIMEOUT": 807,
    "GATEWAY_DOWN": 809,
    "CHAN_NOT_IMPLEMENTED": 66,
    "INCOMPATIBLE_DESTINATION": 88,
    "SERVICE_NOT_IMPLEMENTED": 79,
    "EXCHANGE_ROUTING_ERROR": 25,
    "INTERWORKING": 127,
}
CAUSE_NAMES = {code: name for name, code in CAUSE_CODES.items()}

# mod_sofia's final-response → cause table (sofia_glue.c, PROTOCOL.md §7.1).
SIP_TO_CAUSE = {
    200: "NORMAL_CLEARING",
    400: "NORMAL_TEMPORARY_FAILURE",
    401: "CALL_REJECTED",
    402: "CALL_REJECTED",
    403: "CALL_REJECTED",
    404: "UNALLOCATED_NUMBER",
    405: "SERVICE_UNAVAILABLE",
    406: "SERVICE_NOT_IMPLEMENTED",
    407: "CALL_REJECTED",
    408: "RECOVERY_ON_TIMER_EXPIRE",
    410: "NUMBER_CHANGED",
    480: "NO_USER_RESPONSE",
    481: "NORMAL_TEMPORARY_FAILURE",
    484: "INVALID_NUMBER_FORMAT",
    485: "NO_ROUTE_DESTINATION",
    486: "USER_BUSY",
    487: "ORIGINATOR_CANCEL",
    488: "INCOMPATIBLE_DESTINATION",
    500: "NORMAL_TEMPORARY_FAILURE",
    501: "SERVICE_NOT_IMPLEMENTED",
    502: "NETWORK_OUT_OF_ORDER",
    503: "NORMAL_TEMPORARY_FAILURE",
    504: "RECOVERY_ON_TIMER_EXPIRE",
    600: "USER_BUSY",
    603: "CALL_REJECTED",
    604: "NO_ROUTE_DESTINATION",
    606: "INCOMPATIBLE_DESTINATION",
    608: "CALL_REJECTED",
}

# mod_sofia's cause → SIP response when FreeSWITCH itself ends the leg (mod_sofia.c hangup_cause_to_sip).
CAUSE_TO_SIP = {
    "UNALLOCATED_NUMBER": 404,
    "NO_ROUTE_DESTINATION": 404,
    "USER_BUSY": 486,
    "NO_USER_RESPONSE": 408,
    "NO_ANSWER": 480,
    "SUBSCRIBER_ABSENT": 480,
    "CALL_REJECTED": 603,
    "NORMAL_TEMPORARY_FAILURE": 503,
    "ORIGINATOR_CANCEL": 487,
    "RECOVERY_ON_TIMER_EXPIRE": 504,
}


def sip_cause(code: int, reason_cause: int | None = None) -> str:
    """Hang-up cause for a SIP final response; a ``Reason: Q.850`` cause wins when given."""
    if reason_cause is not None:
        return CAUSE_NAMES.get(reason_cause, "NORMAL_UNSPECIFIED")
    return SIP_TO_CAUSE.get(code, "NORMAL_UNSPECIFIED")


def _micros(t: float | None) -> str:
    return str(int(t * 1_000_000)) if t else "0"


class Channel:
    """One call leg: states, caller profile, times, variables, bridge partner.

    ``endpoint`` is ``sofia``, ``user`` or ``loopback``; ``kind`` decides the caller-profile
    source and the endpoint-specific variables.
    """

    def __init__(
        self,
        uuid: str,
        name: str,
        endpoint: str,
        destination: str,
        created: float,
        cid_name: str = "",
        cid_number: str = "0000000000",
        context: str = "default",
        network_addr: str = "",
    ):
        self.uuid = uuid
        self.name = name
        self.endpoint = endpoint
        self.destination = destination
        self.context = context
        self.network_addr = network_addr
        self.state = "CS_NEW"
        self.callstate = "DOWN"
        self.answer_state = "ringing"
        self.hit_dialplan = False
        self.hangup_cause: str | None = None
        self.has_media = False
        self.cid_flipped = False
        self.responded = False  # the far end sent a SIP response (its address is known)
        self.orig_cid_name = cid_name
        self.orig_cid_number = cid_number
        self.created = created
        self.answered: float | None = None
        self.progress: float | None = None
        self.progress_media: float | None = None
        self.hungup: float | None = None
        self.transferred: float | None = None
        self.bridged: float | None = None
        self.other: Channel | None = None
        self.other_type = ""
        self.variables: OrderedDict[str, str] = OrderedDict()
        self.session_id = 0

    # --- state -------------------------------------------------------------------------
    @property
    def up(self) -> bool:
        """True until the channel started hanging up."""
        return self.hangup_cause is None

    @property
    def is_answered(self) -> bool:
        return self.answered is not None

    def set_var(self, name: str, value) -> None:
        """Set (or, with ``None``, unset) a channel variable; values are kept as text."""
        if value is None:
            self.variables.pop(name, None)
        else:
            self.variables[name] = str(value)

    # --- headers -----------------------------------------------------------------------
    def _profile(self, prefix: str) -> list:
        """The caller-profile block (``Caller-*`` or ``Other-Leg-*``) in FreeSWITCH's order."""
        if self.cid_flipped:
            cid_name, cid_number = "Outbound Call", self.destination
            callee_name, callee_number = self.orig_cid_name, self.orig_cid_number
        else:
            cid_name, cid_number = self.orig_cid_name, self.orig_cid_number
            callee_name, callee_number = "Outbound Call", self.destination
        fields = [
            ("Direction", "outbound"),
            ("Logical-Direction", "outbound" if prefix == "Caller-" else "inbound"),
            ("Dialplan", "xml" if self.endpoint == "loopback" else ""),
            ("Caller-ID-Name", cid_name),
            ("Caller-ID-Number", cid_number),
            ("Orig-Caller-ID-Name", self.orig_cid_name),
            ("Orig-Caller-ID-Number", self.orig_cid_number),
            ("Callee-ID-Name", callee_name),
            ("Callee-ID-Number", callee_number),
            ("Network-Addr", self.network_addr if self.responded else ""),
            ("ANI", self.orig_cid_number),
            ("Destination-Number", self.destination),
            ("Unique-ID", self.uuid),
            ("Source", "mod_loopback" if self.endpoint == "loopback" else "src/switch_ivr_originate.c"),
            ("Context", self.context),
            ("Channel-Name", self.name),
        ]
        if prefix == "Caller-":
            fields.append(("Profile-Index", "1"))
        fields += [
            ("Profile-Created-Time", _micros(self.created)),
            ("Channel-Created-Time", _micros(self.created)),
            ("Channel-Answered-Time", _micros(self.answered)),
            ("Channel-Progress-Time", _micros(self.progress)),
            ("Channel-Progress-Media-Time", _micros(self.progress_media)),
            ("Channel-Hangup-Time", _micros(self.hungup)),
            ("Channel-Transfer-Time", _micros(self.transferred)),
            ("Channel-Resurrect-Time", "0"),
            ("Channel-Bridged-Time", _micros(self.bridged)),
            ("Channel-Last-Hold", "0"),
            ("Channel-Hold-Accum", "0"),
            ("Screen-Bit", "true"),
            ("Privacy-Hide-Name", "false"),
            ("Privacy-Hide-Number", "false"),
        ]
        # FreeSWITCH leaves out profile fields that are empty.
        return [(prefix + k, v) for k, v in fields if v != ""]

    def data_headers(self, with_variables: bool) -> list:
        """``switch_channel_event_set_data``: channel data, profile, other leg, variables."""
        headers = [
            ("Channel-State", self.state),
            ("Channel-Call-State", self.callstate),
            ("Channel-State-Number", str(STATE_NUMBERS[self.state])),
            ("Channel-Name", self.name),
            ("Unique-ID", self.uuid),
            ("Call-Direction", "outbound"),
            ("Presence-Call-Direction", "outbound"),
            ("Channel-HIT-Dialplan", "true" if self.hit_dialplan else "false"),
            ("Channel-Call-UUID", self.uuid),
            ("Answer-State", self.answer_state),
        ]
        if self.hangup_cause:
            headers.append(("Hangup-Cause", self.hangup_cause))
        if self.has_media:
            codec, rate, bits = self.codec()
            headers += [
                ("Channel-Read-Codec-Name", codec),
                ("Channel-Read-Codec-Rate", rate),
                ("Channel-Read-Codec-Bit-Rate", bits),
                ("Channel-Write-Codec-Name", codec),
                ("Channel-Write-Codec-Rate", rate),
                ("Channel-Write-Codec-Bit-Rate", bits),
            ]
        headers += self._profile("Caller-")
        if self.other is not None and self.other_type:
            headers.append(("Other-Type", self.other_type))
            headers += self.other._profile("Other-Leg-")
        if with_variables:
            headers += [("variable_" + k, v) for k, v in self.variables.items()]
        return headers

    def codec(self) -> tuple:
        """(name, rate, bit rate) of the leg's media: PCMU for SIP legs, L16 for loopback."""
        if self.endpoint == "loopback":
            return ("L16", "8000", "128000")
        return ("PCMU", "8000", "64000")

    # --- CDR variables ---------------------------------------------------------------
    def set_cdr_variables(self) -> None:
        """The timing variables FreeSWITCH computes at hang-up (switch_channel.c set_timestamps)."""
        end = self.hungup or self.created

        def stamp(t):
            return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) if t else ""

        for key, t in (
            ("start", self.created),
            ("profile_start", self.created),
            ("answer", self.answered),
            ("progress", self.progress),
            ("progress_media", self.progress_media),
            ("end", end),
        ):
            if t:
                self.set_var(f"{key}_stamp", stamp(t))
        for key, t in (
            ("start", self.created),
            ("profile_start", self.created),
            ("answer", self.answered),
            ("bridge", self.bridged),
            ("last_hold", None),
            ("hold_accum_seconds", None),
            ("resurrect", None),
            ("progress", self.progress),
            ("progress_media", self.progress_media),
            ("end", end),
        ):
            if key == "hold_accum_seconds":
                self.set_var("hold_accum_seconds", 0)
                self.set_var("hold_accum_usec", 0)
                self.set_var("hold_accum_ms", 0)
                continue
            self.set_var(f"{key}_epoch", int(t) if t else 0)
            self.set_var(f"{key}_uepoch", _micros(t))
        self.set_var("last_app", self.variables.get("current_application"))
        self.set_var("last_arg", self.variables.get("current_application_data"))
        self.set_var("caller_id", f'"{self.orig_cid_name}" <{self.orig_cid_number}>')

        def span(a, b):
            return (b - a) if (a and b) else 0.0

        duration = span(self.created, end)
        bill = span(self.answered, end)
        answer = span(self.created, self.answered)
        progress = span(self.created, self.progress)
        progress_media = span(self.created, self.progress_media)
        for suffix, scale, fmt in (("sec", 1, int), ("msec", 1000, int), ("usec", 1_000_000, int)):
            prefix = "" if suffix == "sec" else suffix[0]
            self.set_var("duration" if suffix == "sec" else f"{prefix}duration", fmt(duration * scale))
            self.set_var(f"bill{suffix}", fmt(bill * scale))
            self.set_var(f"progress{suffix}", fmt(progress * scale))
            self.set_var(f"answer{suffix}", fmt(answer * scale))
            self.set_var(f"wait{suffix}", 0)
            self.set_var(f"progress_media{suffix}", fmt(progress_media * scale))
            self.set_var(f"flow_bill{suffix}", fmt(duration * scale))
