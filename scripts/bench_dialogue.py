"""Benchmark the dialogue's turn latency and CPU with many concurrent calls.

    python scripts/bench_dialogue.py --calls 100                    # feeder mode, ~60 s
    python scripts/bench_dialogue.py --calls 20 --switch simswitch  # through simswitch

In both modes this process is the controller side (media server, VAD, turn-taking, one
`run_dialogue` per call) and the callee audio is real espeak-ng speech over -55 dBFS noise,
streamed as mod_audio_fork does (20 ms L16 frames in real time):
* `feeder` (default): a light separate process replays the callees' audio over one WebSocket
  fork per call, and prompts are "played" by a stand-in CallControl that reports
  PLAYBACK_START / STOP for each prompt's real length. This measures the dialogue path alone.
* `simswitch`: simswitch runs as its own process and the calls go through its Event Socket
  and audio fork, as with FreeSWITCH (simswitch then needs CPU of its own).

Printed: the latency from the end of the callee's utterance (the VAD's end point) to the
next prompt's play command sent — ASR/LLM time excluded (the recogniser answers at once) —
as p50 / p95 / max over every turn; the controller process's CPU per call (per second of
call and as a share of one core) and the media path's own part of it.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid as uuidlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import gevent  # noqa: E402
import numpy as np  # noqa: E402
import soundfile  # noqa: E402
from gevent.event import Event  # noqa: E402
from gevent.pool import Group  # noqa: E402
from gevent.queue import Queue  # noqa: E402

from controller.dialogue.esl_control import EslCallControl  # noqa: E402
from controller.dialogue.events import (  # noqa: E402
    ESL_EVENTS,
    PlaybackStarted,
    PlaybackStopped,
    from_esl,
)
from controller.dialogue.runtime import AnsweredCall, run_dialogue  # noqa: E402
from controller.dialogue.services import DialogueServices  # noqa: E402
from controller.esl import NodeLink  # noqa: E402
from controller.media.hub import MediaHub  # noqa: E402
from controller.media.server import MediaServer  # noqa: E402
from core.asr.base import AsrResult  # noqa: E402
from core.dialogue import schema  # noqa: E402
from core.settings import FsNode  # noqa: E402
from core.tts import CachedTts, EspeakTts, convert_file  # noqa: E402

LINES = ["喂，你好", "这个多少钱", "可以，我有兴趣"]
# The feeder's callee: (seconds of noise before, line). Gaps leave room for the robot's
# prompts; where a prompt runs longer the callee barges in, as callees do.
TIMELINE = [(1.0, 0), (8.0, 1), (14.0, 2), (10.0, None)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_cpu(pid: int) -> float:
    """User + system CPU seconds of another process (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def build_lines(work: Path) -> None:
    tts = CachedTts(EspeakTts(), work / "callee-cache")
    for n, text in enumerate(LINES):
        convert_file(tts.synthesize(text, voice="cmn+f3"), work / f"line{n}.wav")


def bench_script() -> dict:
    body = json.loads(json.dumps(schema.EXAMPLE))
    body["nodes"]["opening"]["branches"].append({"intents": ["*"], "goto": "offer"})
    return body


def make_services(work: Path, media_url: str, body: dict) -> DialogueServices:
    services = DialogueServices(tts=CachedTts(EspeakTts(), work / "tts"),
                                prompts_dir=work / "prompts", media_url=media_url)
    flow = schema.parse(body)
    texts = {n.prompt.render({"姓名": "王先生"}) for n in flow.nodes.values()}
    texts |= {k.answer.text for k in flow.knowledge}
    texts |= {flow.no_input.prompt.text, flow.no_match.prompt.text}
    for text in texts:
        services.tts.synthesize(text)  # the cache is warm, as in production
    return services


def report(args, results, hub, wall, cpu, other: str) -> None:
    lat = np.array([x for r in results for x in r.latencies_ms])
    call_s = sum(r.duration_ms for r in results) / 1000 / max(args.speed, 1e-9)
    media_cpu = sum(r.media_cpu_s for r in results)
    grades = {g: n for g in "ABCDEF" if (n := sum(r.grade == g for r in results))}
    barged = sum(t.interrupted for r in results for t in r.turns)
    print(f"mode {args.switch}: {len(results)}/{args.calls} calls completed, wall {wall:.1f} s, "
          f"VAD {hub.vad.kind}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
    print(f"grades {grades}; end reasons {sorted({r.end_reason for r in results})}; "
          f"{barged} prompts barged in")
    if len(lat):
        print(f"turn latency (VAD end point → next play command sent, ASR/LLM excluded), "
              f"{len(lat)} turns: p50 {np.percentile(lat, 50):.1f} ms, "
              f"p95 {np.percentile(lat, 95):.1f} ms, max {lat.max():.1f} ms")
    if results and call_s:
        print(f"controller CPU {cpu:.1f} s over {call_s:.0f} call-seconds: "
              f"{cpu / call_s * 1000:.1f} ms per call-second = {cpu / call_s * 100:.2f} % of "
              f"one core per call (media path, VAD + turn-taking: "
              f"{media_cpu / call_s * 1000:.1f} ms per call-second); {other}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=100)
    ap.add_argument("--switch", choices=("feeder", "simswitch"), default="feeder")
    ap.add_argument("--speed", type=float, default=1.0, help="simswitch clock speed")
    ap.add_argument("--ramp", type=float, default=5.0, help="seconds to start all calls over")
    ap.add_argument("--vad", choices=("auto", "energy"), default="auto",
                    help="auto: the trained model when its weights exist, else energy")
    args = ap.parse_args()
    if args.switch == "feeder":
        args.speed = 1.0
    if shutil.which("espeak-ng") is None:
        print("espeak-ng is missing: run scripts/setup.sh as root (apt-get install espeak-ng)")
        return 2
    work = Path(tempfile.mkdtemp(prefix="bench-dialogue-"))
    try:
        build_lines(work)
        vad = None
        if args.vad == "energy":
            from vad_model import load_vad
            vad = load_vad(kind="energy")
        hub = MediaHub(vad=vad)
        server = MediaServer(hub, port=0).start()
        try:
            if args.switch == "feeder":
                return run_feeder(args, work, hub, server)
            return run_simswitch(args, work, hub, server)
        finally:
            server.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)


# --- feeder mode ---------------------------------------------------------------------------

class StandInControl:
    """CallControl that plays prompts on a timer and reports PLAYBACK_START / STOP."""

    def __init__(self, uuid: str, events: Queue, group: Group):
        self.uuid, self.events, self.group = uuid, events, group
        self.current: Event | None = None
        self.gone = False

    def play(self, audio_path: str, interruptible: bool = True) -> None:
        seconds = soundfile.info(audio_path).duration
        stop = self.current = Event()

        def run():
            gevent.sleep(0.002)
            self.events.put(PlaybackStarted(audio_path))
            broke = stop.wait(seconds)
            self.events.put(PlaybackStopped(audio_path, "break" if broke else "done"))
        self.group.spawn(run)

    def stop_playback(self) -> None:
        if self.current is not None:
            self.current.set()

    def hangup(self, cause: str = "NORMAL_CLEARING") -> None:
        self.gone = True  # the dialogue returns on its own after hanging up

    def start_audio_fork(self, url: str, metadata: dict) -> None:
        """The feeder process connects on its own schedule."""

    def stop_audio_fork(self) -> None:
        """Nothing to stop: the feeder streams its timeline to the end."""

    def send_fork_text(self, text: str) -> None:
        """Not used by the dialogue."""

    def transfer(self, target: str) -> None:
        raise NotImplementedError

    def set_var(self, name: str, value: str) -> None:
        """Not used by the dialogue."""


class _Utterance:
    def __init__(self, owner: LineRecognizer, call_id: str):
        self.owner, self.call_id = owner, call_id

    def begin(self) -> None:
        """Nothing to open."""

    def feed(self, pcm) -> None:
        """The text does not depend on the audio."""

    def partial(self) -> str:
        return ""

    def end(self, timeout: float) -> AsrResult:
        n = self.owner.count.get(self.call_id, 0)
        self.owner.count[self.call_id] = n + 1
        return AsrResult(LINES[min(n, len(LINES) - 1)])

    def close(self) -> None:
        """Nothing to close."""


class LineRecognizer:
    """The n-th utterance of a call is LINES[n]: no ASR time, like the scripted recogniser."""

    name = "lines"

    def __init__(self):
        self.count: dict[str, int] = {}

    def open(self, call_id: str, sample_rate: int) -> _Utterance:
        return _Utterance(self, call_id)


def feeder_audio(work: Path) -> Path:
    """One callee's whole timeline, int16 at 8 kHz, for the feeder process."""
    rng = np.random.default_rng(5)
    parts = []
    for gap, line in TIMELINE:
        parts.append(rng.normal(0, 32767 * 10 ** (-55 / 20), int(gap * 8000)))
        if line is not None:
            speech, _ = soundfile.read(work / f"line{line}.wav", dtype="float32")
            parts.append(speech * 32767)
    pcm = np.clip(np.concatenate(parts), -32768, 32767).astype("<i2")
    path = work / "callee.raw"
    path.write_bytes(pcm.tobytes())
    return path


def feeder_main(url: str, uuids_file: str, audio_file: str, ramp: float) -> None:
    """The feeder process: one WebSocket per call, metadata first, then 20 ms frames paced
    in real time (one pump sends every call's due frames, as mod_audio_fork's media bug)."""
    from core.asr import websocket as ws
    uuids = Path(uuids_file).read_text().split()
    audio = Path(audio_file).read_bytes()
    frames = [audio[i:i + 320] for i in range(0, len(audio) - 319, 320)]
    conns: list = []

    def drain(conn):
        while conn.recv() is not None:
            pass

    def connect(n, uid):
        gevent.sleep(ramp * n / max(1, len(uuids)))
        conn = ws.connect(url, "audio.drachtio.org")
        conn.send_text(json.dumps({"callid": uid}))
        conns.append([conn, time.monotonic(), 0])
        gevent.spawn(drain, conn)

    for n, uid in enumerate(uuids):
        gevent.spawn(connect, n, uid)
    tail = frames[-250:]  # after its lines the callee stays on the line (noise) until killed
    while True:
        now = time.monotonic()
        for item in conns:
            conn, start, sent = item
            due = int((now - start) / 0.02)
            try:
                while sent < due and not conn.closed:
                    conn.send_binary(frames[sent] if sent < len(frames)
                                     else tail[(sent - len(frames)) % len(tail)])
                    sent += 1
            except OSError:
                conn.closed = True
            item[2] = sent
        gevent.sleep(0.02 - (time.monotonic() - now) % 0.02)


def run_feeder(args, work: Path, hub: MediaHub, server: MediaServer) -> int:
    body = bench_script()
    services = make_services(work, server.url("127.0.0.1"), body)
    recognizer = LineRecognizer()
    services.recognizer_for = lambda _settings: recognizer
    uuids = [str(uuidlib.uuid4()) for _ in range(args.calls)]
    (work / "uuids.txt").write_text("\n".join(uuids))
    feeder = subprocess.Popen([sys.executable, __file__, "--feeder", server.url("127.0.0.1"),
                               str(work / "uuids.txt"), str(feeder_audio(work)),
                               str(args.ramp)], cwd=ROOT)
    results = []

    def one(n: int, uid: str):
        gevent.sleep(args.ramp * n / max(1, args.calls))
        group, events = Group(), Queue()
        call = AnsweredCall(uid, body, {}, {"姓名": "王先生"}, call_id=n)
        try:
            results.append(run_dialogue(call, StandInControl(uid, events, group), events, hub,
                                        services))
        finally:
            group.kill(block=False)

    usage0 = resource.getrusage(resource.RUSAGE_SELF)
    feed0 = proc_cpu(feeder.pid)
    t0 = time.monotonic()
    gevent.joinall([gevent.spawn(one, n, uid) for n, uid in enumerate(uuids)], timeout=600)
    wall = time.monotonic() - t0
    usage1 = resource.getrusage(resource.RUSAGE_SELF)
    feed_cpu = proc_cpu(feeder.pid) - feed0
    feeder.terminate()
    feeder.wait(10)
    cpu = (usage1.ru_utime - usage0.ru_utime) + (usage1.ru_stime - usage0.ru_stime)
    report(args, results, hub, wall, cpu, f"the feeder process (the switch's side) used "
                                          f"{feed_cpu:.1f} s")
    return 0 if len(results) == args.calls else 1


# --- simswitch mode ------------------------------------------------------------------------

def build_scenario(work: Path) -> Path:
    steps = []
    for n, text in enumerate(LINES):
        trigger = {"at": 0.4} if n == 0 else {"after_prompt": n, "delay": 0.3}
        steps.append({"say": {"file": f"line{n}.wav", "text": text}, **trigger})
    doc = {"seed": 3, "gateways": {"gw1": {"proxy": "127.0.0.1", "state": "REGED"}},
           "distribution": [{"outcome": "talk", "weight": 1}],
           "outcomes": {"talk": {"result": "answer", "after": 0.5, "noise_dbfs": -55,
                                 "hangup_after": 120, "callee": steps}}}
    path = work / "scenario.json"
    path.write_text(json.dumps(doc, ensure_ascii=False))
    return path


def run_simswitch(args, work: Path, hub: MediaHub, server: MediaServer) -> int:
    port = free_port()
    sim = subprocess.Popen([sys.executable, "-m", "simswitch", "--esl-port", str(port),
                            "--scenario", str(build_scenario(work)), "--recordings-dir",
                            str(work / "rec"), "--speed", str(args.speed), "--log-level",
                            "WARNING"], cwd=ROOT)
    try:
        return _run_simswitch(args, work, hub, server, port, sim)
    finally:
        sim.terminate()
        sim.wait(10)


def _run_simswitch(args, work, hub, server, port, sim) -> int:
    body = bench_script()
    services = make_services(work, server.url("127.0.0.1"), body)
    answered: dict[str, Event] = {}
    queues: dict[str, Queue] = {}

    def on_event(_node, headers, body_):
        uid = headers.get("Unique-ID")
        if headers.get("Event-Name") == "CHANNEL_ANSWER" and uid in answered:
            answered[uid].set()
        ev = from_esl(headers, body_)
        if ev is not None and uid in queues:
            queues[uid].put(ev)

    # What a controller subscribes to for dialling and the dialogue (not ALL).
    link = NodeLink(FsNode("sim", "127.0.0.1", port, "ClueCon"), on_event=on_event,
                    events=("CHANNEL_ANSWER", "BACKGROUND_JOB", *ESL_EVENTS))
    runner = gevent.spawn(link.run)
    deadline = time.monotonic() + 15
    while not link.up.is_set():
        if sim.poll() is not None or time.monotonic() > deadline:
            print("simswitch did not come up")
            return 1
        gevent.sleep(0.1)
    results = []

    def one(n: int):
        gevent.sleep(args.ramp * n / max(1, args.calls))
        uid = str(uuidlib.uuid4())
        answered[uid], queues[uid] = Event(), Queue()
        link.bgapi(f"originate {{origination_uuid={uid},ignore_early_media=true}}"
                   f"sofia/gateway/gw1/1380000{n:04d} &park()")
        if not answered[uid].wait(30):
            return
        call = AnsweredCall(uid, body, {}, {"姓名": "王先生"}, call_id=n)
        results.append(run_dialogue(call, EslCallControl(link, uid), queues[uid], hub,
                                    services))

    usage0 = resource.getrusage(resource.RUSAGE_SELF)
    sim0 = proc_cpu(sim.pid)
    t0 = time.monotonic()
    gevent.joinall([gevent.spawn(one, n) for n in range(args.calls)], timeout=600)
    wall = time.monotonic() - t0
    usage1 = resource.getrusage(resource.RUSAGE_SELF)
    sim_cpu = proc_cpu(sim.pid) - sim0
    link.stop()
    runner.kill()
    cpu = (usage1.ru_utime - usage0.ru_utime) + (usage1.ru_stime - usage0.ru_stime)
    report(args, results, hub, wall, cpu, f"simswitch (the switch's side) used {sim_cpu:.1f} s")
    return 0 if len(results) == args.calls else 1


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "--feeder":
        feeder_main(sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5]))
        sys.exit(0)
    sys.exit(main())
