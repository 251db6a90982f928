"""Serving runtime: the TorchScript model and an energy VAD behind one interface.

No Lightning import here. Both detectors give one speech probability per 20 ms frame
(160 samples at 8 kHz):

* ``speech_probs(pcm_int16)`` -> float32 array of ``len(pcm) // 160`` probabilities (a trailing
  partial frame is ignored);
* ``stream()`` -> a per-call object whose ``push(frame_int16) -> float`` accepts any number of
  samples (normally one 20 ms frame of 160), runs every complete 20 ms frame and returns the
  latest probability (the previous one if the push completed no frame; 0.0 before the first).

Batch and streaming give the same probabilities: batch is one chunk from the zero state,
streaming is many chunks carrying the state.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

SAMPLE_RATE = 8000
FRAME = 160
FRAME_MS = 20
DEFAULT_WEIGHTS = Path(__file__).resolve().parent / "weights" / "vad.pt"


def _as_int16(pcm) -> np.ndarray:
    a = np.asarray(pcm)
    if a.dtype != np.int16:
        if np.issubdtype(a.dtype, np.floating):
            raise TypeError(
                "expected int16 PCM samples, got floats (scale by 32768 and cast first)"
            )
        a = a.astype(np.int16)
    return a.reshape(-1)


class _Stream:
    """Shared buffering: collects samples, hands complete frames to ``_run``."""

    def __init__(self) -> None:
        self._pending = np.zeros(0, dtype=np.int16)
        self._last = 0.0

    def push(self, frame_int16) -> float:
        """Feed samples of this call; return the latest speech probability."""
        a = _as_int16(frame_int16)
        if len(self._pending):
            a = np.concatenate([self._pending, a])
        n = len(a) // FRAME * FRAME
        self._pending = a[n:].copy()
        if n:
            self._last = float(self._run(a[:n])[-1])
        return self._last

    def _run(self, pcm: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError


class TorchScriptVAD:
    """The trained TDNN+LSTM model loaded from a TorchScript file (offline, CPU)."""

    sample_rate = SAMPLE_RATE
    frame_ms = FRAME_MS
    kind = "tdnn_lstm"

    def __init__(self, path: str | Path = DEFAULT_WEIGHTS) -> None:
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"VAD weights not found: {path}")
        with warnings.catch_warnings():  # torch 2.13 marks TorchScript deprecated; it still loads
            warnings.simplefilter("ignore", DeprecationWarning)
            self.model = torch.jit.load(str(path), map_location="cpu").eval()
        self._weights: StepWeights | None = None

    def speech_probs(self, pcm_int16: np.ndarray) -> np.ndarray:
        """int16 PCM at 8 kHz -> float32 probabilities, one per 20 ms frame."""
        a = _as_int16(pcm_int16)
        n = len(a) // FRAME * FRAME
        if n == 0:
            return np.zeros(0, dtype=np.float32)
        x = torch.from_numpy(a[:n].astype(np.float32) / 32768.0)[None]
        with torch.inference_mode():
            logits, _ = self.model.forward_chunk(x, self.model.initial_state(1))
        return torch.sigmoid(logits[0]).numpy().astype(np.float32)

    def stream(self) -> NumpyStream:
        """A new per-call streaming state (numpy step; see ``NumpyStream``)."""
        if self._weights is None:
            self._weights = StepWeights.from_scripted(self.model)
        return NumpyStream(self._weights)

    def torch_stream(self) -> TorchScriptStream:
        """Streaming through TorchScript itself (slower per frame; used to cross-check)."""
        return TorchScriptStream(self.model)


class TorchScriptStream(_Stream):
    def __init__(self, model) -> None:
        super().__init__()
        self._model = model
        self._state = model.initial_state(1)

    def _run(self, pcm: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(pcm.astype(np.float32) / 32768.0)[None]
        with torch.inference_mode():
            logits, self._state = self._model.forward_chunk(x, self._state)
        return torch.sigmoid(logits[0]).numpy()


class StepWeights:
    """The TorchScript model's weights rearranged for a one-frame numpy step.

    The two 25 ms windows of a 20 ms step are two matrix-vector products with the windowed
    DFT basis (only the bins the mel filters use); one block matrix then sums real^2 + imag^2
    into the 2 x 40 mel bands (faster here than numpy's FFT, whose Python overhead dominates). The
    input BatchNorm is folded into the first conv (its buffer starts at the raw value that
    normalises to zero, as the zero state does in torch); the other BatchNorms are folded
    into their convs; each conv is one matrix over its stacked taps; the LSTM's two
    matrices are one over [x, h].
    """

    def __init__(self, sd: dict[str, np.ndarray], dilations: list[int], kernel: int) -> None:
        f32 = np.float32
        basis = sd["features.basis"]  # [200, 2 * 129]: cos | sin
        mel = sd["features.mel"]  # [129, 40]
        nb, nm = mel.shape
        self.win = basis.shape[0]
        # Only DFT bins some mel filter uses (60-3800 Hz), as one [cos | sin] matrix per window.
        used = np.flatnonzero(mel.sum(axis=1) > 0)
        self.basis_t = np.ascontiguousarray(
            np.concatenate([basis[:, used], basis[:, nb + used]], axis=1).T
        ).astype(f32)
        nu = len(used)
        melsum = np.zeros((2 * nm, 4 * nu))  # (re0^2 | im0^2 | re1^2 | im1^2) -> mel0 | mel1
        for fr in range(2):
            for part in range(2):
                melsum[fr * nm : (fr + 1) * nm, (2 * fr + part) * nu : (2 * fr + part + 1) * nu] = (
                    mel[used].T
                )
        self.melsum = melsum.astype(f32)
        in_s, in_t = _bn(sd, "in_norm")
        self.convs = []
        for i, d in enumerate(dilations):
            w = sd[f"tdnn.{i}.conv.weight"].astype(np.float64)  # [out, in, k]
            s, t = _bn(sd, f"tdnn.{i}.bn")
            bias = t.astype(np.float64)
            if i == 0:  # fold the input normalisation: w (s_in x + t_in) = (w s_in) x + w t_in
                bias = bias + s * np.einsum("oik,i->o", w, in_t)
                w = w * in_s[None, :, None]
            wk = np.concatenate([w[:, :, j] for j in range(kernel)], axis=1) * s[:, None]
            self.convs.append((wk.astype(f32), bias.astype(f32), d, (kernel - 1) * d))
        safe = np.where(np.abs(in_s) > 1e-12, in_s, 1e-12)
        self.raw_zero = (-in_t / safe).astype(f32)  # raw input whose normalised value is 0
        hid = sd["lstm.weight_hh_l0"].shape[1]
        self.lstm_w = np.concatenate(
            [sd["lstm.weight_ih_l0"], sd["lstm.weight_hh_l0"]], axis=1
        ).astype(f32)
        self.lstm_b = (sd["lstm.bias_ih_l0"] + sd["lstm.bias_hh_l0"]).astype(f32)
        self.hidden = hid
        self.head_w = sd["head.weight"][0].astype(f32)
        self.head_b = float(sd["head.bias"][0])
        self.kernel = kernel
        self.context = self.win - FRAME // 2

    @classmethod
    def from_scripted(cls, model) -> StepWeights:
        sd = {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}
        return cls(sd, list(model.dilations), int(model.kernel))


def _bn(sd, name):
    scale = sd[f"{name}.weight"] / np.sqrt(sd[f"{name}.running_var"] + 1e-5)
    return scale.astype(np.float64), (
        sd[f"{name}.bias"] - sd[f"{name}.running_mean"] * scale
    ).astype(np.float64)


class NumpyStream(_Stream):
    """One call's state, stepped one 20 ms frame at a time in numpy.

    Same arithmetic as ``TdnnLstmVad.forward_chunk`` (float32, algebraically rearranged),
    about 10x cheaper per frame than calling TorchScript, whose per-op overhead dominates
    at this size.
    """

    def __init__(self, w: StepWeights) -> None:
        super().__init__()
        self._w = w
        self._ctx = np.zeros(w.context, np.float32)
        self._bufs = []
        first = True
        for wk, _, _, pad in w.convs:
            c = wk.shape[1] // w.kernel
            init = w.raw_zero if first else np.zeros(c, np.float32)
            self._bufs.append([init for _ in range(pad)])
            first = False
        self._h = np.zeros(w.hidden, np.float32)
        self._c = np.zeros(w.hidden, np.float32)

    def _run(self, pcm: np.ndarray) -> np.ndarray:
        w = self._w
        out = np.empty(len(pcm) // FRAME, np.float32)
        audio = pcm.astype(np.float32) * np.float32(1 / 32768.0)
        hsz = w.hidden
        half = FRAME // 2
        eps = np.float32(1e-6)
        bt, k = w.basis_t, w.kernel
        for n in range(len(out)):
            x = np.concatenate([self._ctx, audio[n * FRAME : (n + 1) * FRAME]])
            self._ctx = x[FRAME:]
            spec = np.concatenate([bt @ x[: w.win], bt @ x[half : half + w.win]])
            v = np.log(w.melsum @ (spec * spec) + eps)
            for (wk, b, d, _), buf in zip(w.convs, self._bufs, strict=True):
                buf.append(v)
                taps = np.concatenate(buf[::d][:k])
                del buf[0]
                v = np.maximum(wk @ taps + b, 0)
            g = w.lstm_w @ np.concatenate([v, self._h]) + w.lstm_b
            sg = 1 / (1 + np.exp(-g))
            self._c = sg[hsz : 2 * hsz] * self._c + sg[:hsz] * np.tanh(g[2 * hsz : 3 * hsz])
            self._h = sg[3 * hsz :] * np.tanh(self._c)
            out[n] = 1 / (1 + np.exp(-(float(w.head_w @ self._h) + w.head_b)))
        return out


class EnergyVAD:
    """Frame-energy VAD with an adaptive noise floor: the fallback with the same interface.

    Probability = sigmoid((frame dB - noise floor dB - margin) / slope), where the floor
    follows the minimum energy quickly downwards and slowly upwards. It cannot tell voices
    from other sounds: music, tones and babble all read as speech.
    """

    sample_rate = SAMPLE_RATE
    frame_ms = FRAME_MS
    kind = "energy"

    def __init__(
        self, margin_db: float = 9.0, slope_db: float = 2.0, min_db: float = -55.0
    ) -> None:
        self.margin_db, self.slope_db, self.min_db = margin_db, slope_db, min_db

    def speech_probs(self, pcm_int16: np.ndarray) -> np.ndarray:
        """int16 PCM at 8 kHz -> float32 probabilities, one per 20 ms frame."""
        a = _as_int16(pcm_int16)
        n = len(a) // FRAME * FRAME
        return EnergyStream(self)._run(a[:n]).astype(np.float32)

    def stream(self) -> EnergyStream:
        return EnergyStream(self)


class EnergyStream(_Stream):
    def __init__(self, vad: EnergyVAD) -> None:
        super().__init__()
        self._vad = vad
        self._floor = None

    def _run(self, pcm: np.ndarray) -> np.ndarray:
        v = self._vad
        frames = pcm.reshape(-1, FRAME).astype(np.float64) / 32768.0
        db = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-10)
        out = np.empty(len(db), dtype=np.float32)
        for i, e in enumerate(db):
            if self._floor is None:
                self._floor = e
            # fast down, slow up (about 3 dB per second at 20 ms frames)
            self._floor = e if e < self._floor else self._floor + 0.06
            z = (e - max(self._floor, v.min_db - 20) - v.margin_db) / v.slope_db
            z = z if e > v.min_db else min(z, -5.0)
            out[i] = 1.0 / (1.0 + np.exp(-z))
        return out


def load_vad(kind: str = "tdnn_lstm", path: str | Path | None = None):
    """Return a VAD with ``sample_rate``, ``frame_ms``, ``speech_probs()`` and ``stream()``.

    kind: "tdnn_lstm" (default, the shipped trained model; alias "model") or "energy".
    path: another TorchScript file exported by ``vad_model.train``.
    Raises ValueError for an unknown kind, FileNotFoundError if the weights are missing.
    """
    if kind in ("tdnn_lstm", "model", "default"):
        return TorchScriptVAD(path or DEFAULT_WEIGHTS)
    if kind == "energy":
        return EnergyVAD()
    raise ValueError(f"unknown VAD kind {kind!r} (expected 'tdnn_lstm' or 'energy')")
