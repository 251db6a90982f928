"""Local servers speaking the external protocols: FunASR's WebSocket 2-pass runtime and an
OpenAI-compatible HTTP API (chat completions and audio transcriptions)."""

from __future__ import annotations

import io
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import gevent
import numpy as np
import soundfile
from gevent.server import StreamServer

from core.asr import websocket as ws


class FakeFunAsr:
    """Answers each connection the way funasr-wss-server-2pass does: a 2pass-online partial
    per ~600 ms of audio, then after {"is_speaking": false} a 2pass-offline final. The text is
    `texts[n]` for the n-th connection (or "" once they run out); records what it received."""

    def __init__(self, texts, delay: float = 0.0, silent: bool = False):
        self.texts, self.delay, self.silent = list(texts), delay, silent
        self.starts: list[dict] = []
        self.audio_bytes: list[int] = []
        self.server = StreamServer(("127.0.0.1", 0), self._handle)

    @property
    def url(self):
        return f"ws://127.0.0.1:{self.server.server_port}"

    def __enter__(self):
        self.server.start()
        return self

    def __exit__(self, *exc):
        self.server.stop(timeout=1)

    def _handle(self, sock, _addr):
        conn, _path, _proto = ws.server_handshake(sock, ())
        n = len(self.starts)
        text = self.texts[n] if n < len(self.texts) else ""
        got, sent_partial = 0, 0
        while True:
            msg = conn.recv()
            if msg is None:
                return
            op, payload = msg
            if op == ws.OP_BINARY:
                got += len(payload)
                if not self.silent and got // 9600 > sent_partial:  # 600 ms at 8 kHz
                    sent_partial = got // 9600
                    conn.send_text(json.dumps({"mode": "2pass-online", "wav_name": "x",
                                               "text": text[:sent_partial], "is_final": False},
                                              ensure_ascii=False))
                continue
            data = json.loads(payload)
            if "mode" in data:
                self.starts.append(data)
                self.audio_bytes.append(0)
            if data.get("is_speaking") is False:
                self.audio_bytes[-1] = got
                if self.silent:
                    continue
                gevent.sleep(self.delay)
                conn.send_text(json.dumps({"mode": "2pass-offline", "wav_name": "x", "text": text,
                                           "is_final": True, "timestamp": "[[0,100]]"},
                                          ensure_ascii=False))


class FakeOpenAi:
    """OpenAI-compatible endpoints on a thread: POST /v1/chat/completions answers from
    `replies` (a list of dicts: {"content": …} or {"tool": name, "args": {…}}, or a callable
    taking the request), POST /v1/audio/transcriptions answers `transcript`. `delay` seconds
    before answering (to test timeouts). Requests are kept in `requests`."""

    def __init__(self, replies=(), transcript: str = "", delay: float = 0.0):
        self.replies, self.transcript, self.delay = list(replies), transcript, delay
        self.requests: list[dict] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                time.sleep(owner.delay)
                if self.path.endswith("/chat/completions"):
                    req = json.loads(body)
                    owner.requests.append(req)
                    out = owner._chat(req)
                elif self.path.endswith("/audio/transcriptions"):
                    owner.requests.append({"path": self.path, "bytes": len(body),
                                           "wav": _wav_seconds(body)})
                    out = {"text": owner.transcript}
                else:
                    self.send_error(404)
                    return
                data = json.dumps(out, ensure_ascii=False).encode()
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True

    @property
    def url(self):
        return f"http://127.0.0.1:{self.httpd.server_port}"

    def _chat(self, req):
        item = self.replies.pop(0) if self.replies else {"content": "好的。"}
        if callable(item):
            item = item(req)
        msg = {"role": "assistant", "content": item.get("content")}
        if item.get("tool"):
            msg["tool_calls"] = [{"id": "call_1", "type": "function", "function": {
                "name": item["tool"], "arguments": json.dumps(item.get("args") or {})}}]
        return {"id": "x", "object": "chat.completion", "model": req.get("model"),
                "choices": [{"index": 0, "message": msg, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 10, "completion_tokens": 5}}

    def __enter__(self):
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def _wav_seconds(body: bytes) -> float:
    start = body.find(b"RIFF")
    if start < 0:
        return 0.0
    data, rate = soundfile.read(io.BytesIO(body[start:]), dtype="int16")
    return len(data) / rate


def tone(seconds: float, rate: int = 8000, freq: float = 300.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (np.sin(2 * np.pi * freq * t) * 8000).astype(np.int16)
