"""A rig for whole conversations: simswitch (real ESL and audio fork), a NodeLink, the
media server and hub, and a minimal driver that originates a call and, once it is answered,
runs `run_dialogue` with `EslCallControl` — what the controller's driver does."""

from __future__ import annotations

import json
import uuid as uuidlib
from pathlib import Path

import gevent
from gevent.event import Event
from gevent.queue import Queue

from controller.dialogue.esl_control import EslCallControl
from controller.dialogue.events import from_esl
from controller.dialogue.runtime import AnsweredCall, run_dialogue
from controller.dialogue.services import DialogueServices
from controller.esl import NodeLink
from controller.media.hub import MediaHub
from controller.media.server import MediaServer
from core.settings import FsNode
from core.tts import CachedTts, EspeakTts
from simswitch import SimSwitch
from simswitch.clock import FastClock


class Rig:
    def __init__(self, tmp_path: Path, scenario: dict, speed: float = 4.0, vad=None,
                 asr: dict | None = None, llm: dict | None = None):
        self.tmp = tmp_path
        path = tmp_path / "scenario.json"
        scenario = {"seed": 1, "gateways": {"gw1": {"proxy": "127.0.0.1", "state": "REGED"}},
                    **scenario}
        path.write_text(json.dumps(scenario, ensure_ascii=False))
        self.sim = SimSwitch(esl_port=0, scenario=path, recordings_dir=tmp_path / "rec",
                             clock=FastClock(speed), heartbeat=False)
        self.answered: dict[str, Event] = {}
        self.queues: dict[str, Queue] = {}
        self.hub = MediaHub(vad=vad)
        self.server = MediaServer(self.hub, port=0)
        self.services = DialogueServices(
            tts=CachedTts(EspeakTts(), tmp_path.parent / "tts-cache"),
            prompts_dir=tmp_path / "prompts", media_url="",
            asr_conf=asr or {"kind": "scripted"}, llm_conf=llm or {})
        self.link = None
        self.events_seen: list[dict] = []

    def __enter__(self):
        self.sim.start()
        self.server.start()
        self.services.media_url = self.server.url("127.0.0.1")
        self.link = NodeLink(FsNode("sim", "127.0.0.1", self.sim.port, "ClueCon"),
                             on_event=self._on_event)
        self._runner = gevent.spawn(self.link.run)
        assert self.link.up.wait(5), "could not connect to simswitch"
        return self

    def __exit__(self, *exc):
        self.link.stop()
        self._runner.kill()
        self.server.stop()
        self.sim.stop()

    def _on_event(self, _node, headers, body):
        uid = headers.get("Unique-ID")
        name = headers.get("Event-Name")
        if name in ("CHANNEL_ANSWER", "PLAYBACK_START", "PLAYBACK_STOP", "CHANNEL_HANGUP"):
            self.events_seen.append(headers)
        if name == "CHANNEL_ANSWER" and uid in self.answered:
            self.answered[uid].set()
        ev = from_esl(headers, body)
        if ev is not None and uid in self.queues:
            self.queues[uid].put(ev)

    def call(self, script: dict, number: str = "13800000001", variables: dict | None = None,
             settings: dict | None = None, timeout: float = 60,
             transfer_group_id: int | None = None):
        uid = str(uuidlib.uuid4())
        self.answered[uid] = Event()
        self.queues[uid] = Queue()
        self.link.bgapi(f"originate {{origination_uuid={uid},ignore_early_media=true}}"
                        f"sofia/gateway/gw1/{number} &park()")
        assert self.answered[uid].wait(15), "the call was not answered"
        control = EslCallControl(self.link, uid)
        call = AnsweredCall(uid, script, settings or {}, variables or {}, call_id=1,
                            account_id=1, transfer_group_id=transfer_group_id)
        with gevent.Timeout(timeout):
            result = run_dialogue(call, control, self.queues[uid], self.hub, self.services)
        self.control = control
        return result

    def playback_stops(self):
        return [h for h in self.events_seen if h.get("Event-Name") == "PLAYBACK_STOP"]
