"""Noise-robust voice activity detection for 8 kHz calls (feature C5).

    from vad_model import load_vad
    vad = load_vad()                  # shipped TDNN+LSTM model (TorchScript, offline)
    probs = vad.speech_probs(pcm)     # int16 array -> one float32 per 20 ms frame
    s = vad.stream()                  # one per call
    p = s.push(frame)                 # 160 int16 samples -> latest probability

``load_vad(kind="energy")`` gives a simple energy VAD with the same interface. Importing this
package does not import Lightning (training lives in ``vad_model.train``).
"""

from vad_model.serve import FRAME_MS, SAMPLE_RATE, EnergyVAD, TorchScriptVAD, load_vad

__all__ = ["FRAME_MS", "SAMPLE_RATE", "EnergyVAD", "TorchScriptVAD", "load_vad"]
