"""The shipped model on the bundled sample: speech high, background voices and tones low."""

from __future__ import annotations

import numpy as np
import pytest

from vad_model import load_vad


@pytest.fixture(scope="module")
def vad():
    return load_vad()


def test_recorded_speech_scores_high(vad, sample_clip):
    pcm, lab = sample_clip("mix")  # recorded fillets-ng actors at 15-20 dB SNR
    p = vad.speech_probs(pcm)
    speech = lab.astype(bool)
    assert speech.sum() > 50
    assert p[speech].mean() > 0.7
    assert np.mean(p[speech] > 0.5) > 0.8


@pytest.mark.parametrize(
    "subset,limit",
    [
        # the sample's one babble: 6 talkers, dry (the dev set's dry babble is still short of
        # the 10 % target: vad_model/README.md)
        ("noise_babble", 0.3),
        ("noise_tones", 0.1),
        ("noise_music", 0.2),
        ("noise_stationary", 0.1),
        ("noise_street_office", 0.2),
    ],
)
def test_noise_scores_low(vad, sample_clip, subset, limit):
    pcm, _ = sample_clip(subset)
    p = vad.speech_probs(pcm)
    assert np.mean(p > 0.5) <= limit, (subset, np.round(p, 2))


def test_babble_scores_below_a_single_talker(vad, sample_clip):
    """Even where it over-fires on babble, the model ranks a lone recorded talker higher."""
    speech, lab = sample_clip("mix")
    babble, _ = sample_clip("noise_babble")
    assert vad.speech_probs(speech)[lab.astype(bool)].mean() > vad.speech_probs(babble).mean()


def test_energy_vad_detects_speech(sample_clip):
    """The fallback VAD finds speech in quiet noise (it cannot tell voices from other sounds)."""
    e = load_vad("energy")
    pcm, lab = sample_clip("mix")
    assert e.speech_probs(pcm)[lab.astype(bool)].mean() > 0.5
