"""Event Socket links to FreeSWITCH nodes, built on greenswitch but not trusting it.

greenswitch 0.0.19 mangles event bodies, has no timeouts and never reconnects
(shared/fixtures/esl/GREENSWITCH.md). `ControllerESL` parses plain events the way libesl does;
`NodeLink` owns one node's connection: connect with timeouts, subscribe, reconnect with
back-off, and tell its owner when the link goes up or down so calls can be resynchronised.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import unquote

import gevent
import gevent.event
import greenswitch
from gevent.event import Event
from greenswitch import esl

from core.settings import FsNode

log = logging.getLogger(__name__)

COMMAND_TIMEOUT = 10.0
CONNECT_TIMEOUT = 5.0
BACKOFF = (0.5, 1, 2, 5, 10, 30)  # seconds between reconnect attempts, the last repeats


class EslError(Exception):
    """A command failed, timed out or the link is down."""


class LinkDown(EslError):
    """The link was down: the command was certainly not sent."""


class LinkLost(EslError):
    """The link went down while the command waited for its reply: the switch may or may not
    have run it."""


def parse_plain_event(text: str) -> tuple[dict[str, str], str | None]:
    """Split a text/event-plain body into URL-decoded headers and an optional body."""
    head, _, body = text.partition("\n\n")
    headers: dict[str, str] = {}
    for line in head.split("\n"):
        if line:
            name, _, value = line.partition(": ")
            headers[name] = unquote(value) if "%" in value else value
    return headers, (body if "Content-Length" in headers else None)


class ControllerESL(greenswitch.InboundESL):
    """InboundESL that keeps event bodies intact (events carry `.headers` and `.body`),
    writes whole requests (greenswitch's `sock.send` may write part of one), and fails the
    waiting commands at once when the connection is closed."""

    def send(self, data):
        if not self.connected:
            raise esl.NotConnectedError()
        waiter = gevent.event.AsyncResult()
        self._commands_sent.append(waiter)
        try:
            self.sock.sendall((data + self._EOL * 2).encode("utf-8"))
        except OSError as exc:
            self._commands_sent.remove(waiter)
            raise LinkDown(f"write failed: {exc}") from exc
        return waiter.get()

    def fail_pending(self) -> None:
        pending, self._commands_sent = self._commands_sent, []
        for waiter in pending:
            waiter.set_exception(LinkLost("connection lost before the reply"))

    def handle_event(self, event):
        if event.headers.get("Content-Type") == "text/event-plain":
            raw = self._read_socket(self.sock_file, int(event.headers["Content-Length"]))
            event.headers, event.body = parse_plain_event(raw)
            self._esl_event_queue.put(event)
            return None
        return super().handle_event(event)


@dataclass
class NodeLink:
    """One node's Event Socket connection, kept up for as long as `run()` runs.

    `events` are subscribed with `event plain`; `on_event(node_name, headers, body)` is called
    for each (it must only enqueue: it runs on greenswitch's single dispatch greenlet);
    `on_state(node_name, up)` when the link comes up (after subscribing) or goes down.
    """

    node: FsNode
    events: tuple[str, ...] = ("ALL",)
    # `filter <Header> <value>` pairs sent after subscribing. Filters OR (PROTOCOL.md §3.2):
    # an event passes when any one matches.
    filters: tuple[tuple[str, str], ...] = ()
    on_event: Callable[[str, dict, str | None], None] | None = None
    on_state: Callable[[str, bool], None] | None = None
    up: Event = field(default_factory=Event)
    _conn: ControllerESL | None = None
    _stopping: bool = False

    def run(self) -> None:
        attempt = 0
        while not self._stopping:
            try:
                self._connect()
                attempt = 0
                self._watch()
            except (OSError, EslError, esl.NotConnectedError, ValueError,
                    gevent.Timeout) as exc:
                log.warning("node %s: %s", self.node.name, exc)
            self._mark_down()
            if self._stopping:
                break
            gevent.sleep(BACKOFF[min(attempt, len(BACKOFF) - 1)])
            attempt += 1

    def stop(self) -> None:
        self._stopping = True
        if self._conn is not None:
            self._conn.connected = False
            self._close()

    def api(self, command: str, timeout: float = COMMAND_TIMEOUT) -> str:
        """Run `api <command>` and return its body; raise EslError if down or too slow."""
        return self._send(f"api {command}", timeout).data

    def bgapi(self, command: str, timeout: float = COMMAND_TIMEOUT,
              job_uuid: str | None = None) -> str:
        """Queue `bgapi <command>`; returns the Job-UUID (the result comes as BACKGROUND_JOB).

        `job_uuid` chooses the id (FreeSWITCH honours a `Job-UUID` request header), so a
        caller can match the BACKGROUND_JOB even if it arrives before this returns.
        """
        line = f"bgapi {command}" + (f"\nJob-UUID: {job_uuid}" if job_uuid else "")
        reply = self._send(line, timeout)
        if not reply.data.startswith("+OK"):
            raise EslError(reply.data)
        return reply.headers.get("Job-UUID", job_uuid)

    def sendmsg(self, uuid: str, headers: dict[str, str],
                timeout: float = COMMAND_TIMEOUT) -> str:
        """`sendmsg <uuid>` with the given headers (call-command, execute-app-name, …)."""
        lines = "".join(f"\n{name}: {value}" for name, value in headers.items())
        reply = self._send(f"sendmsg {uuid}{lines}", timeout)
        if not reply.data.startswith("+OK"):
            raise EslError(reply.data)
        return reply.data

    def channels(self, timeout: float = COMMAND_TIMEOUT) -> dict[str, dict]:
        """The node's live channels from `show channels as json`, by uuid."""
        body = self.api("show channels as json", timeout).strip()
        try:
            rows = json.loads(body).get("rows") or []
        except (ValueError, AttributeError):
            raise EslError(f"unreadable show channels reply: {body[:80]!r}") from None
        return {row["uuid"]: row for row in rows if row.get("uuid")}

    def _send(self, line: str, timeout: float):
        conn = self._conn
        if conn is None or not conn.connected or not self.up.is_set():
            raise LinkDown(f"node {self.node.name} is down")
        try:
            with gevent.Timeout(timeout, EslError(f"{line.split()[0]} timed out")):
                return conn.send(line)
        except esl.NotConnectedError:
            raise LinkDown(f"node {self.node.name} is down") from None
        except EslError:
            # A reply that never came leaves greenswitch's FIFO out of step: start afresh.
            self._close()
            raise

    def _connect(self) -> None:
        conn = ControllerESL(self.node.host, self.node.port, self.node.password,
                             timeout=CONNECT_TIMEOUT)
        with gevent.Timeout(CONNECT_TIMEOUT + 1, EslError("no auth/request")):
            conn.connect()
        if self.on_event is not None:
            conn.register_handle("*", self._dispatch)
        self._conn = conn
        with gevent.Timeout(COMMAND_TIMEOUT, EslError("event subscription timed out")):
            reply = conn.send("event plain " + " ".join(self.events))
        if not reply.data.startswith("+OK"):
            raise EslError(f"event subscription refused: {reply.data}")
        for header, value in self.filters:
            with gevent.Timeout(COMMAND_TIMEOUT, EslError("filter timed out")):
                reply = conn.send(f"filter {header} {value}")
            if not reply.data.startswith("+OK"):
                raise EslError(f"filter refused: {reply.data}")
        self.up.set()
        log.info("node %s: connected to %s:%d", self.node.name, self.node.host, self.node.port)
        if self.on_state is not None:
            self.on_state(self.node.name, True)

    def _dispatch(self, event) -> None:
        self.on_event(self.node.name, event.headers, getattr(event, "body", None))

    def _watch(self) -> None:
        # greenswitch flips `connected` on a disconnect notice; a dead receive greenlet
        # (its parser crashed, or EOF) means the same.
        conn = self._conn
        while (conn is not None and self._conn is conn and conn.connected
               and not conn._receive_events_greenlet.dead):
            gevent.sleep(0.2)
        raise EslError("connection lost")

    def _mark_down(self) -> None:
        was_up = self.up.is_set()
        self.up.clear()
        self._close()
        if was_up and self.on_state is not None:
            self.on_state(self.node.name, False)

    def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        conn.connected = False
        conn.fail_pending()
        for greenlet in (getattr(conn, "_receive_events_greenlet", None),
                         getattr(conn, "_process_events_greenlet", None)):
            if greenlet is not None:
                greenlet.kill(block=False)
        if conn.sock is not None:
            conn.sock.close()
