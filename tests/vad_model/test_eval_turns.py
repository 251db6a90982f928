"""scripts/eval_turns.py: segment decisions of the VAD and the turn detector together."""

from scripts.eval_turns import main
from vad_model.evaluate import SAMPLE


def test_segments_judged_as_a_call_would_on_the_sample(capsys, tmp_path):
    out = tmp_path / "turns.json"
    r = main(["--data", str(SAMPLE), "--energy", "--json", str(out)])
    printed = capsys.readouterr().out
    assert "seg_acc" in printed and "noise_barge_in" in printed and out.exists()
    ours, energy = r["ours (tdnn+lstm) + turn detector"], r["energy vad + turn detector"]
    # the sample's 2 speech and 2 noise segments (babble, street): the shipped VAD with the
    # detector takes both callers and neither noise; the energy VAD lets both noises barge in
    assert (ours["all"]["speech_segs"], ours["all"]["noise_segs"]) == (2, 2)
    assert ours["all"]["seg_acc"] == 1.0 and ours["all"]["noise_barge_in"] == 0.0
    assert energy["all"]["speech_heard"] == 1.0 and energy["babble"]["noise_barge_in"] == 1.0
