"""Prompts and text-to-speech: uploaded recordings converted to the call's rate, espeak-ng for
variable text behind a `TextToSpeech` interface that cloud engines can implement, and a cache
of generated audio keyed by engine, voice, rate and text.

    tts = CachedTts(EspeakTts(), cache_dir)        # or any TextToSpeech
    path = tts.synthesize("您好，王先生", voice="cmn")  # an 8 kHz mono 16-bit WAV
    convert_file(upload, dest)                      # any format libsndfile reads → same WAV
"""

from core.tts.audio import AudioError, convert_file, read_mono, resample, write_wav
from core.tts.engines import CachedTts, EspeakTts, TextToSpeech, TtsError

__all__ = ["AudioError", "CachedTts", "EspeakTts", "TextToSpeech", "TtsError", "convert_file",
           "read_mono", "resample", "write_wav"]
