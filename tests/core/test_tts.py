"""Prompt conversion and espeak-ng TTS with its cache (real audio)."""

import shutil

import numpy as np
import pytest
import soundfile

from core.tts import AudioError, CachedTts, EspeakTts, TtsError, convert_file, resample


def require_espeak():
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is not installed: run scripts/test (its set-up installs it)")


@pytest.mark.parametrize("fmt,rate,channels", [("WAV", 44100, 2), ("FLAC", 16000, 1),
                                               ("OGG", 48000, 1)])
def test_convert_any_format_to_8k_mono(tmp_path, fmt, rate, channels):
    t = np.arange(rate) / rate
    tone = 0.5 * np.sin(2 * np.pi * 440 * t)
    data = np.stack([tone] * channels, axis=1) if channels > 1 else tone
    src = tmp_path / f"in.{fmt.lower()}"
    soundfile.write(src, data, rate, format=fmt)
    ms = convert_file(src, tmp_path / "out.wav")
    out, out_rate = soundfile.read(tmp_path / "out.wav", dtype="int16")
    info = soundfile.info(tmp_path / "out.wav")
    assert out_rate == 8000 and info.channels == 1 and info.subtype == "PCM_16"
    assert 990 <= ms <= 1010
    spectrum = np.abs(np.fft.rfft(out.astype(float)))
    assert abs(np.argmax(spectrum) * 8000 / len(out) - 440) < 5


def test_convert_rejects_non_audio(tmp_path):
    bad = tmp_path / "x.wav"
    bad.write_bytes(b"not audio at all")
    with pytest.raises(AudioError):
        convert_file(bad, tmp_path / "o.wav")


def test_resample_removes_aliases():
    rate = 22050
    t = np.arange(rate) / rate
    high = np.sin(2 * np.pi * 6000 * t).astype(np.float32)  # above 4 kHz Nyquist of 8k
    assert np.sqrt(np.mean(resample(high, rate, 8000) ** 2)) < 0.05


def test_espeak_cache(tmp_path):
    require_espeak()
    tts = CachedTts(EspeakTts(), tmp_path)
    a = tts.synthesize("您好，请问是王先生吗？")
    b = tts.synthesize("您好，请问是王先生吗？")
    c = tts.synthesize("再见")
    assert a == b != c and (tts.hits, tts.misses) == (1, 2)
    data, rate = soundfile.read(a, dtype="int16")
    assert rate == 8000 and len(data) > 8000 and np.abs(data).max() > 3000


def test_missing_engine_is_a_tts_error(tmp_path):
    with pytest.raises(TtsError, match="not installed"):
        CachedTts(EspeakTts(binary="no-such-espeak"), tmp_path).synthesize("hi")
