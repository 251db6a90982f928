"""The runtime interface: load_vad, speech_probs, stream().push, batch == streaming."""

from __future__ import annotations

import socket
import subprocess
import sys

import numpy as np
import pytest

from vad_model import load_vad
from vad_model.serve import DEFAULT_WEIGHTS


@pytest.fixture(scope="module")
def vad():
    return load_vad()


def test_default_is_the_trained_model_at_8k_20ms(vad):
    assert vad.kind == "tdnn_lstm"
    assert vad.sample_rate == 8000
    assert vad.frame_ms == 20


def test_speech_probs_shape_dtype_range(vad, speech_pcm):
    p = vad.speech_probs(speech_pcm[:1000])  # 6 full frames + 40 samples ignored
    assert p.dtype == np.float32 and p.shape == (6,)
    assert np.all((p >= 0) & (p <= 1))
    assert vad.speech_probs(np.zeros(100, np.int16)).shape == (0,)


@pytest.mark.parametrize("kind", ["tdnn_lstm", "energy"])
def test_streaming_20ms_frames_equals_batch(kind, speech_pcm):
    vad = load_vad(kind)
    batch = vad.speech_probs(speech_pcm)
    s = vad.stream()
    streamed = np.array([s.push(speech_pcm[i : i + 160]) for i in range(0, len(speech_pcm), 160)])
    assert len(streamed) == len(batch)
    np.testing.assert_allclose(streamed, batch, atol=2e-5)


def test_streaming_odd_chunks_returns_latest_probability(vad, speech_pcm):
    batch = vad.speech_probs(speech_pcm)
    s = vad.stream()
    assert s.push(speech_pcm[:100]) == 0.0  # no complete frame yet
    pos, sizes = 100, [37, 260, 160, 1, 480, 123]
    k = 0
    while pos < len(speech_pcm):
        n = sizes[k % len(sizes)]
        p = s.push(speech_pcm[pos : pos + n])
        pos += n
        k += 1
        done = min(pos, len(speech_pcm)) // 160
        assert p == (pytest.approx(batch[done - 1], abs=2e-5) if done else 0.0)


def test_numpy_stream_matches_torchscript_stream(vad, speech_pcm):
    a, b = vad.stream(), vad.torch_stream()
    for i in range(0, 16000, 160):
        assert a.push(speech_pcm[i : i + 160]) == pytest.approx(
            b.push(speech_pcm[i : i + 160]), abs=2e-5
        )


def test_streams_keep_separate_state(vad, speech_pcm):
    s1, s2 = vad.stream(), vad.stream()
    for i in range(0, 8000, 160):
        s1.push(speech_pcm[i : i + 160])
    fresh = s2.push(speech_pcm[:160])
    assert fresh == pytest.approx(float(vad.speech_probs(speech_pcm[:160])[0]), abs=2e-5)


def test_causal_no_lookahead(vad, speech_pcm):
    x = speech_pcm[:16000].copy()
    p1 = vad.speech_probs(x)
    x[8000:] = 0
    p2 = vad.speech_probs(x)
    np.testing.assert_allclose(
        p1[:50], p2[:50], atol=1e-6
    )  # frames ending at or before sample 8000


def test_rejects_float_audio_and_unknown_kind(vad):
    with pytest.raises(TypeError):
        vad.speech_probs(np.zeros(320, np.float32))
    with pytest.raises(ValueError):
        load_vad("whisper")
    with pytest.raises(FileNotFoundError):
        load_vad(path="/nonexistent/vad.pt")


def test_shipped_model_small():
    assert DEFAULT_WEIGHTS.stat().st_size < 2 * 1024 * 1024
    vad = load_vad()
    n = sum(
        v.numel()
        for k, v in vad.model.state_dict().items()
        if not k.startswith("features.") and "running" not in k and "num_batches" not in k
    )
    assert n < 300_000


def test_loads_offline_without_lightning(speech_pcm, monkeypatch):
    """No network and no Lightning import on the serving path (fresh interpreter)."""
    code = (
        "import socket, sys\n"
        "def deny(*a, **k): raise OSError('network disabled in test')\n"
        "socket.socket.connect = deny; socket.create_connection = deny\n"
        "import numpy as np, vad_model\n"
        "v = vad_model.load_vad(); p = v.speech_probs(np.zeros(1600, np.int16)); s = v.stream(); s.push(np.zeros(160, np.int16))\n"
        "assert p.shape == (10,)\n"
        "bad = [m for m in sys.modules if m.startswith(('pytorch_lightning', 'lightning'))]\n"
        "assert not bad, bad\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    assert socket.socket.connect is not None
