"""Speech recognition adapters behind one streaming interface (audio in, partial and final
text out): `scripted` (simswitch says what the audio was), FunASR's WebSocket 2-pass
protocol, and OpenAI-compatible `/v1/audio/transcriptions` (utterance level).

    rec = make_recognizer({"kind": "funasr", "url": "ws://asr:10095"})
    utt = rec.open(call_id, 8000)       # one per utterance
    utt.begin(); utt.feed(pcm); …; result = utt.end(timeout=3); utt.close()

`end()` never raises: a timeout or failure gives `AsrResult(text="", ok=False, error=…)`,
which the dialogue treats as a no-match turn.
"""

from core.asr.base import AsrResult, CallRecognizer, Recognizer, make_recognizer

__all__ = ["AsrResult", "CallRecognizer", "Recognizer", "make_recognizer"]
