"""`run_dialogue()`: the AI dialogue of one answered call, from the first prompt to hang-up.

The controller spawns it in the call's greenlet group:

    result = run_dialogue(call, control, events, media_hub)   # → DialogueResult

It starts the audio fork, runs the script (or LLM) engine's commands as verbs, grades the
call at the end and returns everything the controller persists (Call + DialogueTurn rows;
`persist.apply_result` does that). A hang-up on `events` ends it at once, whatever it waits
for; a fork that cannot be re-established ends the call (never a silent call).

The grade is also kept while the call runs: after each callee turn it is worked out from
the turns so far (`DialogueSession.grade`). When it reaches one of the task's
`transfer_on_grades` (core.transfer.grade_trigger) and the task has a transfer group, the
engine's reply gives way to a transfer (trigger `grade`), taken like a script transfer
node's. A transfer hands the dialogue so far (transcript, grade, tags) to
`CallControl.transfer` for the agent's screen pop.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import dataclass, field

import gevent
from gevent.pool import Group
from gevent.queue import Empty, Queue

from controller.dialogue import verbs
from controller.dialogue.control import CallControl, ControlError
from controller.dialogue.events import CalleeSpeech, Dtmf, ForkFailed, HungUp
from controller.dialogue.services import DialogueServices
from controller.media.hub import MediaHub
from controller.media.pipeline import StreamConnected, StreamLost, Utterance
from controller.media.turns import NoInput, TurnSettings
from core.dialogue import grading, schema
from core.dialogue import intents as im
from core.dialogue.engine import Hangup, Listen, Say, ScriptEngine, SendSms, Transfer
from core.transfer import TransferFailed, Trigger, closing_line, grade_trigger
from core.tts import TtsError

log = logging.getLogger(__name__)
FORK_CONNECT_TIMEOUT = 5.0
FORK_RETRIES = 2


@dataclass
class AnsweredCall:
    """What the controller knows of an answered call when the dialogue starts."""

    uuid: str
    script: dict  # the pinned ScriptVersion.body
    dialogue_settings: dict = field(default_factory=dict)  # Task.dialogue_settings
    variables: dict = field(default_factory=dict)  # the number's imported columns
    call_id: int | None = None
    account_id: int | None = None
    script_id: int | None = None
    script_version: int | None = None
    transfer_group_id: int | None = None  # the task's group: where the grade rule transfers


@dataclass
class DialogueResult:
    turns: list[verbs.TurnLog]
    grade: str
    grade_reasons: list[str]
    tags: list[str]
    score: int
    interactions: int
    unrecognised: int
    hangup_side: str | None
    end_reason: str
    duration_ms: int
    intents: list[str] = field(default_factory=list)
    transfer: dict | None = None
    sms: list = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)  # VAD end → next play sent
    media_cpu_s: float = 0.0


class CallGone(Exception):
    """Raised into the dialogue greenlet when the call hangs up."""


class DialogueSession:
    """The state verbs share while one call's dialogue runs."""

    def __init__(self, call: AnsweredCall, control: CallControl, events: Queue,
                 hub: MediaHub, services: DialogueServices):
        self.call, self.control, self.events, self.hub, self.svc = call, control, events, hub, \
            services
        self.uuid = call.uuid
        self.inbox: Queue = Queue()
        self.group = Group()
        self.turn_settings = TurnSettings.from_task(call.dialogue_settings)
        self.asr_timeout = float(call.dialogue_settings.get("asr_timeout_s") or 4.0)
        self.recognizer = services.recognizer_for(call.dialogue_settings)
        self.media = hub.register(call.uuid, self.turn_settings, self.recognizer, self.inbox,
                                  self.asr_timeout)
        self.media.on_barge_in = self._on_barge_in
        self.turns: list[verbs.TurnLog] = []
        self.hangup_side: str | None = None
        self.hangup_cause: str | None = None
        self._stash = None
        self._deferred: deque = deque()  # events a reconnect read past, for the verb waiting
        self._waiting_since: tuple[float, float] | None = None  # (vad end, external seconds)
        self.latencies: list[float] = []
        self.forks = 0
        self.gone = False
        self.sms: list = []
        self.transfer: dict | None = None
        self.grade: str | None = None  # the running grade, after the last callee turn

    # --- events ----------------------------------------------------------------------------
    def _forward(self, main) -> None:
        """Move the controller's events into the inbox; a hang-up skips the queue, and so
        does simswitch's text of the callee's speech, which goes straight to the recogniser:
        behind the turn's own events it could come after the utterance it belongs to."""
        while True:
            ev = self.events.get()
            if isinstance(ev, CalleeSpeech):
                self.media.hint(ev.text)
                continue
            if isinstance(ev, HungUp):
                self.gone = True
                self.hangup_side = self.hangup_side or ev.side
                self.hangup_cause = ev.cause
                main.kill(CallGone(), block=False)
                return
            self.inbox.put(ev)

    def _on_barge_in(self, _event) -> None:
        self.group.spawn(self.control.stop_playback)

    def next_event(self, timeout: float):
        if self._deferred:
            return self._deferred.popleft()
        try:
            return self.inbox.get(timeout=timeout)
        except Empty:
            return None

    def handle_common(self, ev) -> bool:
        return verbs.handle_common(self, ev)

    def stash(self, utterance: Utterance) -> None:
        self._stash = utterance

    def take_stash(self):
        item, self._stash = self._stash, None
        return item

    # --- media -----------------------------------------------------------------------------
    def start_media(self) -> None:
        for attempt in range(FORK_RETRIES):
            self.forks += 1
            try:
                self.control.start_audio_fork(self.svc.media_url, {
                    "callid": self.uuid, "call_id": self.call.call_id, "attempt": attempt + 1})
            except ControlError as exc:
                log.warning("%s: audio fork refused: %s", self.uuid, exc)
                gevent.sleep(0.2)
                continue
            if self._wait_connected(FORK_CONNECT_TIMEOUT):
                return
            self.control.stop_audio_fork()
        raise verbs.MediaUnavailable("the audio fork did not connect")

    def _wait_connected(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        kept = []
        try:
            while time.monotonic() < deadline:
                if self.media.connected.is_set():
                    return True
                try:
                    ev = self.inbox.get(timeout=min(0.1, max(0.01, deadline - time.monotonic())))
                except Empty:
                    continue
                if isinstance(ev, ForkFailed):
                    return False
                if not isinstance(ev, StreamConnected | StreamLost):
                    kept.append(ev)  # e.g. PLAYBACK_STOP: the verb that waits needs it
            return self.media.connected.is_set()
        finally:
            self._deferred.extend(kept)

    def reconnect_media(self) -> None:
        """A stream broke mid-call: start the fork again, or end the call."""
        if self.gone:
            return
        log.info("%s: audio fork lost; reconnecting", self.uuid)
        self.control.stop_audio_fork()
        self.start_media()

    # --- prompts ---------------------------------------------------------------------------
    def resolve_prompt(self, say: Say) -> str | None:
        if say.audio:
            path = self.svc.prompt_file(say.audio, self.call.account_id)
            if path is not None:
                return str(path)
            log.warning("%s: prompt audio %r missing; speaking its text", self.uuid, say.audio)
        if not say.text.strip():
            return None
        try:
            return str(self.svc.synthesize(say.text))
        except TtsError as exc:
            log.error("%s: TTS failed: %s", self.uuid, exc)
            return None

    def mark_play_sent(self) -> None:
        if self._waiting_since is not None:
            vad_end, external = self._waiting_since
            self.latencies.append((time.monotonic() - vad_end - external) * 1000)
            self._waiting_since = None

    def responded(self, utt: Utterance, external_s: float) -> None:
        self._waiting_since = (utt.vad_end_at, utt.asr_seconds + external_s)


def run_dialogue(call: AnsweredCall, control: CallControl, events: Queue, media: MediaHub,
                 services: DialogueServices | None = None) -> DialogueResult:
    """Run the dialogue until hang-up; returns what to persist. Never raises for call-level
    failures (they end the call and show in `end_reason`).

    The conversation runs on its own greenlet (joined here); a `HungUp` on `events` kills
    it at once with `CallGone`, wherever it waits.
    """
    svc = services or DialogueServices.from_settings()
    s = DialogueSession(call, control, events, media, svc)
    holder: dict = {}
    body = gevent.spawn(_body, s, holder)
    s.group.spawn(s._forward, body)
    try:
        end_reason = body.get()
    finally:
        s.group.kill(block=False)
        body.kill(block=False)
        try:
            control.stop_audio_fork()
        except Exception as exc:  # noqa: BLE001 - the switch may be gone; the result matters
            log.debug("%s: fork stop failed: %s", call.uuid, exc)
        cpu, duration = s.media.cpu_seconds, s.media.t_ms
        media.release(call.uuid)
    return _result(s, holder.get("engine"), end_reason, duration, cpu)


def _body(s: DialogueSession, holder: dict) -> str:
    call = s.call
    try:
        flow = schema.parse(call.script)
        if flow.mode == "llm":
            from controller.dialogue.llm_mode import LlmEngine
            engine = LlmEngine(flow, call.variables, s.svc.llm_for(call.dialogue_settings))
        else:
            engine = ScriptEngine(flow, call.variables)
        holder["engine"] = engine
        s.svc.prewarm(flow, call.variables, s.group)
        s.start_media()
        return _converse(s, engine)
    except CallGone:
        return "hangup"
    except schema.ScriptError as exc:
        log.error("%s: script cannot run: %s", call.uuid, exc)
        _hangup(s)
        return "bad script"
    except verbs.MediaUnavailable as exc:
        log.error("%s: %s; ending the call", call.uuid, exc)
        _hangup(s)
        return "media unavailable"


def _hangup(s: DialogueSession) -> None:
    if not s.gone:
        s.hangup_side = s.hangup_side or "robot"
        s.control.hangup("NORMAL_CLEARING")


def _converse(s: DialogueSession, engine) -> str:
    cmds = engine.start()
    while True:
        outcome = None
        barged = False
        for cmd in cmds:
            if isinstance(cmd, Say):
                if verbs.PlayVerb(cmd).run(s):
                    barged = True
                    break  # data frames are dropped on barge-in: listen to the callee
            elif isinstance(cmd, SendSms):
                s.sms.append(cmd.template_id)  # sent after the call (persist, core.outbox)
            elif isinstance(cmd, Listen):
                outcome = verbs.ListenVerb(s.turn_settings.no_input_ms).run(s)
            elif isinstance(cmd, Hangup):
                verbs.HangupVerb(cmd.cause).run(s)
                return cmd.reason
            elif isinstance(cmd, Transfer):
                return _transfer(s, engine, cmd)
        if barged and outcome is None:
            outcome = verbs.ListenVerb(s.turn_settings.no_input_ms).run(s)
        if outcome is None:
            verbs.HangupVerb().run(s)
            return "script end"
        t0 = time.monotonic()
        if isinstance(outcome, Utterance):
            before, node = len(engine.state.intents), engine.state.node
            cmds = engine.on_utterance(outcome.text)
            heard = engine.state.intents[before:]
            s.turns.append(verbs.TurnLog("callee", outcome.text, node,
                                         heard[0] if heard else None, outcome.start_ms,
                                         outcome.end_ms, False))
            if s.turns[-2:-1] and outcome.barged_in:
                s.turns[-2].interrupted = True
            s.responded(outcome, getattr(engine, "last_external_s", 0.0))
            cmds = _grade_rule(s, engine, cmds)
        elif isinstance(outcome, Dtmf):
            node = engine.state.node
            cmds = engine.on_utterance(outcome.digit)
            s.turns.append(verbs.TurnLog("callee", f"DTMF {outcome.digit}", node,
                                         None, s.media.t_ms, s.media.t_ms))
            cmds = _grade_rule(s, engine, cmds)
        elif isinstance(outcome, NoInput):
            cmds = engine.on_no_input()
        log.debug("%s: engine step %.1f ms", s.uuid, (time.monotonic() - t0) * 1000)


def _grade_rule(s: DialogueSession, engine, cmds: list) -> list:
    """After a callee turn: the running grade, and the rule "grade reaches A during the call
    → transfer". When it applies (and the script's reply is not a transfer already), the
    reply is dropped — a goodbye before the transfer would be wrong — but for its SMS
    actions: the engine has entered the node, as its tags and score say."""
    s.grade = _grade(engine, _facts(s, engine, s.media.t_ms))[0]
    group = s.call.transfer_group_id
    if group is None or any(isinstance(c, Transfer) for c in cmds) \
            or not grade_trigger(s.call.dialogue_settings, s.grade, s.transfer):
        return cmds
    log.info("%s: grade %s reached: transferring to group %s", s.uuid, s.grade, group)
    return [*(c for c in cmds if isinstance(c, SendSms)),
            Transfer(f"group:{group}", trigger=Trigger.GRADE)]


def _transfer(s: DialogueSession, engine, cmd: Transfer) -> str:
    """A transfer to a human (a script node's, or the grade rule's); nobody taking it brings
    the AI back for the closing line."""
    s.transfer = {"target": cmd.target, "state": "requested"}
    try:
        s.control.transfer(str(cmd.target), trigger=cmd.trigger, so_far=_so_far(s, engine))
        return "transfer"
    except NotImplementedError:
        s.transfer["state"] = "not available"
        verbs.HangupVerb().run(s)
        return "transfer unavailable"
    except TransferFailed:  # nobody took it: back to the AI's closing line
        s.transfer["state"] = "failed"
        text, audio = closing_line(s.call.dialogue_settings)
        verbs.PlayVerb(Say(text, audio, False, engine.state.node, "closing")).run(s)
        verbs.HangupVerb().run(s)
        return "transfer failed"


def _so_far(s: DialogueSession, engine) -> dict:
    """The dialogue until now, for the agent's screen pop (core.transfer.screen_pop): the
    running grade is that of the last callee turn (none before the callee said anything)."""
    return {"transcript": [{"speaker": t.speaker, "text": t.text} for t in s.turns],
            "grade": s.grade, "tags": list(engine.state.tags)}


def _facts(s: DialogueSession, engine, duration_ms: int) -> grading.CallFacts:
    st = engine.state if engine is not None else None
    callee_turns = [t for t in s.turns if t.speaker == "callee"]
    heard = list(st.intents) if st else []
    if not heard:
        heard = [i for t in callee_turns
                 for i in im.match_all(t.text, im.BUILTIN.values())]
    return grading.CallFacts(
        intents=tuple(heard), tags=tuple(st.tags if st else ()),
        nodes=tuple(st.nodes if st else ()), score=st.score if st else 0,
        turns=len(callee_turns), duration_s=duration_ms / 1000,
        unrecognised=st.unrecognised if st else 0, hangup_side=s.hangup_side,
        assistant=bool(st and st.assistant))


def _grade(engine, facts: grading.CallFacts) -> tuple[str, list[str]]:
    """(grade, reasons) by the script's rules, then the defaults (core.dialogue.grading)."""
    grade, reasons = grading.grade(facts, engine.flow.grading if engine is not None else ())
    return grade.value, reasons


def _result(s: DialogueSession, engine, end_reason: str, duration_ms: int,
            cpu: float) -> DialogueResult:
    facts = _facts(s, engine, duration_ms)
    grade, reasons = _grade(engine, facts)
    return DialogueResult(
        turns=s.turns, grade=grade, grade_reasons=reasons, tags=list(facts.tags),
        score=facts.score, interactions=facts.turns,
        unrecognised=facts.unrecognised, hangup_side=s.hangup_side, end_reason=end_reason,
        duration_ms=duration_ms, intents=list(facts.intents), transfer=s.transfer,
        sms=list(s.sms), latencies_ms=s.latencies, media_cpu_s=cpu)


__all__ = ["AnsweredCall", "CallGone", "DialogueResult", "run_dialogue"]
