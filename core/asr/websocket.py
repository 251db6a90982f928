"""A small RFC 6455 WebSocket implementation on gevent sockets, for both ends we need: the
FunASR client (here) and the controller's mod_audio_fork server (controller/media).

gevent-native (cooperative with or without `gevent.monkey`), no extensions, no TLS.
`Connection.recv()` returns (opcode, payload) or None once closed; pings are answered.
"""

from __future__ import annotations

import base64
import hashlib
import os
import struct
from urllib.parse import urlsplit

import numpy as np
from gevent import socket

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
MAX_FRAME = 16 * 1024 * 1024


class WebSocketError(OSError):
    """Handshake refused, protocol violation or connection lost."""


def accept_key(key: str) -> str:
    return base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()


def _unmask(payload: bytes, key: bytes) -> bytes:
    n = len(payload)
    if not n:
        return payload
    mask = np.frombuffer((key * (n // 4 + 1))[:n], dtype=np.uint8)
    return (np.frombuffer(payload, dtype=np.uint8) ^ mask).tobytes()


class Connection:
    """One open WebSocket (either end). `mask` is True on the client side."""

    def __init__(self, sock, mask: bool, buffered: bytes = b""):
        self.sock = sock
        self.mask = mask
        self._buf = bytearray(buffered)
        self.closed = False

    # --- sending -------------------------------------------------------------------------
    def _send(self, opcode: int, payload: bytes) -> None:
        if self.closed:
            raise WebSocketError("connection closed")
        n = len(payload)
        head = bytearray([0x80 | opcode])
        bit = 0x80 if self.mask else 0
        if n < 126:
            head.append(bit | n)
        elif n < 65536:
            head += struct.pack("!BH", bit | 126, n)
        else:
            head += struct.pack("!BQ", bit | 127, n)
        if self.mask:
            key = os.urandom(4)
            head += key
            payload = _unmask(payload, key)
        self.sock.sendall(bytes(head) + payload)

    def send_text(self, text: str) -> None:
        self._send(OP_TEXT, text.encode("utf-8"))

    def send_binary(self, data: bytes) -> None:
        self._send(OP_BINARY, data)

    def close(self, code: int = 1000) -> None:
        if not self.closed:
            try:
                self._send(OP_CLOSE, struct.pack("!H", code))
            except OSError:
                pass
            self.closed = True
        try:
            self.sock.close()
        except OSError:
            pass

    # --- receiving -----------------------------------------------------------------------
    def _read(self, n: int) -> bytes:
        while len(self._buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise WebSocketError("connection closed by peer")
            self._buf += chunk
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out

    def _frame(self) -> tuple[bool, int, bytes]:
        buf = self._buf
        # Fast path: the whole frame is already buffered (one 20 ms audio frame per read).
        if len(buf) >= 2 and (buf[1] & 0x7F) < 126:
            b0, b1 = buf[0], buf[1]
            n, head = b1 & 0x7F, 6 if b1 & 0x80 else 2
            if len(buf) >= head + n:
                payload = bytes(buf[head:head + n])
                if head == 6:
                    payload = _unmask(payload, bytes(buf[2:6]))
                del buf[:head + n]
                return bool(b0 & 0x80), b0 & 0x0F, payload
        b0, b1 = self._read(2)
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", self._read(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", self._read(8))[0]
        if n > MAX_FRAME:
            raise WebSocketError("frame too large")
        key = self._read(4) if b1 & 0x80 else None
        payload = self._read(n)
        if key:
            payload = _unmask(payload, key)
        return bool(b0 & 0x80), b0 & 0x0F, payload

    def recv(self) -> tuple[int, bytes] | None:
        """The next message (text/binary, fragments joined), or None when closed."""
        if self.closed:
            return None
        parts, first = [], None
        try:
            while True:
                fin, op, payload = self._frame()
                if op == OP_PING:
                    self._send(OP_PONG, payload)
                    continue
                if op == OP_PONG:
                    continue
                if op == OP_CLOSE:
                    self.close()
                    return None
                if op != OP_CONT:
                    first = op
                parts.append(payload)
                if fin:
                    return first, b"".join(parts)
        except OSError:
            self.closed = True
            try:
                self.sock.close()
            except OSError:
                pass
            return None


def connect(url: str, subprotocol: str | None = None, timeout: float = 5.0) -> Connection:
    """Open a client connection to ws://host:port/path; raises WebSocketError / OSError."""
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "http"):
        raise WebSocketError(f"unsupported URL scheme {parts.scheme!r} (ws:// only)")
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    sock = socket.create_connection((host, port), timeout=timeout)
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}:{port}", "Upgrade: websocket",
             "Connection: Upgrade", f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13"]
    if subprotocol:
        lines.append(f"Sec-WebSocket-Protocol: {subprotocol}")
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(4096)
        if not chunk:
            sock.close()
            raise WebSocketError("handshake: connection closed")
        buf += chunk
        if len(buf) > 65536:
            sock.close()
            raise WebSocketError("handshake: response too long")
    head, _, rest = buf.partition(b"\r\n\r\n")
    status, headers = _parse_head(head)
    if " 101 " not in status + " " or headers.get("sec-websocket-accept") != accept_key(key):
        sock.close()
        raise WebSocketError(f"handshake refused: {status}")
    sock.settimeout(None)
    return Connection(sock, mask=True, buffered=rest)


def _parse_head(head: bytes) -> tuple[str, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return lines[0], headers


def server_handshake(sock, subprotocols: tuple[str, ...], timeout: float = 5.0):
    """Read a client's upgrade request on `sock` and answer it.

    Returns (Connection, path, chosen subprotocol or None); raises WebSocketError after
    answering 400 when the request is not a WebSocket upgrade.
    """
    sock.settimeout(timeout)
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(4096)
        if not chunk:
            raise WebSocketError("closed before the handshake")
        buf += chunk
        if len(buf) > 65536:
            raise WebSocketError("handshake too long")
    head, _, rest = buf.partition(b"\r\n\r\n")
    request, headers = _parse_head(head)
    method, _, tail = request.partition(" ")
    path = tail.rpartition(" ")[0] or "/"
    key = headers.get("sec-websocket-key")
    if method != "GET" or "websocket" not in headers.get("upgrade", "").lower() or not key:
        sock.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        raise WebSocketError("not a WebSocket upgrade")
    offered = [p.strip() for p in headers.get("sec-websocket-protocol", "").split(",") if p.strip()]
    chosen = next((p for p in offered if p in subprotocols), None)
    lines = ["HTTP/1.1 101 Switching Protocols", "Upgrade: websocket", "Connection: Upgrade",
             f"Sec-WebSocket-Accept: {accept_key(key)}"]
    if chosen:
        lines.append(f"Sec-WebSocket-Protocol: {chosen}")
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    sock.settimeout(None)
    return Connection(sock, mask=False, buffered=rest), path, chosen
