"""The evaluation command on the bundled sample (anchors only when their packages exist)."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest

from vad_model import evaluate
from vad_model.evaluate import SAMPLE


def test_evaluate_sample_ours_only(tmp_path, capsys):
    res = evaluate.main(
        [
            "--data",
            str(SAMPLE),
            "--no-anchors",
            "--energy",
            "--no-speed",
            "--json",
            str(tmp_path / "e.json"),
        ]
    )
    out = capsys.readouterr().out
    assert "| ours (tdnn+lstm) |" in out and "| target |" in out
    row = res["rows"]["ours (tdnn+lstm)"]
    assert row["auc"] > 0.9
    assert row["fa_tones"] <= 0.1
    assert row["seg_acc"] >= 0.75
    # the sample's one babble-only clip has 6 talkers, not dulled: it lands in those columns only
    assert "false alarms on babble-only clips by make-up" in out
    assert row["fa_babble_5_8_talkers"] == row["fa_babble_bright"] == row["fa_babble"]
    assert "fa_babble_3_4_talkers" not in row and "fa_babble_dulled" not in row
    # its frames by the loudest talker's lead: the bands' false alarms add back to the whole
    shares = res["babble_lead_shares"]
    assert sum(shares.values()) == pytest.approx(1.0) and len(shares) == 3
    assert "by the loudest talker's lead over the rest" in out
    assert sum(
        shares[col.removeprefix("fa_")] * row.get(col, 0.0) for col in evaluate.BABBLE_LEAD_DB
    ) == pytest.approx(row["fa_babble"])
    # the segment accuracy splits into speech segments found and noise-only ones rejected
    segments = [c for c in evaluate.load_eval_set(SAMPLE)[2] if c["subset"] == "segments"]
    n_speech = sum(c["kind"] != "noise" for c in segments)
    assert 0 < n_speech < len(segments) == row["n_segments"]
    assert "speech ones called speech, noise-only ones called noise" in out
    assert row["seg_acc"] == pytest.approx(
        (
            row["seg_speech_found"] * n_speech
            + row["seg_noise_rejected"] * (len(segments) - n_speech)
        )
        / len(segments)
    )
    # the mixes' speech frames by the callee's level over the noise in each: the bands' recall
    # adds back to the recall over all of them
    audio, labels, index = evaluate.load_eval_set(SAMPLE)
    snr = evaluate.load_per_frame(SAMPLE, "speech_snr").astype(np.float32)
    ours = evaluate.Ours(evaluate.DEFAULT_WEIGHTS)
    found, frame_snr = [], []
    for c in (c for c in index if c["subset"] == "mix"):
        a, y = evaluate.clip_arrays(audio, labels, c)
        p = ours.probs(a)[: len(y)]
        found.append(p[y[: len(p)] == 1] >= 0.5)
        frame_snr.append(evaluate.clip_frames(snr, c)[: len(p)][y[: len(p)] == 1])
    found, frame_snr = np.concatenate(found), np.concatenate(frame_snr)
    assert np.isfinite(frame_snr).all() and (frame_snr < 0).any() and (frame_snr > 6).any()
    bands = [c for c in evaluate.SPEECH_SNR_DB if c in row]
    assert len(bands) >= 3 and "by the callee's level over the noise in the frame" in out
    weights = {c: np.mean((frame_snr >= lo) & (frame_snr < hi))
               for c, (lo, hi) in evaluate.SPEECH_SNR_DB.items()}  # fmt: skip
    assert sum(weights[c] * row[c] for c in bands) == pytest.approx(found.mean())
    assert json.loads((tmp_path / "e.json").read_text())["rows"]


@pytest.mark.skipif(
    importlib.util.find_spec("webrtcvad") is None or importlib.util.find_spec("silero_vad") is None,
    reason="optional anchors: pip install webrtcvad-wheels silero-vad (requirements-dev.txt)",
)
def test_evaluate_sample_with_anchors_and_speed(tmp_path):
    pytest.importorskip("matplotlib", reason="ROC plot needs matplotlib (requirements-dev.txt)")
    res = evaluate.main(
        ["--data", str(SAMPLE), "--speed-seconds", "3", "--roc", str(tmp_path / "roc.png")]
    )
    assert {"webrtcvad mode 3", "silero vad (8k)"} <= set(res["rows"])
    assert res["rows"]["ours (tdnn+lstm)"]["rtf"] < 0.1
    assert (tmp_path / "roc.png").stat().st_size > 1000
