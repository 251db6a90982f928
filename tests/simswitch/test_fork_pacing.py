"""A fork's pacing: a late pump catches up with every frame inside mod_audio_fork's 2 s
buffer, and skips ahead (drops audio, as a real overrun does) only beyond it."""

import numpy as np

from simswitch.audio_fork import Fork
from simswitch.media import FRAME_SECONDS, MediaTimeline


class Sink:
    """The WebSocket end: keeps what was sent."""

    def __init__(self):
        self.frames = []

    def send_binary(self, data):
        self.frames.append(np.frombuffer(data, dtype="<i2"))


class Leg:
    def __init__(self):
        self.ch = type("Channel", (), {"uuid": "u-1"})()
        self.media = MediaTimeline(8000)
        ramp = (np.arange(8000 * 10) % 30000).astype(np.int16)  # every sample tells its time
        self.media.add("callee", 0.0, ramp)


def fork_at(t0):
    fork = Fork(None, Leg(), "ws://sink", "mono", 8000, "bug", None)
    fork.ws = Sink()
    fork.send_due(t0)
    return fork


def test_a_pump_late_by_under_two_seconds_loses_no_audio():
    fork = fork_at(0.0)
    fork.send_due(1.505)  # the pump slept 1.5 s: 75 frames due at once
    audio = np.concatenate(fork.ws.frames)
    assert fork.frames_sent == 75
    np.testing.assert_array_equal(audio, np.arange(len(audio)) % 30000)  # in order, none lost


def test_a_pump_late_by_more_than_the_buffer_skips_ahead(caplog):
    fork = fork_at(0.0)
    fork.send_due(3.0)
    assert "u-1: audio fork 3.0 s behind: 149 frames dropped" in caplog.text
    assert fork.frames_sent == 1  # the overrun dropped the buffer: only the latest frame
    first = int(fork.ws.frames[0][0])
    assert first == round((3.0 - FRAME_SECONDS) * 8000) % 30000
