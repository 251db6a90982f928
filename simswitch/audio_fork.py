"""mod_audio_fork, as drachtio's module behaves: ``uuid_audio_fork`` opens a WebSocket,
sends the metadata as the first text frame, streams the callee's audio as binary L16
little-endian 20 ms frames in (simulated) real time, and turns the server's JSON messages
into ``CUSTOM mod_audio_fork::*`` events.

Server messages (``{"type": ..., "data": ...}``): ``playAudio`` writes the base64 audio to a
temp file and fires ``play_audio`` with ``file`` added (the module does not play it: the
controller plays it, e.g. with uuid_broadcast); ``killAudio`` fires ``kill_audio`` and breaks
the current playback; ``transcription``, ``transfer``, ``disconnect``, ``error`` fire their
event with ``data`` as body; ``json`` fires ``json`` with the whole message.
"""

import base64
import json
import logging
import os
import tempfile

import gevent
import numpy as np

from simswitch.media import FRAME_SECONDS
from simswitch.websocket import OP_TEXT, WebSocketClient, WebSocketError

log = logging.getLogger(__name__)
DEFAULT_SUBPROTOCOL = "audio.drachtio.org"
# mod_audio_fork buffers MOD_AUDIO_FORK_BUFFER_SECS of audio (default 2 s, lws_glue.cpp) before
# it drops any: a fork that lags less than that catches up with every frame.
MAX_BEHIND = 100  # frames (2 s) a fork may lag before it skips ahead
USAGE = "-USAGE: <uuid> [start | stop | send_text | pause | resume | graceful-shutdown | stop_play] [wss-url | path] [mono | mixed | stereo] [8k | 16k] [bugname] [metadata]\n"
EVENT_TYPES = {
    "transcription": "mod_audio_fork::transcription",
    "transfer": "mod_audio_fork::transfer",
    "disconnect": "mod_audio_fork::disconnect",
    "error": "mod_audio_fork::error",
}


class Fork:
    """One media bug streaming one leg to one WebSocket."""

    def __init__(self, manager, sess, url: str, mix: str, rate: int, bugname: str, metadata: str | None):
        self.manager = manager
        self.sess = sess
        self.url, self.mix, self.rate, self.bugname, self.metadata = url, mix, rate, bugname, metadata
        self.ws: WebSocketClient | None = None
        self.paused = False
        self.frames_sent = 0
        self.stopping = False
        self.greenlet = None
        self.next_t: float | None = None

    @property
    def switch(self):
        return self.manager.switch

    def event(self, name: str, body: str | None = None) -> None:
        self.switch.custom_event(self.sess.ch, name, body=body)

    def run(self) -> None:
        """Connect, send metadata, then stream frames until stopped or the peer goes away."""
        try:
            self.ws = WebSocketClient.connect(self.url, self.manager.subprotocol, timeout=self.manager.connect_timeout)
        except (OSError, WebSocketError) as exc:
            log.info("%s: audio fork to %s failed: %s", self.sess.ch.uuid, self.url, exc)
            self.event("mod_audio_fork::connect_failed", json.dumps({"reason": "Unable to connect"}, separators=(",", ":")))
            return
        self.event("mod_audio_fork::connect")
        if self.metadata:
            self.ws.send_text(self.metadata)
        self.next_t = None
        self.manager.streaming.add(self)
        self.manager.wake()
        self._read()

    def _frame(self, start: float, end: float) -> bytes:
        timeline = self.sess.media
        callee = timeline.render("callee", start, end, self.rate)
        if self.mix == "mono":
            pcm = callee
        else:
            robot = timeline.render("robot", start, end, self.rate)
            if self.mix == "mixed":
                pcm = np.clip(callee.astype(np.int32) + robot, -32768, 32767).astype(np.int16)
            else:  # stereo: callee left, robot right, interleaved
                pcm = np.stack([callee, robot], axis=1).reshape(-1)
        return pcm.astype("<i2").tobytes()

    def send_due(self, now: float) -> None:
        """Send every 20 ms frame that is due by ``now`` (called by the manager's pump).

        A fork that fell more than ``MAX_BEHIND`` frames behind skips ahead, as a real media
        bug drops audio when its buffer overruns.
        """
        if self.next_t is None:
            self.next_t = now
        if now - self.next_t > MAX_BEHIND * FRAME_SECONDS:
            log.warning("%s: audio fork %.1f s behind: %d frames dropped", self.sess.ch.uuid,
                        now - self.next_t, int((now - self.next_t) / FRAME_SECONDS) - 1)
            self.next_t = now - FRAME_SECONDS
        while self.next_t + FRAME_SECONDS <= now:
            if not self.paused:
                self.ws.send_binary(self._frame(self.next_t, self.next_t + FRAME_SECONDS))
                self.frames_sent += 1
            self.next_t += FRAME_SECONDS

    def _read(self) -> None:
        while True:
            msg = self.ws.recv()
            if msg is None:
                self.manager.streaming.discard(self)
                if not self.stopping:
                    self.stopping = True
                    if self.sess.ch.up:
                        self.event("mod_audio_fork::disconnect")
                return
            opcode, payload = msg
            if opcode == OP_TEXT:
                self._handle(payload.decode("utf-8", errors="replace"))

    def _handle(self, text: str) -> None:
        try:
            msg = json.loads(text)
        except json.JSONDecodeError:
            log.info("%s: audio fork: ignored non-JSON message", self.sess.ch.uuid)
            return
        if not isinstance(msg, dict):
            return
        kind, data = msg.get("type"), msg.get("data")

        def dump(obj):
            return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))

        if kind == "playAudio" and isinstance(data, dict):
            data = dict(data)
            audio = data.pop("audioContent", None)
            if audio and data.get("audioContentType") in ("raw", "wave"):
                suffix = f".r{int(data.get('sampleRate') or 16000) // 1000}" if data.get("audioContentType") == "raw" else ".wav"
                self.manager.play_count += 1
                path = os.path.join(tempfile.gettempdir(), f"{self.sess.ch.uuid}_{self.manager.play_count}.tmp{suffix}")
                with open(path, "wb") as f:
                    f.write(base64.b64decode(audio))
                self.sess.temp_files.append(path)
                data["file"] = path
            self.event("mod_audio_fork::play_audio", dump(data))
        elif kind == "killAudio":
            self.event("mod_audio_fork::kill_audio")
            self.sess.break_playback(flush=False)
        elif kind == "json":
            self.event("mod_audio_fork::json", dump(msg))
        elif kind in EVENT_TYPES:
            self.event(EVENT_TYPES[kind], dump(data) if data is not None else None)
        else:
            log.info("%s: audio fork: unsupported message type %r", self.sess.ch.uuid, kind)

    def close(self, final_text: str | None) -> None:
        self.stopping = True
        self.manager.streaming.discard(self)
        if self.ws is not None and not self.ws.closed:
            try:
                if final_text:
                    self.ws.send_text(final_text)
            except OSError as exc:
                log.debug("audio fork final text not sent: %s", exc)
            self.ws.close()
        if self.greenlet is not None:
            self.greenlet.kill(block=False)


class ForkManager:
    """The ``uuid_audio_fork`` API and the forks of every session."""

    def __init__(self, switch_ref, subprotocol: str | None = DEFAULT_SUBPROTOCOL, connect_timeout: float = 5.0):
        self._switch = switch_ref
        self.subprotocol = subprotocol
        self.connect_timeout = connect_timeout
        self.play_count = 0
        # One pump greenlet sends the frames of every fork: far cheaper than a timer per fork.
        self.streaming: set = set()
        self._pump = None

    def wake(self) -> None:
        if self._pump is None or self._pump.dead:
            self._pump = gevent.spawn(self._run_pump)

    def _run_pump(self) -> None:
        clock = self.switch.clock
        while self.streaming:
            now = clock.now()
            for fork in list(self.streaming):
                try:
                    fork.send_due(now)
                except OSError as exc:
                    log.info("%s: audio fork send failed: %s", fork.sess.ch.uuid, exc)
                    self.streaming.discard(fork)
            clock.sleep(FRAME_SECONDS - (clock.now() - now) % FRAME_SECONDS)

    @property
    def switch(self):
        return self._switch()

    def api(self, args: str) -> str:
        argv = args.split(" ", 6) if args else []
        if len(argv) < 2 or (argv[1] == "start" and len(argv) < 4):
            return USAGE
        sess = self.switch.get(argv[0])
        if sess is None:
            return "-ERR Operation Failed\n"
        cmd = argv[1].lower()
        if cmd == "start":
            return self.start(sess, argv[2:])
        fork = sess.forks.get("audio_fork")
        if fork is None:
            return "-ERR Operation Failed\n"
        if cmd == "stop":
            self.stop(sess, " ".join(argv[2:]) or None)
        elif cmd == "send_text" and len(argv) > 2:
            if fork.ws is None or fork.ws.closed:
                return "-ERR Operation Failed\n"
            fork.ws.send_text(" ".join(argv[2:]))
        elif cmd in ("pause", "resume"):
            fork.paused = cmd == "pause"
        elif cmd == "stop_play":
            sess.break_playback(flush=False)
        elif cmd == "graceful-shutdown":
            self.stop(sess, None)
        else:
            return "-ERR Operation Failed\n"
        return "+OK Success\n"

    def start(self, sess, argv: list) -> str:
        url, mix = argv[0], argv[1] if len(argv) > 1 else "mono"
        rate_word = argv[2] if len(argv) > 2 else "8k"
        rest = argv[3:]
        if mix not in ("mono", "mixed", "stereo") or "audio_fork" in sess.forks:
            return "-ERR Operation Failed\n"
        rate = {"8k": 8000, "16k": 16000}.get(rate_word)
        if rate is None:
            try:
                rate = int(rate_word)
            except ValueError:
                return "-ERR Operation Failed\n"
        if rate not in (8000, 16000) or not url.startswith(("ws://", "http://")):
            return "-ERR Operation Failed\n"
        # Optional bugname, then metadata (the rest of the line, JSON usually).
        bugname, metadata = "audio_fork", None
        if rest:
            tail = " ".join(rest)
            if tail.startswith(("{", "[")):
                metadata = tail
            else:
                bugname, _, metadata = tail.partition(" ")
                metadata = metadata or None
        if not sess.ch.progress_media and not sess.ch.answered:
            return "-ERR Operation Failed\n"
        fork = Fork(self, sess, url, mix, rate, bugname, metadata)
        sess.forks["audio_fork"] = fork
        self.switch.channel_event(sess.ch, "MEDIA_BUG_START", before=[("Media-Bug-Function", "audio_fork"), ("Media-Bug-Target", "N/A")])
        fork.greenlet = sess.group.spawn(fork.run)
        return "+OK Success\n"

    def stop(self, sess, final_text: str | None) -> None:
        fork = sess.forks.pop("audio_fork", None)
        if fork is None:
            return
        fork.close(final_text)
        self.switch.channel_event(sess.ch, "MEDIA_BUG_STOP", before=[("Media-Bug-Function", "audio_fork"), ("Media-Bug-Target", "N/A")])

    def stop_all(self, sess) -> None:
        self.stop(sess, None)
        for path in sess.temp_files:
            try:
                os.unlink(path)
            except OSError as exc:
                log.debug("temp file %s: %s", path, exc)
