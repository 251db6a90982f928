"""One call leg at run time: its application queue (park, playback, bridge …), media
timeline, playback/break state and the callee script.

A ``CallSession`` owns its greenlets (a ``gevent.pool.Group`` killed when the leg is
destroyed). Applications run one at a time on the session greenlet; ``sendmsg`` and
``uuid_broadcast`` queue to it, and ``park`` executes what is queued (nested executes, as
FreeSWITCH's park loop does).
"""

import logging
import uuid as uuidlib

import gevent
import gevent.event
import gevent.pool
import gevent.queue

from simswitch import media
from simswitch.scenario import Audio, Step

log = logging.getLogger(__name__)

# How long (simulated seconds) a parked leg waits on its queue before re-checking; a wait
# is also ended at once by hang-up or transfer.
PARK_POLL = 3600.0


class Hangup(Exception):
    """The leg hung up while an application ran."""


class Transfer(Exception):
    """``uuid_transfer`` took the leg out of its current application."""

    def __init__(self, dest: str, dialplan: str, context: str):
        super().__init__(dest)
        self.dest, self.dialplan, self.context = dest, dialplan, context


class CallSession:
    """Run-time state of one leg; ``switch`` does the event firing and the registry."""

    def __init__(self, switch, channel, behaviour=None):
        self.switch = switch
        self.ch = channel
        self.clock = switch.clock
        self.behaviour = behaviour  # scenario Outcome or Agent
        noise_dbfs = getattr(behaviour, "noise_dbfs", None)
        self.media = media.MediaTimeline(8000, noise_dbfs, seed=hash(channel.uuid) & 0xFFFF)
        self.queue = gevent.queue.Queue()
        self.group = gevent.pool.Group()
        self.gone = gevent.event.Event()  # set at hang-up
        self.interrupt = gevent.event.Event()  # set by break / hang-up / transfer
        self.pending_transfer: Transfer | None = None
        self.playback: media.Segment | None = None
        self.prompts_started = 0
        self.prompts_done = 0
        self._changed = gevent.event.Event()
        self.forks: dict = {}
        self.recordings: dict = {}
        self.app_running = False
        self.finished = gevent.event.Event()
        self.temp_files: list = []  # playAudio files, removed when the leg ends

    # --- waiting helpers ---------------------------------------------------------------
    def sleep(self, seconds: float) -> None:
        """Sleep simulated ``seconds``; raise ``Hangup`` if the leg goes away meanwhile."""
        if self.gone.wait(self.clock.real_seconds(max(0.0, seconds))):
            raise Hangup()

    def notify(self) -> None:
        """Wake everything waiting for a media change (prompt start/stop)."""
        ev, self._changed = self._changed, gevent.event.Event()
        ev.set()

    def wait_change(self, seconds: float) -> bool:
        """Wait for a media change up to simulated ``seconds``; True if one came."""
        ev = self._changed
        gevent.wait([ev, self.gone], timeout=self.clock.real_seconds(seconds), count=1)
        if self.gone.is_set():
            raise Hangup()
        return ev.is_set()

    def wait_until(self, predicate, limit: float = 86400.0) -> None:
        """Wait (event driven) until ``predicate()`` holds; at most ``limit`` simulated s."""
        deadline = self.clock.now() + limit
        while not predicate():
            left = deadline - self.clock.now()
            if left <= 0:
                raise Hangup()
            self.wait_change(left)

    # --- application queue -----------------------------------------------------------
    def enqueue(self, app: str, arg: str = "", event_uuid: str | None = None) -> None:
        """Queue an execute (sendmsg / uuid_broadcast); a running playback keeps going."""
        self.queue.put((app, arg, event_uuid))

    def run(self, app: str | None, arg: str, exten: str | None, dialplan: str, context: str):
        """Session greenlet body: run the originate target, then whatever follows, then hang up."""
        try:
            self.switch.set_state(self.ch, "CS_EXECUTE")
            if app:
                self.execute(app, arg)
            else:
                self.run_dialplan(exten or "", dialplan, context)
            self.drain_queue()
            if self.ch.up:
                self.switch.hangup(self.ch, "NORMAL_CLEARING")
        except Hangup:
            log.debug("%s: hung up while running", self.ch.uuid)
        self.switch.finish(self)

    def drain_queue(self) -> None:
        """Run queued executes until none is left; transfers restart dialplan execution."""
        while self.ch.up:
            if self.pending_transfer:
                t, self.pending_transfer = self.pending_transfer, None
                self.run_dialplan(t.dest, t.dialplan, t.context)
                continue
            try:
                app, arg, event_uuid = self.queue.get_nowait()
            except gevent.queue.Empty:
                return
            self.execute(app, arg, event_uuid)

    def run_dialplan(self, dest: str, dialplan: str, context: str) -> None:
        """Execute what the modelled dialplan gives for ``dest`` (see README: Dialplan)."""
        self.ch.hit_dialplan = True
        self.switch.set_state(self.ch, "CS_ROUTING")
        self.switch.set_state(self.ch, "CS_EXECUTE")
        for app, arg in self.switch.dialplan(dest, dialplan, context):
            if not self.ch.up:
                raise Hangup()
            self.execute(app, arg)

    def execute(self, app: str, arg: str = "", event_uuid: str | None = None) -> None:
        """Run one application with CHANNEL_EXECUTE / CHANNEL_EXECUTE_COMPLETE around it."""
        if not self.ch.up:
            raise Hangup()
        ch = self.ch
        app_uuid = event_uuid or str(uuidlib.uuid4())
        ch.set_var("current_application_data", arg or None)
        ch.set_var("current_application", app)
        app_headers = [("Application", app)]
        if arg:
            app_headers.append(("Application-Data", arg))
        self.switch.channel_event(ch, "CHANNEL_EXECUTE", after=app_headers + [("Application-UUID", app_uuid)])
        handler = getattr(self, "app_" + app.replace("-", "_"), None)
        response = None
        error = None
        try:
            if handler is None:
                log.warning("application %r is not modelled by simswitch; it does nothing", app)
            else:
                response = handler(arg)
        except (Hangup, Transfer) as exc:
            error = exc
        if response is not None:
            ch.set_var("current_application_response", response)
        else:
            response = ch.variables.get("current_application_response", "_none_")
        self.switch.channel_event(
            ch,
            "CHANNEL_EXECUTE_COMPLETE",
            after=app_headers + [("Application-Response", response), ("Application-UUID", app_uuid)],
        )
        if isinstance(error, Transfer):
            self.pending_transfer = error
        elif error is not None:
            raise error

    # --- applications ----------------------------------------------------------------
    def app_park(self, _arg: str):
        self.switch.channel_event(self.ch, "CHANNEL_PARK")
        try:
            while True:
                if self.pending_transfer:
                    raise self.pending_transfer
                try:
                    item = self.queue.get(timeout=0)
                except gevent.queue.Empty:
                    self.interrupt.clear()
                    waiter = gevent.spawn(self.queue.peek)
                    gevent.wait([waiter, self.gone, self.interrupt], count=1,
                                timeout=self.clock.real_seconds(PARK_POLL))
                    waiter.kill()
                    if self.gone.is_set():
                        raise Hangup() from None
                    continue
                self.execute(*item)
        finally:
            self.switch.channel_event(self.ch, "CHANNEL_UNPARK")
        return None

    def app_answer(self, _arg: str):
        self.switch.answer(self.ch)

    def app_pre_answer(self, _arg: str):
        self.switch.pre_answer(self.ch)

    def app_hangup(self, arg: str):
        self.switch.hangup(self.ch, arg or "NORMAL_CLEARING")

    def app_sleep(self, arg: str):
        self.sleep(float(arg or 0) / 1000.0)

    def app_set(self, arg: str):
        name, _, value = arg.partition("=")
        self.ch.set_var(name, value or None)

    def app_transfer(self, arg: str):
        parts = arg.split()
        raise Transfer(parts[0] if parts else "", *(parts[1:3] + ["XML", "default"][len(parts[1:3]) :]))

    def app_bridge(self, arg: str):
        return self.switch.bridge_app(self, arg)

    def app_playback(self, target: str):
        return self.play(target)

    def app_record_session(self, arg: str):
        path = arg.split()[0] if arg else ""
        self.switch.recorder.start(self, path, None)

    def play(self, target: str) -> str:
        """Play ``target`` to the callee for its real length (cut by break or hang-up)."""
        ch = self.ch
        samples = media.prompt(target, self.media.rate)
        if samples is None:
            log.info("%s: playback file not found: %s", ch.uuid, target)
            return "FILE NOT FOUND"
        ch.set_var("current_loop", 1)
        ch.set_var("total_loops", 1)
        path_header = [("Playback-File-Path", target)]
        if target.startswith("tone_stream://"):
            path_header.append(("Playback-File-Type", "tone_stream"))
        self.interrupt.clear()
        start = self.clock.now()
        seg = self.media.add("robot", start, samples)
        self.playback = seg
        self.prompts_started += 1
        self.switch.channel_event(ch, "PLAYBACK_START", after=path_header)
        self.notify()
        status = "done"
        try:
            gevent.wait([self.interrupt, self.gone], count=1,
                        timeout=self.clock.real_seconds(seg.end - start))
            if self.interrupt.is_set() or self.gone.is_set():
                seg.cut(self.clock.now())
                status = "break"
        finally:
            self.playback = None
            self.prompts_done += 1
            played = int(round((seg.end - seg.start) * self.media.rate))
            ch.set_var("playback_last_offset_pos", played)
            ch.set_var("playback_seconds", played // self.media.rate)
            ch.set_var("playback_ms", played * 1000 // self.media.rate)
            ch.set_var("playback_samples", played)
            self.switch.channel_event(ch, "PLAYBACK_STOP", after=path_header + [("Playback-Status", status)])
            self.notify()
        if self.gone.is_set():
            raise Hangup()
        return "FILE PLAYED"

    def break_playback(self, flush: bool) -> None:
        """``uuid_break``: stop the current prompt; ``all`` also drops what is queued."""
        if flush:
            while not self.queue.empty():
                self.queue.get_nowait()
        if self.playback is not None:
            self.interrupt.set()

    # --- the callee ----------------------------------------------------------------------
    def start_callee(self, steps, hangup_after: float | None) -> None:
        """Start the scripted far end (after answer)."""
        if steps:
            self.group.spawn(self._guard, self._callee_script, steps)
        if hangup_after is not None:
            self.group.spawn(self._guard, self._hangup_later, hangup_after)

    def _guard(self, func, *args):
        try:
            func(*args)
        except Hangup:
            log.debug("%s: callee script ended by hang-up", self.ch.uuid)

    def _hangup_later(self, seconds: float) -> None:
        self.sleep(seconds)
        self.switch.hangup(self.ch, "NORMAL_CLEARING", disposition="recv_bye")

    def _callee_script(self, steps) -> None:
        answered = self.ch.answered or self.clock.now()
        done_mark = 0
        started_mark = 0
        for step in steps:
            self._wait_trigger(step, answered, done_mark, started_mark)
            if step.delay:
                self.sleep(step.delay)
            done_mark, started_mark = self.prompts_done, self.prompts_started
            if step.action == "say":
                self.say(step.audio)
            elif step.action == "dtmf":
                for digit in step.digits:
                    self.switch.dtmf(self.ch, digit)
                    self.sleep(0.25)
            elif step.action == "hangup":
                self.switch.hangup(self.ch, step.cause, disposition="recv_bye")
                return
            done_mark = max(done_mark, self.prompts_done)

    def _wait_trigger(self, step: Step, answered: float, done_mark: int, started_mark: int) -> None:
        if step.trigger == "at":
            self.sleep(answered + step.value - self.clock.now())
        elif step.trigger == "after_prompt":
            self.wait_until(lambda: self.prompts_done >= step.value)
        elif step.trigger == "next_prompt":
            self.wait_until(lambda: self.prompts_done > done_mark)
        elif step.trigger == "barge_in":
            self.wait_until(lambda: self.prompts_started > started_mark)
            self.sleep(step.value)
        elif step.trigger == "after_silence":
            while True:
                self.wait_until(lambda: self.playback is None)
                if not self.wait_change(step.value):
                    return

    def say(self, audio: Audio) -> None:
        """The callee speaks: audio into the read stream, plus a simswitch::callee_speech event."""
        samples = None
        if audio.path:
            samples = media.load_file(audio.path, self.media.rate)
        if samples is None:
            samples = media.synth_voice(audio.seconds, self.media.rate, seed=len(audio.text))
        start = self.clock.now()
        seg = self.media.add("callee", start, samples)
        self.ch.set_var("simswitch_callee_text", audio.text)
        self.switch.custom_event(
            self.ch,
            "simswitch::callee_speech",
            [
                ("Speech-Text", audio.text),
                ("Speech-File", audio.path or ""),
                ("Speech-Start", str(int(start * 1_000_000))),
                ("Speech-Seconds", "%.3f" % (seg.end - seg.start)),
                ("Speech-Barge-In", "true" if self.playback is not None else "false"),
            ],
        )
        self.sleep(seg.end - start)

    def early_media(self, audio: Audio, loops: bool, until: float):
        """Carrier announcement or colour ring-back, looped up to ``until`` (simulated);
        returns one play of it (8 kHz samples)."""
        samples = media.load_file(audio.path, self.media.rate) if audio.path else None
        if samples is None:
            samples = media.synth_voice(audio.seconds, self.media.rate, seed=len(audio.text))
        t = self.clock.now()
        while t < until:
            seg = self.media.add("callee", t, samples)
            seg.cut(until)
            t = seg.end
            if not loops:
                break
        return samples
