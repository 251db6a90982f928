"""The switch core: live channels, event delivery, originate, answer, hang-up, bridge,
transfer, DTMF and the heartbeat — with the event order FreeSWITCH 1.10 shows in the real
captures (shared/fixtures/esl/real).
"""

import logging
import socket as pysocket
import uuid as uuidlib

import gevent

from simswitch import dialstring, tonedetect
from simswitch.channel import CAUSE_CODES, CAUSE_TO_SIP, Channel, sip_cause
from simswitch.events import Event, EventFactory
from simswitch.session import CallSession, Hangup, Transfer
from simswitch.sofia import Gateways

log = logging.getLogger(__name__)

# Events that carry variable_* headers (switch_channel.c, PROTOCOL.md §5.3).
VAR_EVENTS = frozenset(
    """CHANNEL_CREATE CHANNEL_ORIGINATE CHANNEL_UUID CHANNEL_ANSWER CHANNEL_PARK CHANNEL_UNPARK
    CHANNEL_BRIDGE CHANNEL_UNBRIDGE CHANNEL_PROGRESS CHANNEL_PROGRESS_MEDIA CHANNEL_HANGUP
    CHANNEL_HANGUP_COMPLETE CHANNEL_DATA CHANNEL_EXECUTE CHANNEL_EXECUTE_COMPLETE CHANNEL_DESTROY
    API RECORD_START RECORD_STOP PLAYBACK_START PLAYBACK_STOP CALL_UPDATE MEDIA_BUG_START
    MEDIA_BUG_STOP CUSTOM""".split()
)
DEFAULT_ORIGINATE_TIMEOUT = 60.0
HEARTBEAT_INTERVAL = 20.0
VERSION = "1.10.12-release"


class Switch:
    """Owns every live leg and fans events out to the ESL listeners."""

    def __init__(self, clock, scenario, recorder, cdr=None, forks=None, hostname=None,
                 gateway_config=None):
        self.clock = clock
        self.scenario = scenario
        # `gateway_config()`: the gateways sofia.conf would give (default: the scenario's).
        self.gateways = Gateways(clock, gateway_config or (lambda: scenario.gateways))
        self.recorder = recorder
        self.cdr = cdr
        self.forks = forks
        self.hostname = hostname or pysocket.gethostname()
        self.core_uuid = str(uuidlib.uuid4())
        self.events = EventFactory(clock, self.core_uuid, self.hostname, "127.0.0.1")
        self.sessions: dict[str, CallSession] = {}
        self.listeners: set = set()
        self.started = clock.now()
        self.sessions_since_startup = 0
        self.peak = 0
        self._heartbeat = None

    # --- events ----------------------------------------------------------------------------
    def fire(self, event: Event) -> None:
        """Hand ``event`` to every ESL listener (each applies its own subscription)."""
        for listener in tuple(self.listeners):
            listener.deliver(event)

    def channel_event(self, ch: Channel, name: str, before=(), after=(), body=None) -> Event:
        """Fire ``name`` for ``ch``: common headers, ``before``, channel data, ``after``."""
        ev = self.events.create(name)
        ev.headers += list(before)
        ev.headers += ch.data_headers(name in VAR_EVENTS)
        ev.headers += list(after)
        ev.body = body
        self.fire(ev)
        return ev

    def custom_event(self, ch: Channel, subclass: str, after=(), body=None, origin=None) -> Event:
        ev = self.events.create("CUSTOM", subclass=subclass, origin=origin)
        ev.headers += ch.data_headers(True) + list(after)
        ev.body = body
        self.fire(ev)
        return ev

    def set_state(self, ch: Channel, state: str) -> None:
        ch.state = state
        self.channel_event(ch, "CHANNEL_STATE")

    def set_callstate(self, ch: Channel, callstate: str) -> None:
        ch.callstate = callstate
        self.channel_event(ch, "CHANNEL_CALLSTATE")

    # --- lookup ---------------------------------------------------------------------------
    def get(self, uuid: str) -> CallSession | None:
        sess = self.sessions.get(uuid)
        return sess if sess is not None and sess.ch.up else None

    # --- originate ------------------------------------------------------------------------
    def originate(self, args: str) -> str:
        """The ``originate`` API: blocks until the leg is answered (or early media, unless
        ``ignore_early_media``) or fails; returns ``+OK <uuid>\\n`` or ``-ERR <CAUSE>\\n``."""
        try:
            orig = dialstring.parse_originate(args)
        except dialstring.DialStringError:
            return "-USAGE: <call url> <exten>|&<application_name>(<app_args>) [<dialplan>] [<context>] [<cid_name>] [<cid_num>] [<timeout_sec>]\n"
        sess, cause = self.dial(orig.target, orig.variables, orig.cid_name, orig.cid_number, orig.timeout)
        if sess is None:
            return f"-ERR {cause}\n"
        sess.group.spawn(sess.run, orig.app, orig.app_arg, orig.exten, orig.dialplan, orig.context)
        return f"+OK {sess.ch.uuid}\n"

    def dial(self, target, variables: dict, cid_name=None, cid_number=None, timeout=None):
        """Create and ring a leg; return (session, None) on success, (None, cause) on failure."""
        if target.endpoint not in ("sofia", "user", "loopback"):
            return None, "CHAN_NOT_IMPLEMENTED"
        if target.endpoint == "sofia" and target.gateway and self.gateways.find(target.gateway) is None:
            return None, "INVALID_GATEWAY"
        agent = None
        if target.endpoint == "user":
            agent = self.scenario.agents.get(target.number)
            if agent is None or not agent.registered:
                return None, "USER_NOT_REGISTERED"
        behaviour = agent or self.scenario.outcome_for(target.number)
        ch = self._new_channel(target, variables, cid_name, cid_number)
        sess = CallSession(self, ch, behaviour)
        self.sessions[ch.uuid] = sess
        self.sessions_since_startup += 1
        self.peak = max(self.peak, len(self.sessions))
        timeout = float(variables.get("originate_timeout") or timeout or DEFAULT_ORIGINATE_TIMEOUT)
        try:
            ok = self._ring(sess, agent, timeout, variables.get("ignore_early_media", "false"))
        except Hangup:
            ok = False
        if not ok:
            cause = ch.hangup_cause or "NORMAL_CLEARING"
            self.finish(sess)
            return None, cause
        ch.cid_flipped = True
        ch.set_var("channel_cid_flipped", "yes")
        self.channel_event(ch, "CALL_UPDATE", after=[("Direction", "SEND"), ("Sent-Callee-ID-Name", "Outbound Call"), ("Sent-Callee-ID-Number", ch.destination)])
        return sess, None

    def _new_channel(self, target, variables, cid_name, cid_number) -> Channel:
        uuid = variables.get("origination_uuid") or str(uuidlib.uuid4())
        if target.endpoint == "sofia" and target.gateway:
            proxy = self.gateways.find(target.gateway).proxy
            name = f"sofia/external/{target.number}@{proxy}"
            network = proxy
        elif target.endpoint == "sofia":
            name, network = f"sofia/{target.profile}/{target.number}", "127.0.0.1"
        elif target.endpoint == "user":
            name, network = f"sofia/internal/{target.number}@{self.hostname}", "127.0.0.1"
        else:
            name, network = f"loopback/{target.number}-a", ""
        ch = Channel(
            uuid,
            name,
            target.endpoint if target.endpoint != "user" else "sofia",
            target.number,
            self.clock.now(),
            cid_name=variables.get("origination_caller_id_name", cid_name or ""),
            cid_number=variables.get("origination_caller_id_number", cid_number or "0000000000"),
            context=target.context,
            network_addr=network,
        )
        ch.session_id = self.sessions_since_startup + 1
        for key, value in (
            ("direction", "outbound"),
            ("is_outbound", "true"),
            ("uuid", uuid),
            ("call_uuid", uuid),
            ("session_id", ch.session_id),
            ("channel_name", name),
        ):
            ch.set_var(key, value)
        if target.endpoint == "sofia" or target.endpoint == "user":
            profile = "external" if target.gateway else (target.profile or "internal")
            ch.set_var("sip_profile_name", profile)
            ch.set_var("sofia_profile_name", profile)
            if target.gateway:
                ch.set_var("sip_gateway_name", target.gateway)
            ch.set_var("sip_req_user", target.number)
        for key, value in variables.items():
            ch.set_var(key, value)
        ch.set_var("originate_early_media", "true")
        ch.set_var("originate_endpoint", "loopback" if target.endpoint == "loopback" else "sofia")
        if target.endpoint == "user":
            ch.set_var("dialed_user", target.number)
        return ch

    def _ring(self, sess: CallSession, agent, timeout: float, ignore_early: str) -> bool:
        """Play out the far end's answer/failure; True once originate may return +OK."""
        ch = sess.ch
        t0 = self.clock.now()
        self.channel_event(ch, "CHANNEL_OUTGOING")
        ch.state = "CS_INIT"
        self.channel_event(ch, "CHANNEL_STATE")
        self.channel_event(ch, "CHANNEL_CREATE")
        self.channel_event(ch, "CHANNEL_ORIGINATE")
        self.set_state(ch, "CS_ROUTING")
        self.set_state(ch, "CS_CONSUME_MEDIA")
        if agent is not None:
            ring_after, final_after = 0.1, (agent.answer_after if agent.answers else None)
            result, code, reason, early = "answer", 200, None, None
        else:
            out = sess.behaviour
            ring_after, final_after = out.ring_after, out.answer_after
            result, code, reason, early = out.result, out.sip_code, out.reason_q850, out.early_media
            if result == "no_answer":
                final_after = None
            if out.category:
                ch.set_var("simswitch_category", out.category)
        deadline = t0 + timeout
        if ring_after < min(timeout, final_after if final_after is not None else timeout):
            sess.sleep(ring_after)
            ch.progress = self.clock.now()
            ch.responded = True
            self.channel_event(ch, "CHANNEL_PROGRESS")
            self.set_callstate(ch, "RINGING")
        if early is not None and self.clock.now() < deadline:
            self.pre_answer(ch)
            until = min(deadline, t0 + final_after) if final_after is not None else deadline
            played = sess.early_media(early, sess.behaviour.early_media_loops, until)
            if agent is None and tonedetect.requested(ch.variables):
                tonedetect.start(self, sess, sess.behaviour.category,
                                 tonedetect.first_segment_s(played, sess.media.rate))
            if ignore_early.lower() not in ("true", "consume", "ring_ready"):
                # Early media counts as success by default (originate early_ok).
                self.group_final(sess, result, code, reason, t0, final_after, deadline)
                return True
        end = min(deadline, t0 + final_after) if final_after is not None else deadline
        sess.sleep(end - self.clock.now())
        if final_after is None or t0 + final_after > deadline:
            ch.set_var("sip_hangup_disposition", "send_cancel")
            self.hangup(ch, "NO_ANSWER", sip_status=487)
            return False
        return self._final(sess, result, code, reason)

    def group_final(self, sess, result, code, reason, t0, final_after, deadline) -> None:
        """After an early-media success, the final response still arrives later."""

        def later():
            end = min(deadline, t0 + final_after) if final_after is not None else deadline
            sess.sleep(end - self.clock.now())
            if final_after is None or t0 + final_after > deadline:
                self.hangup(sess.ch, "NO_ANSWER", sip_status=487)
            else:
                self._final(sess, result, code, reason)

        sess.group.spawn(sess._guard, later)

    def _final(self, sess: CallSession, result: str, code: int, reason) -> bool:
        ch = sess.ch
        ch.responded = True
        if result == "answer":
            self.answer(ch)
            b = sess.behaviour
            sess.start_callee(b.steps, getattr(b, "hangup_after", None))
            return True
        ch.set_var("sip_hangup_disposition", "recv_refuse")
        ch.set_var("sip_invite_failure_status", code)
        self.hangup(ch, sip_cause(code, reason), sip_status=code)
        return False

    # --- state changes -------------------------------------------------------------------
    def pre_answer(self, ch: Channel) -> None:
        if ch.progress_media or ch.answered:
            return
        ch.progress_media = self.clock.now()
        ch.has_media = True
        ch.answer_state = "early"
        ch.set_var("endpoint_disposition", "EARLY MEDIA")
        self.channel_event(ch, "CHANNEL_PROGRESS_MEDIA")
        self.set_callstate(ch, "EARLY")

    def answer(self, ch: Channel) -> None:
        if ch.answered or not ch.up:
            return
        ch.answered = self.clock.now()
        ch.has_media = True
        ch.answer_state = "answered"
        codec, rate, _ = ch.codec()
        for key, value in (("read_codec", codec), ("read_rate", rate), ("write_codec", codec), ("write_rate", rate)):
            ch.set_var(key, value)
        ch.set_var("endpoint_disposition", "ANSWER")
        self.channel_event(ch, "CHANNEL_ANSWER")
        self.set_callstate(ch, "ACTIVE")

    def hangup(self, ch: Channel, cause: str, sip_status: int | None = None, disposition: str | None = None) -> None:
        """Start hanging up ``ch``: CHANNEL_HANGUP now; the session unwinds and finishes."""
        if not ch.up:
            return
        cause = cause if cause in CAUSE_CODES else "NORMAL_CLEARING"
        ch.hangup_cause = cause
        ch.hungup = self.clock.now()
        ch.answer_state = "hangup"
        ch.set_var("hangup_cause", cause)
        ch.set_var("hangup_cause_q850", CAUSE_CODES[cause])
        if ch.endpoint == "sofia":
            status = sip_status or (200 if ch.answered else CAUSE_TO_SIP.get(cause, 480))
            ch.set_var("sip_term_status", status)
            ch.set_var("proto_specific_hangup_cause", f"sip:{status}")
            ch.set_var("sip_term_cause", CAUSE_CODES[cause])
            if "sip_hangup_disposition" not in ch.variables:
                ch.set_var("sip_hangup_disposition", disposition or ("send_bye" if ch.answered else "send_cancel"))
        self.channel_event(ch, "CHANNEL_HANGUP")
        self._unbridge(ch)
        sess = self.sessions.get(ch.uuid)
        if sess is not None:
            sess.gone.set()
            sess.interrupt.set()
            other = ch.other
            if other is not None and other.up:
                self.hangup(other, "NORMAL_CLEARING")

    def finish(self, sess: CallSession) -> None:
        """The reporting/destroy half of a hang-up (after the session unwound)."""
        ch = sess.ch
        if sess.finished.is_set():
            return
        sess.finished.set()
        if ch.up:
            self.hangup(ch, "NORMAL_CLEARING")
        if self.forks is not None:
            self.forks.stop_all(sess)
        self.recorder.stop_all(sess)
        self.set_state(ch, "CS_HANGUP")
        self.set_callstate(ch, "HANGUP")
        self.set_state(ch, "CS_REPORTING")
        ch.set_cdr_variables()
        self.channel_event(ch, "CHANNEL_HANGUP_COMPLETE", before=[("Hangup-Cause", ch.hangup_cause)])
        if self.cdr is not None:
            self.cdr.submit(ch)
        self.channel_event(ch, "CHANNEL_DESTROY")
        ch.state = "CS_DESTROY"
        self.channel_event(ch, "CHANNEL_STATE")
        self.sessions.pop(ch.uuid, None)
        gevent.spawn(sess.group.kill, block=False)

    def dtmf(self, ch: Channel, digit: str, source: str = "RTP") -> None:
        """A DTMF digit received on ``ch``."""
        ch.set_var("last_dtmf_duration", 2000)
        self.channel_event(ch, "DTMF", after=[("DTMF-Digit", digit), ("DTMF-Duration", "2000"), ("DTMF-Source", source)])

    # --- bridge / transfer / dialplan -------------------------------------------------------
    def bridge_app(self, a_sess: CallSession, arg: str) -> str:
        """The ``bridge`` application: dial the b-leg, bridge, wait until either side ends."""
        variables, bare = dialstring.parse_url(arg)
        target = dialstring.parse_target(bare.split("|")[0].split(",")[0])
        a = a_sess.ch
        timeout = float(variables.get("call_timeout") or a.variables.get("call_timeout") or DEFAULT_ORIGINATE_TIMEOUT)
        variables.setdefault("origination_caller_id_number", a.orig_cid_number)
        b_sess, cause = self.dial(target, variables, timeout=timeout)
        if b_sess is None:
            a.set_var("originate_disposition", cause)
            a.set_var("DIALSTATUS", cause)
            return None
        self.answer(a)
        self.join(a_sess, b_sess)
        a.set_var("originate_disposition", "SUCCESS")
        a_sess.gone.wait()
        return None

    def join(self, a_sess: CallSession, b_sess: CallSession) -> None:
        """Bridge two answered legs: CHANNEL_BRIDGE now, CHANNEL_UNBRIDGE when one ends."""
        a, b = a_sess.ch, b_sess.ch
        now = self.clock.now()
        a.bridged = b.bridged = now
        a.other, b.other = b, a
        a.other_type, b.other_type = "originatee", "originator"
        a.set_var("bridge_uuid", b.uuid)
        b.set_var("bridge_uuid", a.uuid)
        ids = [("Bridge-A-Unique-ID", a.uuid), ("Bridge-B-Unique-ID", b.uuid)]
        self.channel_event(a, "CHANNEL_BRIDGE", before=ids)
        b_sess.group.spawn(self._park_b_leg, b_sess)

    def _unbridge(self, ch: Channel) -> None:
        """CHANNEL_UNBRIDGE on the a-leg as soon as either bridged leg hangs up."""
        other = ch.other
        if other is None or ch.other_type == "":
            return
        a, b = (ch, other) if ch.other_type == "originatee" else (other, ch)
        ids = [("Bridge-A-Unique-ID", a.uuid), ("Bridge-B-Unique-ID", b.uuid)]
        self.channel_event(a, "CHANNEL_UNBRIDGE", before=ids)
        a.other_type = b.other_type = ""

    def _park_b_leg(self, b_sess: CallSession) -> None:
        """A bridged b-leg has no application of its own; it ends with the bridge."""
        b_sess.gone.wait()
        self.finish(b_sess)

    def uuid_bridge(self, a_sess: CallSession, b_sess: CallSession) -> None:
        """``uuid_bridge``: take both legs out of what they run and join them."""
        self.join(a_sess, b_sess)

    def transfer(self, sess: CallSession, dest: str, dialplan: str, context: str) -> None:
        """``uuid_transfer``: leave the current application and run the dialplan for ``dest``."""
        sess.ch.transferred = self.clock.now()
        sess.pending_transfer = Transfer(dest, dialplan, context)
        sess.interrupt.set()
        sess.queue.put(("set", "transfer_source=uuid_transfer", None))

    def dialplan(self, dest: str, dialplan: str, context: str) -> list:
        """The modelled dialplan: ``inline`` app lists, agent extensions, ``park``, or no route."""
        if dialplan.lower() == "inline":
            out = []
            for item in dest.split(","):
                app, _, arg = item.partition(":")
                out.append((app, arg))
            return out
        if dest in self.scenario.agents:
            return [("bridge", f"user/{dest}")]
        if dest == "park":
            return [("park", "")]
        return [("hangup", "NO_ROUTE_DESTINATION")]

    # --- heartbeat --------------------------------------------------------------------------
    def uptime_text(self) -> str:
        secs = max(0.0, self.clock.now() - self.started)
        ms = int(secs * 1000)
        d, rem = divmod(ms, 86_400_000)
        h, rem = divmod(rem, 3_600_000)
        m, rem = divmod(rem, 60_000)
        s, ms = divmod(rem, 1000)
        return f"0 years, {d} days, {h} hours, {m} minutes, {s} seconds, {ms} milliseconds, 0 microseconds"

    def heartbeat(self) -> Event:
        ev = self.events.create("HEARTBEAT")
        up_ms = int((self.clock.now() - self.started) * 1000)
        ev.headers += [
            ("Event-Info", "System Ready"),
            ("Up-Time", self.uptime_text()),
            ("FreeSWITCH-Version", VERSION),
            ("Uptime-msec", str(up_ms)),
            ("Session-Count", str(len(self.sessions))),
            ("Max-Sessions", "5000"),
            ("Session-Per-Sec", "30"),
            ("Session-Per-Sec-Last", "0"),
            ("Session-Per-Sec-Max", "30"),
            ("Session-Per-Sec-FiveMin", "0"),
            ("Session-Since-Startup", str(self.sessions_since_startup)),
            ("Session-Peak-Max", str(self.peak)),
            ("Session-Peak-FiveMin", str(self.peak)),
            ("Idle-CPU", "99.000000"),
        ]
        self.fire(ev)
        return ev

    def start_heartbeat(self) -> None:
        def loop():
            while True:
                self.clock.sleep(HEARTBEAT_INTERVAL)
                self.heartbeat()

        self._heartbeat = gevent.spawn(loop)

    def stop(self) -> None:
        """Hang up every leg (SYSTEM_SHUTDOWN is not modelled; MANAGER_REQUEST is used)."""
        if self._heartbeat is not None:
            self._heartbeat.kill()
        for sess in list(self.sessions.values()):
            self.hangup(sess.ch, "MANAGER_REQUEST")
