"""The registry of calls' media: the dialogue registers a call before starting its fork, the
fork server binds each incoming stream to it by the metadata's call id."""

from __future__ import annotations

import logging

from gevent.queue import Queue

from controller.media.early import EarlyMediaTap
from controller.media.pipeline import CallMedia
from controller.media.turns import TurnSettings

log = logging.getLogger(__name__)


def _default_vad():
    """The trained TDNN+LSTM VAD when its weights are there, else the energy fallback."""
    try:
        from vad_model import load_vad
    except ImportError:  # the package is being built: a plain energy VAD stands in
        from controller.media.energy import EnergyVad
        return EnergyVad()
    try:
        return load_vad()
    except (FileNotFoundError, RuntimeError, OSError) as exc:
        log.warning("trained VAD unavailable (%s); using the energy VAD", exc)
        return load_vad(kind="energy")


class MediaHub:
    """Calls by uuid. `register()` before `uuid_audio_fork`; `release()` at hang-up."""

    def __init__(self, vad=None, subprotocol: str = "audio.drachtio.org"):
        self.vad = vad if vad is not None else _default_vad()
        self.subprotocol = subprotocol
        self.calls: dict[str, CallMedia] = {}

    def register(self, uuid: str, turn_settings: TurnSettings | None = None,
                 recognizer=None, inbox: Queue | None = None,
                 asr_timeout: float = 4.0) -> CallMedia:
        media = CallMedia(uuid, self.vad, turn_settings, recognizer, inbox, asr_timeout)
        old = self.calls.get(uuid)
        if old is not None:
            old.close()
        self.calls[uuid] = media
        return media

    def register_early(self, uuid: str, classifier=None) -> EarlyMediaTap:
        """Tap a ringing call's early media (see early.py); `release()` when done. A later
        `register()` for the answered call replaces the tap."""
        tap = EarlyMediaTap(uuid, classifier)
        self.calls[uuid] = tap
        return tap

    def get(self, uuid: str) -> CallMedia | None:
        return self.calls.get(uuid)

    def release(self, uuid: str) -> None:
        media = self.calls.pop(uuid, None)
        if media is not None:
            media.close()

    def __len__(self) -> int:
        return len(self.calls)


def start_media(settings, vad=None) -> tuple[MediaHub, object]:
    """The controller process's hub and its running fork server (MEDIA_LISTEN)."""
    from controller.media.server import MediaServer
    conf = settings.dialogue
    hub = MediaHub(vad=vad, subprotocol=conf.fork_subprotocol)
    server = MediaServer(hub, conf.media_host, conf.media_port, conf.fork_subprotocol).start()
    return hub, server
