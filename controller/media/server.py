"""The audio-fork WebSocket server: mod_audio_fork (or simswitch) connects here.

The first text frame is the metadata given to `uuid_audio_fork … start <url> mono 8k <json>`;
its `callid` (or `uuid`) binds the stream to a registered call. Binary frames are L16
little-endian audio; the rate comes from the metadata's `sampleRate` or the URL's `?rate=`
(default 8000). A stream for an unknown call is closed at once.
"""

from __future__ import annotations

import json
import logging
from urllib.parse import parse_qs, urlsplit

import gevent
from gevent.server import StreamServer

from core.asr import websocket as ws

log = logging.getLogger(__name__)
METADATA_TIMEOUT = 5.0


class MediaServer:
    def __init__(self, hub, host: str = "127.0.0.1", port: int = 8090,
                 subprotocol: str = "audio.drachtio.org"):
        self.hub = hub
        self.subprotocol = subprotocol
        self.server = StreamServer((host, port), self._handle)
        self.connections = 0

    @property
    def port(self) -> int:
        return self.server.server_port

    def url(self, host: str | None = None) -> str:
        return f"ws://{host or self.server.server_host}:{self.port}/fork"

    def start(self) -> MediaServer:
        self.server.start()
        log.info("media server listening on %s:%d (subprotocol %s)",
                 self.server.server_host, self.port, self.subprotocol)
        return self

    def stop(self) -> None:
        self.server.stop(timeout=1)

    def _handle(self, sock, addr) -> None:
        try:
            conn, path, _chosen = ws.server_handshake(sock, (self.subprotocol,))
        except OSError as exc:
            log.info("audio fork from %s refused: %s", addr, exc)
            sock.close()
            return
        self.connections += 1
        sock.settimeout(METADATA_TIMEOUT)
        first = conn.recv()
        sock.settimeout(None)
        if first is None or first[0] != ws.OP_TEXT:
            log.info("audio fork from %s sent no metadata", addr)
            conn.close()
            return
        try:
            meta = json.loads(first[1])
        except ValueError:
            meta = {}
        uuid = str(meta.get("callid") or meta.get("uuid") or meta.get("call_id") or "")
        media = self.hub.get(uuid)
        if media is None:
            log.info("audio fork for unknown call %r closed", uuid)
            conn.close()
            return
        query = parse_qs(urlsplit(path).query)
        rate = int(meta.get("sampleRate") or (query.get("rate") or ["8000"])[0])
        media.attach(conn, meta, rate if rate in (8000, 16000) else 8000)
        reason = "closed by the switch"
        while True:
            msg = conn.recv()
            if msg is None:
                break
            opcode, payload = msg
            if opcode == ws.OP_BINARY:
                media.on_audio(payload)
                # One frame per turn: a reader with buffered frames must not starve the
                # dialogue greenlets (and the other calls) when the process is busy.
                gevent.sleep(0)
            elif opcode == ws.OP_TEXT:
                # mod_audio_fork's final text on `stop` ({"reason": …}) or send_text frames
                log.debug("%s: fork text %s", uuid, payload[:200])
        media.detach(conn, reason)
