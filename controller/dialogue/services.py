"""What the dialogue needs from outside one call: TTS with its cache, uploaded prompt files,
the recogniser and LLM chosen by settings (overridable per task), the fork URL.

TTS never runs on the hub. espeak-ng goes to one helper process (tts_worker.py says why a
gevent process cannot run it itself); another engine (`core.tts.TextToSpeech`, e.g. a cloud
API) runs in the thread pool. A text being synthesised is synthesised once however many
calls ask for it (they wait for the same result), and pre-rendering keeps at most
`PREWARM_AT_ONCE` syntheses in flight, so a prompt a call is about to play waits behind
few of them.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import gevent
from gevent.event import AsyncResult
from gevent.lock import Semaphore

from controller.dialogue.tts_worker import TtsWorker
from core.asr import make_recognizer
from core.tts import CachedTts, EspeakTts, TtsError

log = logging.getLogger(__name__)
PREWARM_AT_ONCE = max(1, os.cpu_count() or 1)


@dataclass
class DialogueServices:
    tts: CachedTts
    prompts_dir: Path
    media_url: str
    asr_conf: dict = field(default_factory=lambda: {"kind": "scripted"})
    llm_conf: dict = field(default_factory=dict)
    _recognizers: dict = field(default_factory=dict)
    _rendering: dict = field(default_factory=dict)  # cache path → AsyncResult
    _prewarm_slots: Semaphore = field(default_factory=lambda: Semaphore(PREWARM_AT_ONCE))
    _worker: TtsWorker | None = None

    @classmethod
    def from_settings(cls, settings=None) -> DialogueServices:
        from core.settings import get_settings
        st = settings or get_settings()
        d = st.dialogue
        return cls(tts=CachedTts(EspeakTts(), d.prompts_dir / "tts-cache", voice=d.tts_voice),
                   prompts_dir=d.prompts_dir, media_url=d.media_url,
                   asr_conf={"kind": d.asr, "url": d.funasr_url if d.asr == "funasr"
                             else d.stt_url, "model": d.stt_model, "api_key": d.stt_api_key},
                   llm_conf={"url": d.llm_url, "model": d.llm_model, "api_key": d.llm_api_key})

    def recognizer_for(self, task_settings: dict):
        """The task's recogniser (its `asr` object over the defaults); one instance per
        configuration, shared by calls (the scripted one keeps hints per call)."""
        conf = {**self.asr_conf, **(task_settings.get("asr") or {})}
        key = tuple(sorted((k, str(v)) for k, v in conf.items()))
        if key not in self._recognizers:
            try:
                self._recognizers[key] = make_recognizer(conf)
            except ValueError as exc:
                log.error("ASR misconfigured (%s); using the scripted recogniser", exc)
                self._recognizers[key] = make_recognizer({"kind": "scripted"})
        return self._recognizers[key]

    def llm_for(self, task_settings: dict):
        from core.llm import ChatClient
        conf = {**self.llm_conf, **(task_settings.get("llm") or {})}
        if not conf.get("url"):
            return None
        return ChatClient(conf["url"], conf.get("model") or "default", conf.get("api_key"))

    def prompt_file(self, name: str, account_id: int | None) -> Path | None:
        path = Path(name)
        if not path.is_absolute():
            path = self.prompts_dir / str(account_id or 0) / name
        return path if path.is_file() else None

    # -- TTS --------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop the TTS helper process (it also ends by itself when this process dies)."""
        if self._worker is not None:
            self._worker.close()

    def synthesize(self, text: str) -> Path:
        """The prompt's WAV, from the cache or synthesised now; raises TtsError."""
        path = self.tts.path_for(text)
        if path.exists():
            self.tts.hits += 1
            return path
        return self._render(text, path)

    def prewarm(self, flow, variables: dict, group) -> None:
        """Render this call's prompts in the background so replies need no synthesis."""
        texts = [n.prompt.render(variables) for n in flow.nodes.values() if not n.prompt.audio]
        texts += [k.answer.render(variables) for k in flow.knowledge if not k.answer.audio]
        texts += [flow.no_input.prompt.render(variables), flow.no_match.prompt.render(variables)]
        missing = [t for t in dict.fromkeys(texts) if t.strip() and not self.tts.path_for(t).exists()]
        if missing:
            group.spawn(self._render_all, missing)

    def _render_all(self, texts: list[str]) -> None:
        for text in texts:
            try:
                with self._prewarm_slots:
                    self.synthesize(text)
            except Exception as exc:  # noqa: BLE001 - a prewarm miss only costs latency later
                log.debug("prewarm of %r failed: %s", text, exc)

    def _render(self, text: str, path: Path) -> Path:
        """Synthesise `text` into `path` once: a second caller waits for the first."""
        while (pending := self._rendering.get(path)) is not None:
            try:
                return pending.get()
            except _Abandoned:
                continue  # its call ended (the group killed it) mid-way: take it over
        pending = self._rendering[path] = AsyncResult()
        try:
            self.tts.misses += 1
            if isinstance(self.tts.engine, EspeakTts):
                self._worker = self._worker or TtsWorker(self.tts)
                self._worker.synthesize(text)
            else:
                gevent.get_hub().threadpool.apply(
                    self.tts.engine.render, (text, self.tts.voice, path, self.tts.rate))
        except BaseException as exc:
            # A killed greenlet's GreenletExit must not end the greenlets waiting for it.
            pending.set_exception(exc if isinstance(exc, Exception) else _Abandoned())
            raise
        else:
            pending.set(path)
            return path
        finally:
            del self._rendering[path]


class _Abandoned(TtsError):
    """The greenlet synthesising a text was killed before it finished."""
