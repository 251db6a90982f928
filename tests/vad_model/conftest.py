"""Fixtures for the VAD tests: the shipped model and the bundled evaluation sample."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vad_model.evaluate import SAMPLE, clip_arrays, load_eval_set


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def sample():
    """(audio int16, labels, index) of vad_model/sample (committed FLAC, 8 kHz)."""
    return load_eval_set(SAMPLE)


@pytest.fixture(scope="session")
def sample_clip(sample):
    """Return (pcm, labels) of the first sample clip in ``subset``."""
    audio, labels, index = sample

    def get(subset: str):
        c = next(c for c in index if c["subset"] == subset)
        return clip_arrays(audio, labels, c)

    return get


@pytest.fixture(scope="session")
def speech_pcm(sample):
    audio, _, _ = sample
    return np.asarray(audio[:64000], dtype=np.int16)
