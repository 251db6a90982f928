"""Event building and serialisation exactly as FreeSWITCH writes them on the Event Socket.

An ``Event`` is an ordered list of headers (duplicates allowed: CHANNEL_HANGUP_COMPLETE
carries ``Hangup-Cause`` twice) plus an optional body. ``plain()`` follows
``switch_event_serialize`` (URL-encoded values, ``_undef_`` for empty values, inner
``Content-Length`` before a body); ``json()`` follows ``switch_event_serialize_json``.
``frame()`` wraps either in the outer ``Content-Length`` / ``Content-Type`` block that
mod_event_socket writes (Content-Length first, see PROTOCOL.md §1.2).
"""

import json
import re
import time

# Where FreeSWITCH 1.10.12 fires each event (Event-Calling-File/-Function/-Line-Number),
# read off the real captures in shared/fixtures/esl/real.
ORIGINS = {
    "API": ("switch_loadable_module.c", "switch_api_execute", 2954),
    "BACKGROUND_JOB": ("mod_event_socket.c", "api_exec", 1572),
    "CALL_UPDATE": ("switch_channel.c", "switch_channel_flip_cid", 3277),
    "CHANNEL_ANSWER": ("switch_channel.c", "switch_channel_perform_mark_answered", 3846),
    "CHANNEL_BRIDGE": ("switch_ivr_bridge.c", "switch_ivr_multi_threaded_bridge", 1689),
    "CHANNEL_CALLSTATE": ("switch_channel.c", "switch_channel_perform_set_callstate", 301),
    "CHANNEL_CREATE": ("switch_core_state_machine.c", "switch_core_session_run", 626),
    "CHANNEL_DESTROY": ("switch_core_session.c", "switch_core_session_perform_destroy", 1584),
    "CHANNEL_EXECUTE": ("switch_core_session.c", "switch_core_session_exec", 2944),
    "CHANNEL_EXECUTE_COMPLETE": ("switch_core_session.c", "switch_core_session_exec", 2967),
    "CHANNEL_HANGUP": ("switch_channel.c", "switch_channel_perform_hangup", 3445),
    "CHANNEL_HANGUP_COMPLETE": (
        "switch_core_state_machine.c",
        "switch_core_session_reporting_state",
        943,
    ),
    "CHANNEL_ORIGINATE": ("switch_core_state_machine.c", "switch_core_session_run", 632),
    "CHANNEL_OUTGOING": ("switch_core_session.c", "switch_core_session_outgoing_channel", 768),
    "CHANNEL_PARK": ("switch_ivr.c", "switch_ivr_park", 1002),
    "CHANNEL_PROGRESS": ("switch_channel.c", "switch_channel_perform_mark_ring_ready_value", 3505),
    "CHANNEL_PROGRESS_MEDIA": ("switch_channel.c", "switch_channel_perform_mark_pre_answered", 3560),
    "CHANNEL_STATE": ("switch_channel.c", "switch_channel_perform_set_running_state", 2408),
    "CHANNEL_UNBRIDGE": ("switch_ivr_bridge.c", "switch_ivr_multi_threaded_bridge", 1879),
    "CHANNEL_UNPARK": ("switch_ivr.c", "switch_ivr_park", 1213),
    "DTMF": ("switch_channel.c", "switch_channel_dequeue_dtmf", 677),
    "HEARTBEAT": ("switch_core.c", "send_heartbeat", 95),
    "MEDIA_BUG_START": ("switch_core_media_bug.c", "switch_core_media_bug_add", 1014),
    "MEDIA_BUG_STOP": ("switch_core_media_bug.c", "switch_core_media_bug_destroy", 84),
    "PLAYBACK_START": ("switch_ivr_play_say.c", "switch_ivr_play_file", 1646),
    "PLAYBACK_STOP": ("switch_ivr_play_say.c", "switch_ivr_play_file", 2020),
    "RECORD_START": ("switch_ivr_async.c", "record_callback", 1481),
    "RECORD_STOP": ("switch_ivr_async.c", "send_record_stop_event", 1240),
    "CUSTOM": ("mod_audio_fork.c", "responseHandler", 22),
}

# Every event name FreeSWITCH knows (switch_event.c EVENT_NAMES); "event plain X" ignores others.
EVENT_NAMES = frozenset(
    """CUSTOM CLONE CHANNEL_CREATE CHANNEL_DESTROY CHANNEL_STATE CHANNEL_CALLSTATE
    CHANNEL_ANSWER CHANNEL_HANGUP CHANNEL_HANGUP_COMPLETE CHANNEL_EXECUTE
    CHANNEL_EXECUTE_COMPLETE CHANNEL_HOLD CHANNEL_UNHOLD CHANNEL_BRIDGE CHANNEL_UNBRIDGE
    CHANNEL_PROGRESS CHANNEL_PROGRESS_MEDIA CHANNEL_OUTGOING CHANNEL_PARK CHANNEL_UNPARK
    CHANNEL_APPLICATION CHANNEL_ORIGINATE CHANNEL_UUID API LOG INBOUND_CHAN OUTBOUND_CHAN
    STARTUP SHUTDOWN PUBLISH UNPUBLISH TALK NOTALK SESSION_CRASH MODULE_LOAD MODULE_UNLOAD
    DTMF MESSAGE PRESENCE_IN NOTIFY_IN PRESENCE_OUT PRESENCE_PROBE MESSAGE_WAITING
    MESSAGE_QUERY ROSTER CODEC BACKGROUND_JOB DETECTED_SPEECH DETECTED_TONE PRIVATE_COMMAND
    HEARTBEAT TRAP ADD_SCHEDULE DEL_SCHEDULE EXE_SCHEDULE RE_SCHEDULE RELOADXML NOTIFY
    PHONE_FEATURE PHONE_FEATURE_SUBSCRIBE SEND_MESSAGE RECV_MESSAGE REQUEST_PARAMS
    CHANNEL_DATA GENERAL COMMAND SESSION_HEARTBEAT CLIENT_DISCONNECTED SERVER_DISCONNECTED
    SEND_INFO RECV_INFO RECV_RTCP_MESSAGE SEND_RTCP_MESSAGE CALL_SECURE NAT RECORD_START
    RECORD_STOP PLAYBACK_START PLAYBACK_STOP CALL_UPDATE FAILURE SOCKET_DATA MEDIA_BUG_START
    MEDIA_BUG_STOP CONFERENCE_DATA_QUERY CONFERENCE_DATA CALL_SETUP_REQ CALL_SETUP_RESULT
    CALL_DETAIL DEVICE_STATE TEXT SHUTDOWN_REQUESTED ALL""".split()
)

# Bytes that switch_url_encode escapes besides controls and non-ASCII (SWITCH_URL_UNSAFE + space).
_UNSAFE = set(b'\r\n #%&+:;<=>?@[\\]^`{|}"')
_SAFE_TABLE = [chr(b) if (0x20 <= b <= 0x7E and b not in _UNSAFE) else f"%{b:02X}" for b in range(256)]
_NEEDS_ENCODING = re.compile(r'[^A-Za-z0-9!$\'()*,\-./_~]')
_PERCENT_ESCAPE = re.compile(rb"%[0-9A-F]{2}")


def url_encode(value: str) -> str:
    """Encode a header value like ``switch_url_encode`` (PROTOCOL.md §5.2).

    A ``%`` already followed by two uppercase hex digits is kept, as FreeSWITCH does.
    """
    if not _NEEDS_ENCODING.search(value):
        return value
    raw = value.encode("utf-8")
    out = []
    i = 0
    while i < len(raw):
        b = raw[i]
        if b == 0x25 and _PERCENT_ESCAPE.match(raw, i):
            out.append(raw[i : i + 3].decode("ascii"))
            i += 3
            continue
        out.append(_SAFE_TABLE[b])
        i += 1
    return "".join(out)


class Event:
    """One FreeSWITCH event: ordered headers (name, value) and an optional body."""

    __slots__ = ("name", "headers", "body", "_frames")

    def __init__(self, name: str, headers: list, body: str | None = None):
        self.name = name
        self.headers = headers
        self.body = body
        self._frames = {}

    def get(self, header: str, default=None):
        """First value of ``header`` (case-insensitive, like switch_event_get_header)."""
        lower = header.lower()
        for name, value in self.headers:
            if name.lower() == lower:
                return value
        return default

    @property
    def subclass(self) -> str | None:
        return self.get("Event-Subclass")

    def plain(self) -> bytes:
        """``switch_event_serialize``: URL-encoded lines, inner Content-Length before a body."""
        lines = [f"{n}: {url_encode(v) if v != '' else '_undef_'}\n" for n, v in self.headers]
        text = "".join(lines).encode("utf-8")
        if self.body:
            body = self.body.encode("utf-8")
            return text + b"Content-Length: %d\n\n" % len(body) + body
        return text + b"\n"

    def json(self) -> bytes:
        """``switch_event_serialize_json``: raw values; repeated names become arrays."""
        obj = {}
        for name, value in self.headers:
            if name in obj:
                prev = obj[name]
                obj[name] = (prev if isinstance(prev, list) else [prev]) + [value]
            else:
                obj[name] = value
        if self.body:
            obj["Content-Length"] = str(len(self.body.encode("utf-8")))
            obj["_body"] = self.body
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    def frame(self, fmt: str) -> bytes:
        """The bytes mod_event_socket writes for this event in ``fmt`` (plain or json).

        Cached: an event is serialised once however many listeners receive it, so it must
        not be changed after it was fired.
        """
        cached = self._frames.get(fmt)
        if cached is None:
            data = self.json() if fmt == "json" else self.plain()
            head = b"Content-Length: %d\nContent-Type: text/event-%s\n\n" % (len(data), fmt.encode())
            cached = self._frames[fmt] = head + data
        return cached


class EventFactory:
    """Creates events with the common header block FreeSWITCH adds at creation.

    Holds the switch identity and the global ``Event-Sequence`` counter.
    """

    def __init__(self, clock, core_uuid: str, hostname: str, ipv4: str, ipv6: str = "::1"):
        self.clock = clock
        self.core_uuid = core_uuid
        self.hostname = hostname
        self.ipv4 = ipv4
        self.ipv6 = ipv6
        self.sequence = 0

    def create(self, name: str, subclass: str | None = None, origin: tuple | None = None) -> Event:
        """A new event with Event-Name, Core-UUID, … Event-Sequence, in FreeSWITCH's order.

        CUSTOM events carry ``Event-Subclass`` first, as mod_audio_fork's do on the wire.
        """
        self.sequence += 1
        now = self.clock.now()
        micros = int(now * 1_000_000)
        local = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now))
        gmt = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(now))
        file, func, line = origin or ORIGINS.get(name, ("simswitch", "simswitch", 0))
        headers = [] if subclass is None else [("Event-Subclass", subclass)]
        headers += [
            ("Event-Name", name),
            ("Core-UUID", self.core_uuid),
            ("FreeSWITCH-Hostname", self.hostname),
            ("FreeSWITCH-Switchname", self.hostname),
            ("FreeSWITCH-IPv4", self.ipv4),
            ("FreeSWITCH-IPv6", self.ipv6),
            ("Event-Date-Local", local),
            ("Event-Date-GMT", gmt),
            ("Event-Date-Timestamp", str(micros)),
            ("Event-Calling-File", file),
            ("Event-Calling-Function", func),
            ("Event-Calling-Line-Number", str(line)),
            ("Event-Sequence", str(self.sequence)),
        ]
        return Event(name, headers)
