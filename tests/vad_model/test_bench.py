"""scripts/bench_vad.py runs and reports a plausible streaming speed."""

from scripts.bench_vad import main


def test_bench_prints_rtf_and_p99(capsys):
    r = main(["--seconds", "2"])
    out = capsys.readouterr().out
    assert "real-time factor" in out and "p99" in out
    assert 0 < r["rtf"] < 0.2 and r["frames"] == 100
