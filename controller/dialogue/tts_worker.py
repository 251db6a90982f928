"""espeak-ng for a gevent process: a helper process that synthesises, and its client.

The controller cannot run espeak-ng itself without harm. gevent watches a child process only
from the hub's own loop, so from the thread pool gevent's subprocess (the monkey-patched
`subprocess`) fails at once ("child watchers are only available on the default loop"); on
the hub, every fork copies the process's page tables — about 10 ms for a controller that
has loaded the VAD, all of it with the hub stopped, so a hundred calls that each need a
prompt stall every call's audio for a second. And decoding and resampling espeak-ng's
output is CPU (a few ms per second of speech) the hub should not spend either.

So one helper process, started on first use with the controller's interpreter
(`python -m controller.dialogue.tts_worker '<json config>'`), does the whole of
`CachedTts.synthesize` — the same cache, engine and settings — on a few threads, where the
standard library's subprocess works. Requests and replies are JSON lines on its stdin and
stdout, matched by id:

    → {"id": 7, "text": "您好"}      ← {"id": 7, "path": "/…/tts-cache/ab/ab….wav"}
                                      ← {"id": 7, "error": "espeak-ng failed: …"}

The helper exits when its stdin closes (the controller stopped or died); a helper that died
is started again by the next request, and requests it left unanswered fail with TtsError.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from itertools import count
from pathlib import Path

import gevent
import gevent.subprocess
from gevent.event import AsyncResult
from gevent.lock import Semaphore

from core.tts import CachedTts, EspeakTts, TtsError

log = logging.getLogger(__name__)
REPLY_TIMEOUT_S = 60.0  # a reply slower than this (queue + synthesis) means a stuck helper
THREADS = max(2, os.cpu_count() or 1)


def config(tts: CachedTts) -> dict:
    """What the helper needs to build the same CachedTts(EspeakTts(…))."""
    engine = tts.engine
    return {"cache_dir": str(tts.cache_dir), "voice": tts.voice, "rate": tts.rate,
            "binary": engine.binary, "speed": engine.speed, "timeout": engine.timeout}


class TtsWorker:
    """The controller's side: `synthesize(text)` from any greenlet of the hub."""

    def __init__(self, tts: CachedTts):
        if not isinstance(tts.engine, EspeakTts):
            raise TypeError("the TTS helper runs espeak-ng only")
        self.tts = tts
        self._helper: _Helper | None = None

    def synthesize(self, text: str) -> Path:
        """The WAV for `text` (cache, else espeak-ng); raises TtsError."""
        if self._helper is None or self._helper.ended:
            self._helper = _Helper(config(self.tts))
        return self._helper.ask(text)

    def close(self) -> None:
        helper, self._helper = self._helper, None
        if helper is not None:
            helper.close()


class _Helper:
    """One helper process and the requests waiting for its replies."""

    def __init__(self, conf: dict):
        from core.settings import ROOT

        self.proc = gevent.subprocess.Popen(
            [sys.executable, "-m", "controller.dialogue.tts_worker", json.dumps(conf)],
            cwd=str(ROOT), stdin=gevent.subprocess.PIPE, stdout=gevent.subprocess.PIPE)
        self.waiting: dict[int, AsyncResult] = {}
        self.ids = count(1)
        self.ended = False
        self.writing = Semaphore()  # a line is written whole, whichever greenlet writes
        gevent.spawn(self._read)

    def ask(self, text: str) -> Path:
        request_id = next(self.ids)
        reply = self.waiting[request_id] = AsyncResult()
        try:
            with self.writing:
                self.proc.stdin.write(json.dumps({"id": request_id, "text": text},
                                                 ensure_ascii=False).encode() + b"\n")
                self.proc.stdin.flush()
            return Path(reply.get(timeout=REPLY_TIMEOUT_S))
        except (OSError, ValueError) as exc:  # its pipe is closed: it died
            self.ended = True
            raise TtsError(f"the TTS helper is gone: {exc}") from None
        except gevent.Timeout:
            raise TtsError("the TTS helper did not answer") from None
        finally:
            self.waiting.pop(request_id, None)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()  # it finishes what it has and exits
            try:
                self.proc.wait(timeout=5)
            except gevent.subprocess.TimeoutExpired:
                self.proc.kill()

    def _read(self) -> None:
        for line in self.proc.stdout:
            try:
                reply = json.loads(line)
            except ValueError:
                log.warning("TTS helper: unreadable reply %r", line[:200])
                continue
            waiter = self.waiting.get(reply.get("id"))
            if waiter is None:
                continue  # its caller gave up
            if "path" in reply:
                waiter.set(reply["path"])
            else:
                waiter.set_exception(TtsError(reply.get("error") or "TTS failed"))
        self.ended = True  # the next request starts another
        for waiter in self.waiting.values():
            waiter.set_exception(TtsError("the TTS helper ended"))


# -- the helper process ---------------------------------------------------------------------

def main(argv: list[str]) -> int:
    conf = json.loads(argv[0])
    tts = CachedTts(EspeakTts(conf["binary"], conf["speed"], conf["timeout"]),
                    conf["cache_dir"], voice=conf["voice"], rate=conf["rate"])
    out = threading.Lock()

    def answer(request: dict) -> None:
        try:
            reply = {"id": request["id"], "path": str(tts.synthesize(request["text"]))}
        except TtsError as exc:
            reply = {"id": request["id"], "error": str(exc)}
        except Exception as exc:  # noqa: BLE001 — the controller must hear of it, not wait
            reply = {"id": request.get("id"), "error": f"{type(exc).__name__}: {exc}"}
        line = json.dumps(reply, ensure_ascii=False).encode() + b"\n"
        with out:
            sys.stdout.buffer.write(line)
            sys.stdout.buffer.flush()

    with ThreadPoolExecutor(THREADS) as pool:
        for line in sys.stdin.buffer:  # bytes: UTF-8 whatever the locale says
            try:
                request = json.loads(line)
            except ValueError:
                continue
            pool.submit(answer, request)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
