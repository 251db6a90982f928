"""Replay the real FreeSWITCH 1.10 captures: same Content-Types, reply texts, event names and
header names (per-call values excepted) for the same scenario."""

import re
import urllib.parse

import gevent
import pytest
from gevent import socket

from simswitch.events import Event
from tests.simswitch.conftest import FIXTURES, scenario_file, start_switch

REAL = FIXTURES / "real"
pytestmark = pytest.mark.skipif(not REAL.is_dir(), reason=f"real captures not found at {REAL}")


def frames(data: bytes):
    """Split a raw ESL byte stream into (headers list, body bytes)."""
    i = 0
    while i < len(data):
        j = data.index(b"\n\n", i)
        hdrs = [line.split(": ", 1) for line in data[i:j].decode().split("\n")]
        i = j + 2
        body = b""
        length = dict(hdrs).get("Content-Length")
        if length:
            body, i = data[i : i + int(length)], i + int(length)
        yield hdrs, body


def events(data: bytes):
    for hdrs, body in frames(data):
        if dict(hdrs).get("Content-Type") == "text/event-plain":
            head, _, ebody = body.decode().partition("\n\n")
            yield [line.split(": ", 1) for line in head.split("\n") if line], ebody


class Raw:
    """A raw-socket ESL client that keeps every byte received."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.data = b""

    def send(self, text: str):
        self.sock.sendall(text.encode())

    def read_until(self, predicate, timeout=20):
        with gevent.Timeout(timeout):
            while not predicate(self.data):
                chunk = self.sock.recv(65536)
                if not chunk:
                    return
                self.data += chunk


def test_plain_serialisation_matches_real_events_byte_for_byte():
    data = (REAL / "05_plain_sip_answer_fs_hangup.txt").read_bytes()
    checked = 0
    for hdrs, body in frames(data):
        if dict(hdrs).get("Content-Type") != "text/event-plain":
            continue
        head, _, ebody = body.decode().partition("\n\n")
        lines = [ln.split(": ", 1) for ln in head.split("\n") if ln]
        inner = [(n, urllib.parse.unquote(v)) for n, v in lines if n != "Content-Length"]
        ev = Event(inner[0][1], [(n, "" if v == "_undef_" else v) for n, v in inner], ebody or None)
        raw_frame = b"Content-Length: %d\nContent-Type: text/event-plain\n\n" % len(body) + body
        assert ev.frame("plain") == raw_frame
        checked += 1
    assert checked > 30


def test_auth_failure_is_byte_identical(tmp_path):
    sw = start_switch(tmp_path)
    try:
        c = Raw(sw.port)
        c.send("auth wrong-password\n\n")
        c.read_until(lambda d: False, timeout=5)  # until FreeSWITCH-like close
        assert c.data == (REAL / "00_auth_fail.txt").read_bytes()
    finally:
        sw.stop()


def _outcome_doc():
    return {
        "outcomes": {
            "answer": {"result": "answer", "after": 1.5, "ring_after": 0.1},
            "busy": {"result": "busy", "after": 0.5, "ring_after": 0.1},
            "vacant": {"result": "vacant", "after": 0.5, "ring_after": 1.0},
        },
        "numbers": {"100": "answer", "486": "busy", "404": "vacant"},
    }


def _names_by_event(data: bytes, uuid_filter=None):
    out = {}
    for hdrs, _ in events(data):
        d = dict(hdrs)
        if uuid_filter and d.get("Unique-ID") not in (None, uuid_filter):
            continue
        name = d["Event-Name"]
        out.setdefault(name, [n for n, _ in hdrs if not n.startswith("variable_")])
    return out


@pytest.mark.parametrize(
    "capture,number,job_body",
    [
        ("07_plain_sip_486_busy.txt", "486", "-ERR USER_BUSY\n"),
        ("08_plain_sip_404_not_found.txt", "404", "-ERR UNALLOCATED_NUMBER\n"),
        ("05_plain_sip_answer_fs_hangup.txt", "100", None),
    ],
)
def test_sip_call_matches_capture(tmp_path, capture, number, job_body):
    real = (REAL / capture).read_bytes()
    real_uuid = re.search(rb"Unique-ID: ([0-9a-f-]{36})", real.split(b"CHANNEL_OUTGOING", 1)[1]).group(1).decode()
    sw = start_switch(tmp_path, scenario_file(tmp_path, _outcome_doc()))
    uuid = "11111111-2222-4333-8444-555555555555"
    try:
        c = Raw(sw.port)
        c.send("auth ClueCon\n\nevent plain ALL\n\n")
        c.send(f"bgapi originate {{origination_uuid={uuid},origination_caller_id_number=1000}}sofia/gateway/gw1/{number} &park()\n\n")
        if job_body is None:
            c.read_until(lambda d: b"CHANNEL_PARK" in d)
            c.send(f"api uuid_kill {uuid} NORMAL_CLEARING\n\n")
        c.read_until(lambda d: d.count(b"CHANNEL_DESTROY") >= 1 and b"BACKGROUND_JOB" in d and d.rstrip().endswith(b"CS_DESTROY") or d.count(b"Channel-State: CS_DESTROY") >= 1)
        gevent.sleep(0.3)
        c.send("exit\n\n")
        c.read_until(lambda d: b"ClueCon! http" in d)
        ours = c.data
    finally:
        sw.stop()
    # Same Content-Types and reply texts, in the same order, for the non-event frames.
    def replies(data):
        return [(d.get("Content-Type"), re.sub(r"[0-9a-f-]{36}", "U", d.get("Reply-Text", "")))
                for d in (dict(h) for h, _ in frames(data)) if d.get("Content-Type") != "text/event-plain"]
    ours_r = [r for r in replies(ours) if r[0] != "api/response"]
    real_r = [r for r in replies(real) if r[0] != "api/response"]
    assert ours_r == real_r
    # The channel's event sequence (CHANNEL_* / CALL_UPDATE …) and header names per event.
    real_names = _names_by_event(real, real_uuid)
    our_names = _names_by_event(ours, uuid)
    for name in ("CHANNEL_CREATE", "CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE", "CHANNEL_DESTROY", "BACKGROUND_JOB"):
        assert name in our_names
        ours_h = [h for h in our_names[name] if not h.startswith("Caller-") or h in real_names[name]]
        assert ours_h == real_names[name], name
    seq = lambda data, u: [dict(h)["Event-Name"] for h, _ in events(data) if dict(h).get("Unique-ID") == u and dict(h)["Event-Name"] not in ("CODEC", "CALL_UPDATE", "RE_SCHEDULE", "PRIVATE_COMMAND")]  # noqa: E731
    if job_body:  # failed calls: the whole per-channel event sequence is the same
        assert seq(ours, uuid) == seq(real, real_uuid)
        job = [b for h, b in events(ours) if dict(h)["Event-Name"] == "BACKGROUND_JOB"]
        assert job == [job_body]
