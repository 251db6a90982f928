"""Segment decisions as a call makes them: the VAD *and* the turn detector on the dev set.

    python scripts/eval_turns.py                                  # dev set, shipped VAD
    python scripts/eval_turns.py --data vad_model/sample --energy # bundled sample, both VADs

`vad_model.evaluate` scores the VAD alone (a segment is speech when 200 ms in a row are
flagged). In a call the VAD's frames go through `controller.media.turns.TurnDetector`, whose
`VoiceGuard` refuses tones, music and crowds that the VAD lets through, and whose start and end
rules join and drop runs. Each 1-3 s segment of the dev set is played to a fresh VAD stream
and detector, followed by 1 s of line noise so that an utterance can end, twice:

* after a prompt (the detector listening): the segment is *taken* when an utterance ends
  with verdict `turn` or `doubtful` (the recogniser then decides; counting it as taken is
  the pessimistic reading for noise);
* during an interruptible prompt: a noise segment that barges in cuts the robot off; a
  speech segment that does is a callee heard over the robot (600 ms of speech needed).

Segment truth is the dev labels' (`vad_model.metrics.clip_is_speech`). Figures per noise type.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from controller.media import turns  # noqa: E402
from vad_model import load_vad  # noqa: E402
from vad_model import metrics as M  # noqa: E402
from vad_model.evaluate import CACHE, clip_arrays, format_table, load_eval_set  # noqa: E402
from vad_model.serve import DEFAULT_WEIGHTS, FRAME  # noqa: E402

TAIL_S = 1.0  # line noise after a segment: longer than the 700 ms pause that ends a turn


def line_noise(seconds: float, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 30, int(seconds * 8000)).astype(np.int16)


def run_segment(vad, pcm: np.ndarray, during_prompt: bool, settings=None) -> tuple[list, bool]:
    """(verdicts of the utterances that ended, whether it barged in) for one segment."""
    stream, det = vad.stream(), turns.TurnDetector.for_vad(vad, settings or turns.TurnSettings())
    if during_prompt:
        det.prompt_started(interruptible=True)
    else:
        det.listen()
    verdicts, barged = [], False
    for i in range(len(pcm) // FRAME):
        frame = pcm[i * FRAME : (i + 1) * FRAME]
        for e in det.step(stream.push(frame), frame, i * 20):
            barged |= isinstance(e, turns.BargeIn)
            if isinstance(e, turns.UtteranceEnded):
                verdicts.append(det.verdict(e))
    return verdicts, barged


def evaluate(vad, audio, labels, index) -> dict:
    """Per noise type and 'all': counts of speech and noise segments and of what was done
    with them (missing counts read 0)."""
    tally: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for k, c in enumerate(i for i in index if i["subset"] == "segments"):
        pcm, y = clip_arrays(audio, labels, c)
        pcm = np.concatenate([pcm, line_noise(TAIL_S, k)])
        speech = M.clip_is_speech(y.astype(bool))
        vad_says = M.clip_is_speech(vad.speech_probs(pcm) >= 0.5)  # vad_model.evaluate's call
        after, _ = run_segment(vad, pcm, during_prompt=False)
        _, barged = run_segment(vad, pcm, during_prompt=True)
        taken = turns.TURN in after or turns.DOUBTFUL in after
        for key in (c.get("noise") or "clean", "all"):
            t = tally[key]
            kind = "speech" if speech else "noise"
            t[kind] += 1
            t[f"{kind}_taken"] += taken
            t[f"{kind}_barge_in"] += barged
            t[f"{kind}_vad"] += vad_says
    return tally


def rows(tally: dict) -> dict[str, dict]:
    out = {}
    for key, t in tally.items():
        s, n = t.get("speech", 0), t.get("noise", 0)
        row = {"speech_segs": s, "noise_segs": n}
        if s:
            row["vad_speech_found"] = t["speech_vad"] / s
            row["speech_heard"] = t["speech_taken"] / s
            row["speech_barge_in"] = t["speech_barge_in"] / s
        if n:
            row["vad_noise_rejected"] = 1 - t["noise_vad"] / n
            row["noise_rejected"] = 1 - t["noise_taken"] / n
            row["noise_barge_in"] = t["noise_barge_in"] / n
        row["vad_seg_acc"] = (t["speech_vad"] + n - t["noise_vad"]) / (s + n)
        row["seg_acc"] = (t["speech_taken"] + n - t["noise_taken"]) / (s + n)
        out[key] = row
    return out


COLUMNS = [
    "speech_segs",
    "noise_segs",
    "vad_speech_found",
    "vad_noise_rejected",
    "vad_seg_acc",
    "speech_heard",
    "speech_barge_in",
    "noise_rejected",
    "noise_barge_in",
    "seg_acc",
]


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--data", type=Path, default=CACHE / "dev")
    ap.add_argument("--weights", type=Path, default=DEFAULT_WEIGHTS)
    ap.add_argument("--energy", action="store_true", help="also the energy VAD (the fallback)")
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args(argv)
    audio, labels, index = load_eval_set(a.data)
    systems = {"ours (tdnn+lstm) + turn detector": load_vad("tdnn_lstm", a.weights)}
    if a.energy:
        systems["energy vad + turn detector"] = load_vad("energy")
    result = {}
    for name, vad in systems.items():
        result[name] = rows(evaluate(vad, audio, labels, index))
        by_noise = dict(sorted(result[name].items(), key=lambda kv: (kv[0] == "all", kv[0])))
        print(f"\n## {name} ({a.data})\n")
        print(format_table(by_noise, COLUMNS, label="noise"))
    if a.json:
        a.json.write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
