"""``uuid_record`` / ``record_session``: real WAV files cut from a leg's media timeline.

Mono files carry callee + robot mixed (FreeSWITCH's default); with the channel variable
``RECORD_STEREO=true`` — or ``stereo`` configured on the recorder — the left channel is the
callee and the right channel the robot, 8 kHz 16-bit PCM, written with soundfile.
"""

import logging
import os
from pathlib import Path

import numpy as np
import soundfile

log = logging.getLogger(__name__)


class Recording:
    __slots__ = ("path", "start", "limit")

    def __init__(self, path: str, start: float, limit: float | None):
        self.path, self.start, self.limit = path, start, limit


class Recorder:
    """Starts/stops recordings on sessions; relative paths land in ``recordings_dir``."""

    def __init__(self, switch_ref, recordings_dir: str | Path, stereo: bool = True):
        # switch_ref: a callable returning the Switch (created after the recorder).
        self._switch = switch_ref
        self.dir = Path(recordings_dir)
        self.stereo = stereo

    @property
    def switch(self):
        return self._switch()

    def resolve(self, path: str) -> str:
        p = Path(path)
        return str(p if p.is_absolute() else self.dir / p)

    def start(self, sess, path: str, limit: float | None) -> bool:
        """Begin recording ``sess`` into ``path``; False if it cannot be recorded."""
        if not path or not sess.ch.up:
            return False
        path = self.resolve(path)
        if path in sess.recordings:
            return False
        rec = Recording(path, sess.clock.now(), limit)
        sess.recordings[path] = rec
        ch = sess.ch
        self.switch.channel_event(ch, "RECORD_START", after=[("Record-File-Path", path)])
        self.switch.channel_event(
            ch, "MEDIA_BUG_START", before=[("Media-Bug-Function", "session_record"), ("Media-Bug-Target", path)]
        )
        if limit:
            sess.group.spawn(self._limit, sess, rec)
        return True

    def _limit(self, sess, rec: Recording) -> None:
        sess.clock.sleep(rec.limit)
        if rec.path in sess.recordings:
            self.stop(sess, rec.path, cause="success-maxtime")

    def stop(self, sess, path: str, cause: str | None = None) -> bool:
        """Stop and write one recording ('all' stops every one); False if none matched."""
        paths = list(sess.recordings) if path == "all" else [self.resolve(path)]
        found = False
        for p in paths:
            rec = sess.recordings.pop(p, None)
            if rec is None:
                continue
            found = True
            self._write(sess, rec, cause)
        return found

    def stop_all(self, sess) -> None:
        for p in list(sess.recordings):
            self.stop(sess, p)

    def _write(self, sess, rec: Recording, cause: str | None) -> None:
        ch = sess.ch
        end = min(sess.clock.now(), rec.start + rec.limit) if rec.limit else sess.clock.now()
        callee = sess.media.render("callee", rec.start, end)
        robot = sess.media.render("robot", rec.start, end)
        stereo = self.stereo or ch.variables.get("RECORD_STEREO", "").lower() == "true"
        if stereo:
            data = np.stack([callee, robot], axis=1)
        else:
            data = np.clip(callee.astype(np.int32) + robot, -32768, 32767).astype(np.int16)
        os.makedirs(os.path.dirname(rec.path) or ".", exist_ok=True)
        soundfile.write(rec.path, data, sess.media.rate, subtype="PCM_16")
        samples = len(callee)
        ch.set_var("record_file_size", os.path.getsize(rec.path))
        ch.set_var("record_samples", samples)
        ch.set_var("record_seconds", samples // sess.media.rate)
        ch.set_var("record_ms", samples * 1000 // sess.media.rate)
        after = [("Record-File-Path", rec.path)]
        if cause:
            ch.set_var("record_completion_cause", cause)
            after.append(("Record-Completion-Cause", cause))
        self.switch.channel_event(ch, "RECORD_STOP", after=after)
        self.switch.channel_event(
            ch, "MEDIA_BUG_STOP", before=[("Media-Bug-Function", "session_record"), ("Media-Bug-Target", rec.path)]
        )
        log.debug("%s: wrote %s (%d samples)", ch.uuid, rec.path, samples)
