"""Shared fixtures: a fast-clock simswitch, a real WebSocket server (wsproto on a gevent
StreamServer — an implementation independent of simswitch's client), a real HTTP CDR sink,
and real audio files generated with numpy + soundfile."""

import json
import threading
from pathlib import Path

import gevent
import gevent.event
import greenswitch
import numpy as np
import pytest
import soundfile
from gevent.pywsgi import WSGIServer
from gevent.server import StreamServer
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Request,
    TextMessage,
)

from simswitch import SimSwitch
from simswitch.clock import FastClock

FIXTURES = Path("/work/shared/fixtures/esl") if Path("/work/shared/fixtures/esl").is_dir() else Path(__file__).resolve().parents[3] / "shared/fixtures/esl"
SPEED = 10.0


def write_tone(path: Path, seconds: float, freq: float, rate: int = 8000, amp: float = 0.5) -> Path:
    t = np.arange(int(seconds * rate)) / rate
    soundfile.write(str(path), (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32), rate, subtype="PCM_16")
    return path


@pytest.fixture
def audio_dir(tmp_path):
    d = tmp_path / "audio"
    d.mkdir()
    write_tone(d / "prompt1.wav", 2.0, 440)
    write_tone(d / "prompt2.wav", 3.0, 660)
    write_tone(d / "hello.wav", 0.8, 300, amp=0.6)
    write_tone(d / "yes.wav", 1.0, 350, amp=0.6)
    write_tone(d / "announcement.wav", 1.5, 950)
    return d


def scenario_file(tmp_path: Path, doc: dict) -> Path:
    path = tmp_path / "scenario.json"
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return path


class WsSink:
    """A WebSocket server: records the subprotocol, text frames and binary bytes per
    connection and sends whatever the test queues in ``to_send``."""

    def __init__(self, subprotocol="audio.drachtio.org"):
        self.subprotocol = subprotocol
        self.connections = []
        self.connected = gevent.event.Event()
        self.server = StreamServer(("127.0.0.1", 0), self._handle)
        self.server.start()
        self.port = self.server.server_port
        self.url = f"ws://127.0.0.1:{self.port}/fork"

    def _handle(self, sock, _addr):
        ws = WSConnection(ConnectionType.SERVER)
        conn = {"protocols": [], "texts": [], "binary": bytearray(), "frames": 0, "sock": sock, "ws": ws, "closed": False}
        self.connections.append(conn)
        try:
            while True:
                data = sock.recv(65536)
                if not data:
                    break
                ws.receive_data(data)
                for event in ws.events():
                    if isinstance(event, Request):
                        conn["protocols"] = list(event.subprotocols)
                        sub = self.subprotocol if self.subprotocol in event.subprotocols else None
                        sock.sendall(ws.send(AcceptConnection(subprotocol=sub)))
                        self.connected.set()
                    elif isinstance(event, TextMessage):
                        conn["texts"].append(event.data)
                    elif isinstance(event, BytesMessage):
                        conn["binary"] += event.data
                        conn["frames"] += 1
                    elif isinstance(event, CloseConnection):
                        conn["closed"] = True
                        sock.sendall(ws.send(event.response()))
                        return
        except OSError:
            return
        finally:
            sock.close()

    def send_json(self, index: int, obj: dict):
        conn = self.connections[index]
        conn["sock"].sendall(conn["ws"].send(TextMessage(data=json.dumps(obj, ensure_ascii=False))))

    def stop(self):
        self.server.stop(timeout=1)


@pytest.fixture
def ws_sink():
    sink = WsSink()
    yield sink
    sink.stop()


class CdrSink:
    """HTTP server that fails the first ``fail_first`` POSTs with 500, then stores CDRs."""

    def __init__(self, fail_first=0):
        self.fail_first = fail_first
        self.attempts = 0
        self.cdrs = []
        self.lock = threading.Lock()
        self.server = WSGIServer(("127.0.0.1", 0), self.app, log=None)
        self.server.start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/cdr"

    def app(self, environ, start_response):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length)
        with self.lock:
            self.attempts += 1
            if self.attempts <= self.fail_first:
                start_response("500 Internal Server Error", [("Content-Type", "text/plain")])
                return [b"down"]
            self.cdrs.append(json.loads(body))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    def stop(self):
        self.server.stop(timeout=1)


@pytest.fixture
def cdr_sink():
    sink = CdrSink(fail_first=1)
    yield sink
    sink.stop()


class Client(greenswitch.InboundESL):
    """greenswitch InboundESL plus a list of every event's headers, in arrival order."""

    def __init__(self, port):
        super().__init__("127.0.0.1", port, "ClueCon")
        self.seen = []
        self.changed = gevent.event.Event()

    def collect(self, names="ALL"):
        self.connect()
        self.register_handle("*", self._on_event)
        assert self.send(f"event plain {names}").data == "+OK event listener enabled plain"

    def _on_event(self, event):
        self.seen.append(event.headers)
        ev, self.changed = self.changed, gevent.event.Event()
        ev.set()

    def wait_for(self, predicate, timeout=20.0):
        """The first collected event matching ``predicate``; fails after ``timeout`` s."""
        with gevent.Timeout(timeout, AssertionError(f"event not seen; got {[e.get('Event-Name') for e in self.seen][-30:]}")):
            index = 0
            while True:
                while index < len(self.seen):
                    if predicate(self.seen[index]):
                        return self.seen[index]
                    index += 1
                self.changed.wait(1.0)

    def names_for(self, uuid):
        return [e["Event-Name"] if e["Event-Name"] != "CUSTOM" else e.get("Event-Subclass") for e in self.seen if e.get("Unique-ID") == uuid]


def start_switch(tmp_path, scenario=None, speed=SPEED, **kw):
    return SimSwitch("127.0.0.1", 0, "ClueCon", scenario=scenario, recordings_dir=tmp_path / "rec", clock=FastClock(speed), heartbeat=False, **kw).start()


@pytest.fixture
def make_client():
    clients = []

    def make(port, names="ALL"):
        c = Client(port)
        c.collect(names)
        clients.append(c)
        return c

    yield make
    for c in clients:
        with gevent.Timeout(5, False):
            c.stop()
