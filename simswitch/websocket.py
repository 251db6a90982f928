"""A minimal RFC 6455 WebSocket client on gevent sockets (what mod_audio_fork's libwebsockets
client does for us): handshake with a subprotocol, masked text/binary frames, close.

gevent-native so simswitch never needs ``gevent.monkey`` when it runs inside a test process.
"""

import base64
import hashlib
import logging
import os
import random
import struct
from urllib.parse import urlsplit

from gevent import socket

log = logging.getLogger(__name__)
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_RNG = random.Random(os.urandom(16))  # noqa: S311 - masking keys, not secrets
OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x1, 0x2, 0x8, 0x9, 0xA


class WebSocketError(OSError):
    """Handshake refused, protocol violation or connection lost."""


def _mask(payload: bytes, key: bytes) -> bytes:
    # XOR through Python ints: one C-level operation per frame instead of a byte loop.
    n = len(payload)
    if n == 0:
        return payload
    repeated = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(repeated, "little")).to_bytes(n, "little")


class WebSocketClient:
    """One client connection. ``recv()`` returns (opcode, payload) or None once closed."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self._buf = b""
        self.closed = False

    @classmethod
    def connect(cls, url: str, subprotocol: str | None, timeout: float) -> "WebSocketClient":
        """Open ``ws://host:port/path``; raise ``WebSocketError``/``OSError`` on failure."""
        parts = urlsplit(url)
        if parts.scheme not in ("ws", "http"):
            raise WebSocketError(f"unsupported scheme {parts.scheme!r} (wss is not modelled)")
        host, port = parts.hostname, parts.port or 80
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        sock = socket.create_connection((host, port), timeout=timeout)
        try:
            key = base64.b64encode(os.urandom(16))
            lines = [
                f"GET {path} HTTP/1.1",
                f"Host: {host}:{port}",
                "Upgrade: websocket",
                "Connection: Upgrade",
                f"Sec-WebSocket-Key: {key.decode()}",
                "Sec-WebSocket-Version: 13",
            ]
            if subprotocol:
                lines.append(f"Sec-WebSocket-Protocol: {subprotocol}")
            sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
            client = cls(sock)
            head = client._read_until(b"\r\n\r\n")
            status = head.split(b"\r\n", 1)[0]
            if b" 101 " not in status + b" ":
                raise WebSocketError(f"handshake refused: {status.decode(errors='replace')}")
            expected = base64.b64encode(hashlib.sha1(key + _GUID).digest())
            if expected not in head:
                raise WebSocketError("handshake: bad Sec-WebSocket-Accept")
            sock.settimeout(None)
            return client
        except BaseException:
            sock.close()
            raise

    def _read_until(self, marker: bytes) -> bytes:
        while marker not in self._buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise WebSocketError("connection closed during handshake")
            self._buf += chunk
        head, _, self._buf = self._buf.partition(marker)
        return head

    def _read_exact(self, n: int) -> bytes:
        while len(self._buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise WebSocketError("connection closed")
            self._buf += chunk
        data, self._buf = self._buf[:n], self._buf[n:]
        return data

    def _send(self, opcode: int, payload: bytes) -> None:
        n = len(payload)
        if n < 126:
            header = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
        elif n < 65536:
            header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
        else:
            header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
        # A fresh masking key per frame (RFC 6455 §5.3); getrandbits avoids a syscall per frame.
        key = _RNG.getrandbits(32).to_bytes(4, "little")
        data = header + key + _mask(payload, key)
        # One plain send() is enough almost always; sendall() only for the remainder.
        sent = self.sock.send(data)
        if sent < len(data):
            self.sock.sendall(data[sent:])

    def send_text(self, text: str) -> None:
        self._send(OP_TEXT, text.encode("utf-8"))

    def send_binary(self, data: bytes) -> None:
        self._send(OP_BINARY, data)

    def recv(self):
        """Next data message as (opcode, payload); answers pings; None after a close."""
        message, first_op = b"", None
        while True:
            try:
                b1, b2 = self._read_exact(2)
            except OSError:
                self.closed = True
                return None
            fin, opcode, length = b1 & 0x80, b1 & 0x0F, b2 & 0x7F
            if length == 126:
                (length,) = struct.unpack("!H", self._read_exact(2))
            elif length == 127:
                (length,) = struct.unpack("!Q", self._read_exact(8))
            key = self._read_exact(4) if b2 & 0x80 else None
            payload = self._read_exact(length)
            if key:
                payload = _mask(payload, key)
            if opcode == OP_PING:
                self._send(OP_PONG, payload)
                continue
            if opcode == OP_PONG:
                continue
            if opcode == OP_CLOSE:
                self.close(reply=True)
                return None
            if opcode != 0:
                first_op = opcode
            message += payload
            if fin:
                return first_op, message

    def close(self, reply: bool = False) -> None:
        """Send a close frame (status 1000) and close the socket."""
        if self.closed and not reply:
            return
        try:
            self._send(OP_CLOSE, struct.pack("!H", 1000))
        except OSError as exc:
            # The peer is already gone; closing our side is all that is left.
            log.debug("websocket close frame not sent: %s", exc)
        self.closed = True
        self.sock.close()
