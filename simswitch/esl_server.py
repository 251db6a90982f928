"""The Event Socket server (inbound mode): framing, authentication, subscriptions, filters,
api/bgapi, sendmsg — one ``EslConnection`` per client, as mod_event_socket's listener thread.

As in FreeSWITCH, a command's reply is written before any event queued while it ran: the
connection holds its write lock while a command runs, and events wait for it.
"""

import logging
import re
import uuid as uuidlib

import gevent
import gevent.lock
import gevent.pool
import gevent.queue
from gevent.server import StreamServer

from simswitch.events import EVENT_NAMES, Event

log = logging.getLogger(__name__)

GOODBYE = b"Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n"
MAX_CONTENT_LENGTH = 16 * 1024 * 1024
MYEVENTS = frozenset(
    """CHANNEL_ANSWER CHANNEL_APPLICATION CHANNEL_BRIDGE CHANNEL_CREATE CHANNEL_DATA
    CHANNEL_DESTROY CHANNEL_EXECUTE CHANNEL_EXECUTE_COMPLETE CHANNEL_HANGUP
    CHANNEL_HANGUP_COMPLETE CHANNEL_ORIGINATE CHANNEL_UUID CHANNEL_OUTGOING CHANNEL_PARK
    CHANNEL_PROGRESS CHANNEL_PROGRESS_MEDIA CHANNEL_STATE CHANNEL_UNBRIDGE CHANNEL_UNPARK
    DETECTED_SPEECH DTMF NOTALK TALK""".split()
)
LOG_LEVELS = {"console": 0, "alert": 1, "crit": 2, "err": 3, "warning": 4, "notice": 5, "info": 6, "debug": 7}


def reply(text: str, extra=()) -> bytes:
    """A ``command/reply`` frame."""
    lines = ["Content-Type: command/reply", f"Reply-Text: {text}"] + [f"{k}: {v}" for k, v in extra]
    return ("\n".join(lines) + "\n\n").encode("utf-8")


def api_response(body: str) -> bytes:
    data = body.encode("utf-8")
    return b"Content-Type: api/response\nContent-Length: %d\n\n" % len(data) + data


def disconnect_notice(session_uuid: str | None = None) -> bytes:
    head = "Content-Type: text/disconnect-notice\n"
    if session_uuid:
        head += f"Controlled-Session-UUID: {session_uuid}\nContent-Disposition: disconnect\n"
    return head.encode() + b"Content-Length: %d\n\n" % len(GOODBYE) + GOODBYE


class EslConnection:
    """One client connection: reader (commands) + writer (events), like an FS listener."""

    def __init__(self, server, sock):
        self.server = server
        self.switch = server.switch
        self.sock = sock
        self.authed = False
        self.running = True
        self.lock = gevent.lock.Semaphore()
        self.outbox = gevent.queue.Queue()
        self.fmt = "plain"
        self.listening = False
        self.all_events = False
        self.names: set = set()
        self.nixed: set = set()
        self.all_custom = False
        self.subclasses: set = set()
        self.filters: list = []
        self.session_uuid: str | None = None
        self.linger: int | None = None
        self.logging = False
        self._buf = b""

    # --- I/O -------------------------------------------------------------------------------
    def send(self, data: bytes) -> None:
        with self.lock:
            self.sock.sendall(data)

    def _read_request(self):
        """One request: (command line, headers dict, body) or None at EOF."""
        while True:
            idx = self._find_end()
            if idx is not None:
                break
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self._buf += chunk
        block, self._buf = self._buf[: idx[0]], self._buf[idx[1] :]
        lines = [ln.rstrip("\r") for ln in block.decode("utf-8", errors="replace").split("\n")]
        lines = [ln for ln in lines if ln != ""] or [""]
        command, headers = lines[0], {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.lstrip(" ")
        body = b""
        length = headers.get("content-length")
        if length is not None:
            n = int(length) if length.strip().lstrip("-").isdigit() else -1
            if n < 0 or n > MAX_CONTENT_LENGTH:
                raise ConnectionError("bad Content-Length")
            while len(self._buf) < n:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return None
                self._buf += chunk
            body, self._buf = self._buf[:n], self._buf[n:]
        return command, headers, body

    def _find_end(self):
        # Leading blank lines are skipped; a block ends at "\n\n" ("\r" does not reset it).
        self._buf = self._buf.lstrip(b"\r\n")
        m = re.search(rb"\n\r?\n", self._buf)
        return (m.start(), m.end()) if m else None

    def serve(self) -> None:
        writer = gevent.spawn(self._writer)
        self.switch.listeners.add(self)
        try:
            self.send(b"Content-Type: auth/request\n\n")
            while self.running:
                request = self._read_request()
                if request is None:
                    break
                with self.lock:
                    out = self.handle(*request)
                    if out:
                        self.sock.sendall(out)
        except (OSError, ConnectionError, UnicodeError) as exc:
            log.debug("ESL connection ended: %s", exc)
        finally:
            self.switch.listeners.discard(self)
            self.running = False
            writer.kill()
            self.sock.close()

    def _writer(self) -> None:
        while True:
            first = self.outbox.get()
            batch = [first]
            while not self.outbox.empty() and len(batch) < 256:
                batch.append(self.outbox.get_nowait())
            close = any(b is None for b in batch)
            data = b"".join(b for b in batch if b is not None)
            try:
                with self.lock:
                    if data:
                        self.sock.sendall(data)
                    if close:
                        self.running = False
                        self.sock.shutdown(2)
                        return
            except OSError as exc:
                log.debug("ESL write failed: %s", exc)
                return

    def close_after(self, data: bytes) -> None:
        """Write ``data`` after everything queued, then close (FreeSWITCH's teardown)."""
        self.outbox.put(data)
        self.outbox.put(None)

    # --- event delivery -----------------------------------------------------------------------
    def deliver(self, event: Event) -> None:
        """Queue ``event`` if this connection's subscription and filters let it through."""
        if not self.listening or not self.running:
            return
        if event.name == "CUSTOM":
            if not (self.all_custom or event.subclass in self.subclasses):
                return
        elif not ((self.all_events and event.name not in self.nixed) or event.name in self.names):
            return
        if self.session_uuid is not None:
            if event.get("Unique-ID") != self.session_uuid:
                return
        if self.filters and not self._passes_filters(event):
            return
        self.outbox.put(event.frame(self.fmt))
        if self.session_uuid and event.name == "CHANNEL_HANGUP" and event.get("Unique-ID") == self.session_uuid:
            self._bound_channel_gone(event)

    def _passes_filters(self, event: Event) -> bool:
        matched = False
        for header, value in self.filters:
            actual = event.get(header)
            if actual is None:
                continue
            negative = value.startswith("-")
            pattern = value[1:] if negative else value
            if pattern.startswith("/"):
                hit = re.search(pattern[1:].rstrip("/"), actual) is not None
            else:
                hit = actual.lower() == pattern.lower()
            if hit and negative:
                return False
            if hit:
                matched = True
        return matched

    def _bound_channel_gone(self, event: Event) -> None:
        if self.linger is None:
            self.close_after(disconnect_notice(self.session_uuid))
            return
        notice = (
            "Content-Type: text/disconnect-notice\n"
            f"Controlled-Session-UUID: {self.session_uuid}\n"
            "Content-Disposition: linger\n"
            f"Channel-Name: {event.get('Channel-Name')}\n"
            f"Linger-Time: {self.linger}\n"
            "Content-Length: 0\n\n"
        )
        self.outbox.put(notice.encode())
        if self.linger >= 0:
            gevent.spawn_later(self.switch.clock.real_seconds(self.linger), self.close_after, disconnect_notice(self.session_uuid))

    # --- commands -----------------------------------------------------------------------------
    def handle(self, command: str, headers: dict, body: bytes) -> bytes | None:
        """Run one request and return its reply frame (mod_event_socket parse_command order)."""
        low = command.lower()
        if low.startswith("exit") or low.startswith("..."):
            self.close_after(disconnect_notice(self.session_uuid))
            return reply("+OK bye")
        if not self.authed:
            if low.startswith("auth "):
                if command[5:].strip() == self.server.password:
                    self.authed = True
                    return reply("+OK accepted")
                self.close_after(disconnect_notice())
                return reply("-ERR invalid")
            return reply("-ERR command not found")
        for prefix, func in (
            ("filter", self.cmd_filter),
            ("myevents", self.cmd_myevents),
            ("divert_events", lambda a, h, b: reply("-ERR not controlling a session.")),
            ("sendmsg", self.cmd_sendmsg),
            ("sendevent", self.cmd_sendevent),
            ("api ", self.cmd_api),
            ("bgapi ", self.cmd_bgapi),
            ("log", self.cmd_log),
            ("nolinger", self.cmd_nolinger),
            ("linger", self.cmd_linger),
            ("nolog", self.cmd_nolog),
            ("event", self.cmd_event),
            ("nixevent", self.cmd_nixevent),
            ("noevents", self.cmd_noevents),
        ):
            if low.startswith(prefix):
                args = command[len(prefix) :].strip()
                return func(args, headers, body)
        return reply("-ERR command not found")

    def cmd_filter(self, args: str, _h, _b) -> bytes:
        parts = args.split(" ", 1)
        if parts[0].lower() == "delete":
            rest = parts[1].split(" ", 1) if len(parts) > 1 else [""]
            header, value = rest[0], (rest[1] if len(rest) > 1 else "")
            if header.lower() == "all":
                self.filters.clear()
            else:
                self.filters = [
                    (h, v) for h, v in self.filters if not (h.lower() == header.lower() and (not value or v == value))
                ]
            return reply(f"+OK filter deleted. [{header}]=[{value}]")
        if len(parts) < 2 or not parts[1]:
            return reply("-ERR invalid syntax")
        self.filters.append((parts[0], parts[1]))
        return reply(f"+OK filter added. [{parts[0]}]=[{parts[1]}]")

    def _parse_names(self, tokens: list):
        names, subclasses, custom, all_ = set(), set(), False, False
        for token in tokens:
            if custom:
                subclasses.add(token)
                continue
            name = token.upper()
            if name.startswith("SWITCH_EVENT_"):
                name = name[len("SWITCH_EVENT_") :]
            if name == "CUSTOM":
                custom = True
            elif name == "ALL":
                all_ = True
            elif name in EVENT_NAMES:
                names.add(name)
        return names, subclasses, custom, all_

    def cmd_event(self, args: str, _h, _b) -> bytes:
        tokens = args.split()
        if tokens and tokens[0].lower() in ("plain", "json", "xml"):
            if tokens[0].lower() == "xml":
                return reply("-ERR xml event format is not modelled by simswitch")
            self.fmt = tokens.pop(0).lower()
        names, subclasses, custom, all_ = self._parse_names(tokens)
        if not (names or subclasses or custom or all_):
            return reply("-ERR no keywords supplied")
        self.listening = True
        self.names |= names
        self.subclasses |= subclasses
        self.nixed -= names
        if all_:
            self.all_events = True
            self.all_custom = True
            self.nixed.clear()
        return reply(f"+OK event listener enabled {self.fmt}")

    def cmd_nixevent(self, args: str, _h, _b) -> bytes:
        names, subclasses, custom, all_ = self._parse_names(args.split())
        if not (names or subclasses or custom or all_):
            return reply("-ERR no keywords supplied")
        if all_:
            self.all_events = self.all_custom = False
            self.names.clear()
            self.subclasses.clear()
        self.names -= names
        self.subclasses -= subclasses
        if self.all_events:
            self.nixed |= names
        return reply("+OK events nixed")

    def cmd_noevents(self, _a, _h, _b) -> bytes:
        if not self.listening:
            return reply("-ERR not listening for events")
        self.listening = self.all_events = self.all_custom = False
        self.names.clear()
        self.subclasses.clear()
        self.nixed.clear()
        return reply("+OK no longer listening for events")

    def cmd_myevents(self, args: str, _h, _b) -> bytes:
        tokens = args.split()
        if not tokens:
            return reply("-ERR invalid uuid")
        uuid = tokens[0]
        if len(tokens) > 1:
            if self.switch.get(uuid) is None:
                return reply("-ERR invalid uuid")
            if tokens[1].lower() in ("plain", "json"):
                self.fmt = tokens[1].lower()
        self.session_uuid = uuid
        self.listening = True
        self.names |= MYEVENTS
        return reply("+OK Events Enabled")

    def cmd_linger(self, args: str, _h, _b) -> bytes:
        if self.session_uuid is None:
            return reply("-ERR not controlling a session")
        secs = args.strip()
        self.linger = int(secs) if secs.lstrip("-").isdigit() else -1
        return reply(f"+OK will linger {secs} seconds" if secs else "+OK will linger")

    def cmd_nolinger(self, _a, _h, _b) -> bytes:
        if self.session_uuid is None:
            return reply("-ERR not controlling a session")
        self.linger = None
        return reply("+OK will not linger")

    def cmd_log(self, args: str, _h, _b) -> bytes:
        # simswitch writes no log lines on the socket: the level is accepted and nothing follows.
        level = args.strip().lower() or "debug"
        number = LOG_LEVELS.get(level) if not level.isdigit() else int(level)
        if number is None or not 0 <= number <= 7:
            return reply("-ERR invalid log level")
        name = next(k for k, v in LOG_LEVELS.items() if v == number)
        self.logging = True
        return reply(f"+OK log level {name} [{number}]")

    def cmd_nolog(self, _a, _h, _b) -> bytes:
        if not self.logging:
            return reply("-ERR not loging")
        self.logging = False
        return reply("+OK no longer logging")

    def cmd_sendevent(self, args: str, headers: dict, body: bytes) -> bytes:
        name = (args.split() or ["CUSTOM"])[0].upper()
        ev = self.switch.events.create(name if name in EVENT_NAMES else "CUSTOM")
        ev.headers += [(k, v) for k, v in headers.items() if k != "content-length"]
        ev.body = body.decode("utf-8", errors="replace") or None
        event_uuid = str(uuidlib.uuid4())
        ev.headers.append(("Event-UUID", event_uuid))
        self.switch.fire(ev)
        return reply(f"+OK {event_uuid}")

    def cmd_sendmsg(self, args: str, headers: dict, body: bytes) -> bytes:
        uuid = args.strip() or headers.get("session-id", "")
        sess = self.switch.get(uuid)
        if sess is None:
            return reply(f"-ERR invalid session id [{uuid}]")
        cmd = headers.get("call-command", "").lower()
        if cmd == "execute":
            app = headers.get("execute-app-name", "")
            arg = headers.get("execute-app-arg", "")
            if not arg and body:
                arg = body.decode("utf-8", errors="replace")
            loops = headers.get("loops", "1")
            count = int(loops) if loops.lstrip("-").isdigit() else 1
            for _ in range(max(1, count)):
                sess.enqueue(app, arg, headers.get("event-uuid"))
        elif cmd == "hangup":
            cause = headers.get("hangup-cause", "NORMAL_CLEARING")
            self.switch.hangup(sess.ch, cause)
        else:
            log.info("sendmsg call-command %r is not modelled", cmd)
        return reply("+OK")

    def _api_event(self, command: str, args: str) -> None:
        ev = self.switch.events.create("API")
        ev.headers.append(("API-Command", command))
        if args:
            ev.headers.append(("API-Command-Argument", args))
        self.switch.fire(ev)

    def _run_api(self, line: str) -> str:
        command, _, args = line.strip().partition(" ")
        self._api_event(command, args)
        output = self.server.commands.execute(command, args)
        if output is None:
            return f"-ERR {command} Command not found!\n"
        return output if output != "" else "-ERR no reply\n"

    def cmd_api(self, args: str, _h, _b) -> bytes:
        return api_response(self._run_api(args))

    def cmd_bgapi(self, args: str, headers: dict, _b) -> bytes:
        job_uuid = headers.get("job-uuid") or str(uuidlib.uuid4())
        command, _, cmd_args = args.strip().partition(" ")

        def job():
            output = self._run_api(args)
            ev = self.switch.events.create("BACKGROUND_JOB")
            ev.headers += [("Job-UUID", job_uuid), ("Job-Command", command)]
            if cmd_args:
                ev.headers.append(("Job-Command-Arg", cmd_args))
            ev.body = output
            self.switch.fire(ev)

        self.server.jobs.spawn(job)
        return reply(f"+OK Job-UUID: {job_uuid}", [("Job-UUID", job_uuid)])


class EslServer:
    """Listens on ``host:port`` and serves ``EslConnection``s."""

    def __init__(self, switch, commands, host: str, port: int, password: str):
        self.switch = switch
        self.commands = commands
        self.password = password
        self.jobs = gevent.pool.Group()
        self.connections: set = set()
        self.server = StreamServer((host, port), self._handle)

    def _handle(self, sock, _address) -> None:
        conn = EslConnection(self, sock)
        self.connections.add(conn)
        try:
            conn.serve()
        finally:
            self.connections.discard(conn)

    def start(self) -> None:
        self.server.start()

    @property
    def port(self) -> int:
        return self.server.server_port

    def stop(self) -> None:
        self.server.stop(timeout=1)
        self.jobs.kill(block=False)
        for conn in list(self.connections):
            conn.sock.close()
