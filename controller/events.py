"""Typed events in and commands out for the controller (STYLE.md habit 1).

Raw ESL header dicts are converted here, in `from_esl()`, and go no further: the dialer,
the call state machine and the tests see only these classes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from controller.dialogue import events as dialogue_events
from controller.transfer.events import EVENTS as TRANSFER_EVENTS

# ---------------------------------------------------------------------------------------
# Events (in)


@dataclass(frozen=True, slots=True)
class Event:
    """Base of everything the controller reacts to."""


@dataclass(frozen=True, slots=True)
class ChannelEvent(Event):
    node: str
    uuid: str
    at: float  # seconds since the epoch, from Event-Date-Timestamp (µs)


@dataclass(frozen=True, slots=True)
class Progress(ChannelEvent):
    """CHANNEL_PROGRESS (180, ringing) or CHANNEL_PROGRESS_MEDIA (183, early media)."""

    media: bool = False


@dataclass(frozen=True, slots=True)
class Answered(ChannelEvent):
    """CHANNEL_ANSWER: the callee (or something on their behalf) picked up."""


@dataclass(frozen=True, slots=True)
class HungUp(ChannelEvent):
    """CHANNEL_HANGUP_COMPLETE, with the CDR variables a final record needs."""

    cause: str | None = None
    sip_code: int | None = None
    disposition: str | None = None  # sip_hangup_disposition
    answered: bool = False
    billsec: int = 0
    start_epoch: float | None = None
    progress_epoch: float | None = None
    answer_epoch: float | None = None
    end_epoch: float | None = None


@dataclass(frozen=True, slots=True)
class ExecuteComplete(ChannelEvent):
    """CHANNEL_EXECUTE_COMPLETE: an application (playback …) finished on the channel."""

    application: str = ""
    app_uuid: str | None = None  # the sendmsg Event-UUID we chose
    response: str | None = None


@dataclass(frozen=True, slots=True)
class Announcement(ChannelEvent):
    """An early-media detector's verdict (CPA.md §2 class, e.g. 空号, 关机)."""

    category: str = ""


@dataclass(frozen=True, slots=True)
class ForHandler(ChannelEvent):
    """An event only the answered-call handler uses (the dialogue's PLAYBACK_*, DTMF,
    CHANNEL_HANGUP, callee speech, audio-fork failures), already converted to the
    dialogue's typed event (`controller.dialogue.events`). The call's state machine ignores
    it; the driver passes `event` on to the handler."""

    event: object = None


@dataclass(frozen=True, slots=True)
class JobDone(Event):
    """BACKGROUND_JOB: a bgapi command finished; `ok` when its body starts with +OK."""

    node: str
    job_uuid: str
    ok: bool
    text: str  # the body without +OK / -ERR, stripped (a uuid, or a cause name)


@dataclass(frozen=True, slots=True)
class Heartbeat(Event):
    node: str
    sessions: int | None = None


@dataclass(frozen=True, slots=True)
class LinkChanged(Event):
    """A node's Event Socket link came up (subscribed) or went down."""

    node: str
    up: bool


@dataclass(frozen=True, slots=True)
class Timer(Event):
    """A timer a call set for itself fired (ring, max_call, settle)."""

    uuid: str
    name: str


@dataclass(frozen=True, slots=True)
class Vanished(Event):
    """After a resync: the node no longer has this channel and we missed its hang-up."""

    uuid: str


@dataclass(frozen=True, slots=True)
class Start(Event):
    """The dialer created this call; originate it."""

    uuid: str


@dataclass(frozen=True, slots=True)
class Adopt(Event):
    """A restarted controller found this call live on the node (`callstate` from
    `show channels`): take it over in the matching state."""

    uuid: str
    callstate: str


@dataclass(frozen=True, slots=True)
class DialogueStarted(Event):
    """The driver handed the answered call to the dialogue runtime."""

    uuid: str


@dataclass(frozen=True, slots=True)
class HandlerDone(Event):
    """The answered-call handler returned (its results, if any, are committed)."""

    uuid: str


@dataclass(frozen=True, slots=True)
class TransferStarted(Event):
    """The handler started ringing agents for this call."""

    uuid: str


@dataclass(frozen=True, slots=True)
class TransferEnded(Event):
    """The transfer finished: `ok` when the call is bridged to an agent."""

    uuid: str
    ok: bool


@dataclass(frozen=True, slots=True)
class NotDialled(Event):
    """The originate was certainly never sent (the node was down): the attempt did not
    happen and its number goes back to the queue."""

    uuid: str
    reason: str


# ---------------------------------------------------------------------------------------
# Commands (out)


@dataclass(frozen=True, slots=True)
class Command:
    """Base of everything the state machine asks the driver to do."""


@dataclass(frozen=True, slots=True)
class Originate(Command):
    pass


@dataclass(frozen=True, slots=True)
class SetTimer(Command):
    name: str
    seconds: float


@dataclass(frozen=True, slots=True)
class CancelTimer(Command):
    name: str


@dataclass(frozen=True, slots=True)
class StartRecording(Command):
    path: str


@dataclass(frozen=True, slots=True)
class HandOff(Command):
    """Give the answered call to the dialogue runtime (`resumed` after a controller restart)."""

    resumed: bool = False


@dataclass(frozen=True, slots=True)
class CallOver(Command):
    """The channel is gone while the handler still runs: tell it, so that it wraps up (and
    reports HandlerDone) before the attempt is finished."""


@dataclass(frozen=True, slots=True)
class Hangup(Command):
    cause: str = "NORMAL_CLEARING"


@dataclass(frozen=True, slots=True)
class Finish(Command):
    """The attempt is over: write its final record, release its slot, settle its number."""


# ---------------------------------------------------------------------------------------
# The adapter


_SIP = re.compile(r"^sip:(\d{3})$")


def _epoch(value: str | None) -> float | None:
    """FreeSWITCH epoch fields: seconds, or µs for *_uepoch; '0' means never."""
    if not value or not value.lstrip("-").isdigit() or int(value) == 0:
        return None
    return int(value) / (1_000_000 if len(value) > 12 else 1)


def _at(h: dict) -> float:
    return _epoch(h.get("Event-Date-Timestamp")) or 0.0


def _sip_code(h: dict) -> int | None:
    for name in ("variable_sip_term_status", "variable_sip_invite_failure_status"):
        value = h.get(name, "")
        if value.isdigit():
            return int(value)
    for name in ("variable_last_bridge_proto_specific_hangup_cause",
                 "variable_proto_specific_hangup_cause"):
        match = _SIP.match(h.get(name, ""))
        if match:
            return int(match.group(1))
    return None


def _hung_up(node: str, uuid: str, h: dict) -> HungUp:
    answer = (_epoch(h.get("variable_answer_uepoch")) or _epoch(h.get("variable_answer_epoch"))
              or _epoch(h.get("Caller-Channel-Answered-Time")))
    billsec = h.get("variable_billsec", "0")
    progress = [t for t in (_epoch(h.get("variable_progress_uepoch")),
                            _epoch(h.get("variable_progress_media_uepoch"))) if t]
    return HungUp(
        node, uuid, _at(h),
        cause=h.get("variable_hangup_cause") or h.get("Hangup-Cause") or None,
        sip_code=_sip_code(h),
        disposition=h.get("variable_sip_hangup_disposition") or None,
        answered=answer is not None or (billsec.isdigit() and int(billsec) > 0),
        billsec=int(billsec) if billsec.isdigit() else 0,
        start_epoch=_epoch(h.get("variable_start_uepoch")) or _epoch(h.get("variable_start_epoch")),
        progress_epoch=min(progress) if progress else None,
        answer_epoch=answer,
        end_epoch=_epoch(h.get("variable_end_uepoch")) or _epoch(h.get("variable_end_epoch")),
    )


def _announcement(node: str, uuid: str, h: dict) -> Announcement | None:
    subclass = h.get("Event-Subclass", "")
    if subclass == "tonedetect":  # lixuanqun/mod_ring_asr (CPA.md §4.3): trust ACCURACY only
        category = h.get("tonedetect_da_category")
        if category and h.get("tonedetect_da_accuracy", "ACCURACY") == "ACCURACY":
            return Announcement(node, uuid, _at(h), category=category)
        return None
    if subclass == "da":  # nway mod_da (CPA.md §4.4)
        category = h.get("da_type")
        return Announcement(node, uuid, _at(h), category=category) if category else None
    if subclass == "cc::announcement":  # our own early-media hook (dialogue issue)
        category = h.get("Announcement-Class")
        return Announcement(node, uuid, _at(h), category=category) if category else None
    return None


def subscription(*lists: tuple[str, ...]) -> tuple[str, ...]:
    """One `event plain` list from several, read the way FreeSWITCH reads them: after the
    token CUSTOM every token is a subclass (PROTOCOL.md §3.1), so event names go first,
    then CUSTOM and every subclass."""
    names: dict[str, None] = {}
    subclasses: dict[str, None] = {}
    for tokens in lists:
        custom = False
        for token in tokens:
            if custom:
                subclasses[token] = None
            elif token.upper() == "CUSTOM":
                custom = True
            else:
                names[token.upper()] = None
    return (*names, *(("CUSTOM", *subclasses) if subclasses else ()))


# What NodeLink subscribes to: everything the adapter below reads, for the dialer, the
# dialogue and the transfer runner.
SUBSCRIBE = subscription(
    ("BACKGROUND_JOB", "HEARTBEAT", "CHANNEL_PROGRESS", "CHANNEL_PROGRESS_MEDIA",
     "CHANNEL_ANSWER", "CHANNEL_HANGUP_COMPLETE", "CHANNEL_EXECUTE_COMPLETE", "DETECTED_TONE",
     "CUSTOM", "tonedetect", "da", "cc::announcement"),
    dialogue_events.ESL_EVENTS, TRANSFER_EVENTS)


def from_esl(node: str, headers: dict, body: str | None = None) -> Event | None:
    """Turn one ESL event (URL-decoded headers, optional body) into a typed Event, or None
    for events the controller does not use."""
    name = headers.get("Event-Name")
    uuid = headers.get("Unique-ID", "")
    if name == "BACKGROUND_JOB":
        text = (body or "").strip()
        ok = text.startswith("+OK")
        rest = text[3:] if ok else text[4:] if text.startswith("-ERR") else text
        return JobDone(node, headers.get("Job-UUID", ""), ok, rest.strip())
    if name == "HEARTBEAT":
        count = headers.get("Session-Count", "")
        return Heartbeat(node, int(count) if count.isdigit() else None)
    if not uuid:
        return None
    if name == "CHANNEL_PROGRESS":
        return Progress(node, uuid, _at(headers), media=False)
    if name == "CHANNEL_PROGRESS_MEDIA":
        return Progress(node, uuid, _at(headers), media=True)
    if name == "CHANNEL_ANSWER":
        return Answered(node, uuid, _at(headers))
    if name == "CHANNEL_HANGUP_COMPLETE":
        return _hung_up(node, uuid, headers)
    if name == "CHANNEL_EXECUTE_COMPLETE":
        return ExecuteComplete(node, uuid, _at(headers),
                               application=headers.get("Application", ""),
                               app_uuid=headers.get("Application-UUID"),
                               response=headers.get("Application-Response"))
    if name == "DETECTED_TONE" and headers.get("Detected-Tone") == "BUSY_TONE":
        return Announcement(node, uuid, _at(headers), category="用户正忙")
    if name == "CUSTOM":
        announcement = _announcement(node, uuid, headers)
        if announcement is not None:
            return announcement
    for_handler = dialogue_events.from_esl(headers, body)
    return ForHandler(node, uuid, _at(headers), for_handler) if for_handler is not None \
        else None


@dataclass
class CaptureReader:
    """Split raw ESL bytes (a capture, or a socket's stream) into (headers, body) frames the
    way libesl does; `feed()` accepts any segmentation. Used by tests and the benchmark."""

    _buf: bytes = b""
    frames: list = field(default_factory=list)

    def feed(self, data: bytes) -> list[tuple[dict, str | None]]:
        from controller.esl import parse_plain_event

        buf = self._buf + data
        pos, out = 0, []
        while True:
            end = buf.find(b"\n\n", pos)
            if end < 0:
                break
            length, is_event = 0, False
            for line in buf[pos:end].split(b"\n"):
                if line.startswith(b"Content-Length: "):
                    length = int(line[16:])
                elif line == b"Content-Type: text/event-plain":
                    is_event = True
            if len(buf) < end + 2 + length:
                break
            if is_event:
                out.append(parse_plain_event(buf[end + 2:end + 2 + length].decode()))
            pos = end + 2 + length
        self._buf = buf[pos:]
        self.frames.extend(out)
        return out
