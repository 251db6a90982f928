"""Dataset builder pieces that need no apt packages: labels, channel effects, clip synthesis."""

from __future__ import annotations

import fnmatch

import numpy as np
import pytest

from vad_model.data import augment as A
from vad_model.data import build_dataset as B
from vad_model.data import sources


def _tone_utt(rng, seconds=1.5):
    """A fake 'utterance': silence, a voiced harmonic buzz, silence."""
    n = int(seconds * 8000)
    x = np.zeros(n, np.float32)
    t = np.arange(n // 2) / 8000
    f0 = rng.uniform(100, 200)
    x[n // 4 : n // 4 + n // 2] = sum(np.sin(2 * np.pi * f0 * h * t) / h for h in range(1, 10))
    return B._make_utt(x)


def test_speech_labels_follow_clean_energy():
    x = np.zeros(8000, np.float32)
    x[2000:6000] = np.sin(np.arange(4000) * 0.3)
    lab = B.speech_labels_10ms(x)
    assert lab.shape == (100,)
    assert lab[:25].sum() == 0 and lab[25:75].all() and lab[76:].sum() == 0


def test_a_dc_step_or_rumble_before_the_words_is_not_speech():
    """Prompt files that open on a DC step decaying over 200 ms at speech level, or carry a
    40 Hz rumble, have only their voice labelled (energies are taken above 100 Hz)."""
    n = 8000
    t = np.arange(n) / 8000
    x = np.zeros(n, np.float32)
    x[:1600] = 0.3 * np.exp(-t[:1600] / 0.06)  # the DC step, decaying
    x += 0.05 * np.sin(2 * np.pi * 40 * t)  # rumble all through
    voice = sum(np.sin(2 * np.pi * 150 * h * t) / h for h in range(1, 12))
    x[4000:6000] += 0.1 * voice[4000:6000]
    lab = B.speech_labels_10ms(x)
    assert lab[50:75].all() and lab[:48].sum() == 0 and lab[77:].sum() == 0


def test_prompt_beeps_and_tones_are_not_speech_sources():
    assert sources.NON_SPEECH_PROMPTS
    for path in ("/usr/share/asterisk/sounds/en_US_f_Allison/beep.wav",
                 "/usr/share/asterisk/sounds/es/beeperr.gsm",
                 "/usr/share/asterisk/sounds/en_US_f_Allison/ascending-2tone.wav",
                 "/usr/share/asterisk/sounds/en_US_f_Allison/silence/3.wav"):  # fmt: skip
        assert any(fnmatch.fnmatch(path.lower(), p) for p in sources.NON_SPEECH_PROMPTS), path
    speech = "/usr/share/asterisk/sounds/en_US_f_Allison/at-tone-time-exactly.wav"
    assert not any(fnmatch.fnmatch(speech, p) for p in sources.NON_SPEECH_PROMPTS)


def test_short_gaps_bridged_and_clicks_dropped():
    m = np.array([0] * 5 + [1] * 20 + [0] * 5 + [1] * 20 + [0] * 20 + [1] * 2 + [0] * 5, bool)
    assert B._close_gaps(m, 10)[25:30].all()
    assert not B._drop_islands(m, 3)[70:72].any()


@pytest.mark.parametrize("fx", [A.mulaw, A.alaw, A.bandpass])
def test_channel_effects_keep_length_and_level(fx):
    rng = np.random.default_rng(0)
    x = 0.3 * A.colored_noise(8000, rng, 1.0) / 4
    y = fx(x)
    assert y.shape == x.shape and y.dtype == np.float32
    assert 0.3 < A.rms(y) / A.rms(x) < 1.5


def test_g711_roundtrip_is_close():
    x = np.linspace(-0.9, 0.9, 1001).astype(np.float32)
    assert np.max(np.abs(A.mulaw(x) - x)) < 0.02
    assert np.max(np.abs(A.alaw(x) - x)) < 0.02


def test_china_ringback_cadence():
    x = A.cadence(5 * 8000, np.random.default_rng(1), A.TRAIN_TONES["cn_ringback"])
    on = np.abs(x).reshape(-1, 80).max(axis=1) > 0.5
    assert 0.15 < on.mean() < 0.25  # 1 s on, 4 s off


def test_forbidden_sources_are_refused():
    for p in [
        "/usr/share/asterisk/sounds/ru/hello.wav",
        "/usr/share/asterisk/sounds/it/x.gsm",
        "/usr/share/games/fillets-ng/sound/linux/en/key3.ogg",
        "/usr/share/asterisk/moh/reno_project-system.wav",
        "/usr/share/games/fillets-ng/sound/airplane/cs/a.ogg",
        "/usr/share/sounds/freedesktop/stereo/phone-outgoing-busy.oga",
    ]:
        with pytest.raises(sources.ForbiddenSourceError):
            sources.check_path(p)
    for v in ["pl", "hu+m3", "tr"]:
        with pytest.raises(sources.ForbiddenSourceError):
            sources.check_voice(v)
    assert not set(sources.ESPEAK_TRAIN) & set(sources.ESPEAK_DEV)
    assert "cmn" in sources.ESPEAK_TRAIN


def test_voiced_game_effects_are_kept_out_of_noise(tmp_path):
    """Spoken or grunted effects and people-filled city loops never become noise-only
    material; the rest of their folders does."""
    files = {
        "games/supertux2/sounds": ["brick.wav", "Excellent.wav", "welldone.ogg", "splash.ogg",
                                   "normalize.sh"],
        "games/lincity-ng/sounds": ["ResidentialLow1.wav", "School1.wav", "CoalMine1.wav"],
    }  # fmt: skip
    for folder, names in files.items():
        (tmp_path / folder).mkdir(parents=True)
        for name in names:
            (tmp_path / folder / name).write_bytes(b"")
    kept = sources._expand(
        [str(tmp_path / folder / "*.*") for folder in files], exclude=sources.TRAIN_SFX_EXCLUDED
    )
    assert sorted(p.rsplit("/", 1)[1] for p in kept) == ["CoalMine1.wav", "brick.wav", "splash.ogg"]


def test_make_clip_labels_and_determinism():
    rng = np.random.default_rng(0)
    utts = [_tone_utt(rng) for _ in range(6)]
    tuples = [(u.x, u.lab) for u in utts]
    B._init_worker(tuples, np.arange(len(tuples)), tuples, [], [], "train")
    speech = B.make_clip((7, 1, 32000, "speech", "stationary", (10.0, 20.0), False))
    again = B.make_clip((7, 1, 32000, "speech", "stationary", (10.0, 20.0), False))
    babble = B.make_clip((7, 2, 32000, "noise", "babble", None, False))
    pcm, lab, meta = speech
    assert pcm.dtype == np.int16 and pcm.shape == (32000,) and lab.shape == (200,)
    assert lab.any() and not lab.all()
    np.testing.assert_array_equal(pcm, again[0])  # same (seed, i) -> same clip
    assert not babble[1].any() and meta["kind"] == "speech" and babble[2]["noise"] == "babble"
    assert 3 <= babble[2]["babble_talkers"] <= 8 and isinstance(babble[2]["babble_dulled"], bool)


def test_speech_frames_record_how_far_the_callee_stands_over_the_noise():
    """speech_snr: per speech frame, the callee's power over the noise's in that frame; NaN
    wherever the label is noise. Lower clip SNRs bury more of the callee's frames."""
    snr = B._frame_snr_db(
        np.r_[np.zeros(160), np.ones(160), 0.1 * np.ones(160)].astype(np.float32),
        np.full(480, 0.5, np.float32),
        np.array([0, 1, 1], np.uint8),
    )
    assert np.isnan(snr[0]) and snr[1] == pytest.approx(6.02, abs=0.01)
    assert snr[2] == pytest.approx(-13.98, abs=0.01)
    rng = np.random.default_rng(0)
    tuples = [(u.x, u.lab) for u in (_tone_utt(rng) for _ in range(6))]
    B._init_worker(tuples, np.arange(len(tuples)), tuples, [], [], "train")
    buried = {}
    for lo in (-12.0, 15.0):
        shares = []
        for i in range(12):
            _, lab, meta = B.make_clip((7, i, 32000, "speech", "stationary", (lo, lo + 1), False))
            s = meta["speech_snr"].astype(np.float32)
            assert s.shape == lab.shape and np.isnan(s[lab == 0]).all()
            if meta["noise"] != "none":
                assert np.isfinite(s[lab == 1]).all()
                shares.append(np.mean(s[lab == 1] <= -6))
        buried[lo] = np.mean(shares)
    assert buried[-12.0] > 0.8 and buried[15.0] < 0.05
    _, _, noise_only = B.make_clip((7, 40, 32000, "noise", "music", None, False))
    assert "speech_snr" not in noise_only


def test_the_callee_says_one_utterance_at_a_time():
    """A new utterance goes to the free start nearest its draw, 150 ms clear of the others'
    speech, or is left out when there is no room: two overlapping callee utterances would be
    a babble labelled speech."""
    lab = np.zeros(400, np.uint8)
    lab[100:200] = 1
    seg = np.zeros(120, np.uint8)
    seg[10:110] = 1  # 100 ms of silence before and after the speech
    assert B._free_place(np.zeros(400, np.uint8), seg, 90) == 90
    assert B._free_place(lab, seg, 90) == 205  # its speech starts 15 frames after the other's
    assert B._free_place(lab, seg, 250) == 250  # already clear
    full = np.zeros(400, np.uint8)
    full[50:350] = 1
    assert B._free_place(full, seg, 100) is None
    rng = np.random.default_rng(0)
    tuples = [(u.x, u.lab) for u in (_tone_utt(rng, seconds=2.0) for _ in range(6))]
    B._init_worker(tuples, np.arange(len(tuples)), tuples, [], [], "train")
    for i in range(30):  # each tone utterance is one 1 s run: a clip holds at most 3, apart
        _, lab20, meta = B.make_clip((7, i, 32000, "speech", "stationary", (10.0, 20.0), False))
        runs = [(s, e) for s, e, v in B._runs(lab20.astype(bool)) if v]
        assert all(40 <= e - s <= 51 for s, e in runs), runs
        assert all(b[0] - a[1] >= 7 for a, b in zip(runs, runs[1:], strict=False)), runs


def test_sampling_table_balances_families_and_speakers():
    groups = (
        ["asterisk/en"] * 900 + ["asterisk/fr"] * 100 + ["gcin/3.ogg"] * 10 + ["gcin/5.ogg"] * 50
    )
    table = B.sampling_table(groups, {"asterisk": 0.5, "gcin": 0.5}, seed=1, size=40_000)
    drawn = np.array(groups)[table]
    share = {g: float(np.mean(drawn == g)) for g in set(groups)}
    for g in groups:  # each family half the draws, each speaker group a quarter
        assert abs(share[g] - 0.25) < 0.015, share
    # a pool without family weights (the dev pool) draws every file equally, as before
    np.testing.assert_array_equal(B.sampling_table(groups, None, seed=1), np.arange(len(groups)))


def test_speaker_groups_of_recorded_sources():
    assert sources.speaker_group("/usr/share/ktuberling/sounds/de/umbrella.ogg") == "ktuberling/de"
    assert sources.speaker_group("/usr/share/gcin-voice/ogg/ㄅㄚ/5.ogg") == "gcin/5.ogg"
    june = "/usr/share/asterisk/sounds/fr_CA_f_June/digits/1.wav"
    assert sources.speaker_group(june) == "asterisk/fr_CA_f_June"
    assert sources.speaker_group("/usr/share/ktuberling/sounds/sr@latin/a.ogg") == "ktuberling/sr"
    tux = "/usr/share/tuxpaint/stamps/animals/birds/"
    assert sources.speaker_group(tux + "crow_desc_ru.ogg") == "tuxpaint/ru"
    assert sources.speaker_group(tux + "crow_desc.ogg") == "tuxpaint/en"
    assert sources.speaker_group("/usr/share/klettres/pt_BR/syllab/ba.ogg") == "klettres/pt_BR"
    assert set(sources.TRAIN_SPEECH_FAMILIES) == {
        sources.speaker_group(p).split("/")[0]
        for p in [
            "/usr/share/games/fillets-ng/sound/a/nl/x-m-1.ogg",
            "/usr/share/ktuberling/sounds/en/a.ogg",
            "/usr/share/gcin-voice/ogg/a/3.ogg",
            "/usr/share/asterisk/sounds/en_US_f_Allison/a.wav",
            tux + "crow_desc_fr.ogg",
            "/usr/share/klettres/de/alpha/a.ogg",
        ]
    }


def test_mandarin_phrases_join_each_speakers_syllables_once():
    rng = np.random.default_rng(0)
    syl = {
        g: [_tone_utt(rng, 0.4).x[800:2400] for _ in range(25)]
        for g in ("gcin/3.ogg", "gcin/5.ogg")
    }
    phrases = B.mandarin_phrases(syl, np.random.default_rng(3))
    for g in syl:
        mine = [u for u, grp in phrases if grp == g]
        assert sum(len(u.x) for u in mine) >= 25 * 1600  # every syllable, plus the gaps
        assert all(len(u.x) >= 2 * 1600 for u in mine[:-1])  # at least two syllables a phrase
        assert all(u.lab.mean() > 0.6 for u in mine)  # mostly voiced, gaps short


def test_babble_snr_floor_moves_only_babble_mixes():
    rng = np.random.default_rng(0)
    tuples = [(u.x, u.lab) for u in (_tone_utt(rng) for _ in range(6))]
    jobs = [(7, i, 32000, "speech", nk, (-5.0, 20.0), False) for i, nk in
            enumerate(["babble"] * 8 + ["music"] * 4)]  # fmt: skip

    def snrs(floor):
        B._init_worker(tuples, np.arange(len(tuples)), tuples, [], [], "train", B.Mixing(floor))
        return [B.make_clip(j)[2]["snr"] for j in jobs]

    plain, floored = snrs(None), snrs(3.0)
    assert min(plain[:8]) < 3.0 <= min(floored[:8])
    assert floored[8:] == plain[8:]  # other noises: the very same clips
    assert all(f >= p for f, p in zip(floored[:8], plain[:8], strict=True))


def test_rooms_reverberate_only_the_voices_asked_for():
    """Far babble puts the background talkers in a room, a near room the callee; the
    foreground, its labels and every other clip stay the same draws."""
    rng = np.random.default_rng(0)
    tuples = [(u.x, u.lab) for u in (_tone_utt(rng) for _ in range(6))]
    jobs = [
        (7, i, 32000, "speech", nk, (5.0, 10.0), False)
        for i, nk in enumerate(["babble", "babble", "music", "stationary"])
    ]
    jobs.append((7, 9, 32000, "noise", "music", None, False))  # fmt: skip

    def clips(far, near, room_model="tail"):
        mixing = B.Mixing(far_babble=far, near_room=near, room_model=room_model)
        B._init_worker(tuples, np.arange(len(tuples)), tuples, [], [], "train", mixing)
        return [B.make_clip(j) for j in jobs]

    dry, far, near = clips(0.0, 0.0), clips(1.0, 0.0), clips(0.0, 1.0)
    box = clips(1.0, 0.0, "shoebox")
    for (pf, lf, mf), (pb, lb, mb) in zip(far, box, strict=True):
        np.testing.assert_array_equal(lf, lb)
        assert {k: v for k, v in mf.items() if k not in B.PER_FRAME} == {
            k: v for k, v in mb.items() if k not in B.PER_FRAME
        }
        assert np.array_equal(pf, pb) == (not mf.get("babble_far"))  # only the rooms differ
    for (pd, ld, md), (pf, lf, mf) in zip(dry[:2], far[:2], strict=True):
        assert not md["babble_far"] and mf["babble_far"]
        np.testing.assert_array_equal(ld, lf)  # the same foreground, the same labels
        assert md["snr"] == mf["snr"] and md["babble_talkers"] == mf["babble_talkers"]
        assert not np.array_equal(pd, pf)
    for (pd, *_), (pf, *_) in zip(dry[2:], far[2:], strict=True):
        np.testing.assert_array_equal(pd, pf)  # other noises: the very same clips
    for (pd, ld, md), (pn, ln, mn) in zip(dry[:4], near[:4], strict=True):
        assert mn.get("near_room") and "near_room" not in md
        np.testing.assert_array_equal(ld, ln)
        assert not np.array_equal(pd, pn)
    np.testing.assert_array_equal(dry[4][0], near[4][0])  # no callee, no room


def test_lead_of_the_loudest_talker_per_frame():
    powers = np.array([[1.0, 0.0, 4.0], [0.1, 0.0, 1.0], [0.1, 0.0, 1.0]])
    lead = B._lead_db(powers)
    assert lead[0] == pytest.approx(10 * np.log10(1 / 0.2), abs=0.01)
    assert np.isnan(lead[1])  # nobody talks
    assert lead[2] == pytest.approx(10 * np.log10(4 / 2), abs=0.01)
    assert B._lead_db(np.array([[1.0], [0.0]]))[0] == 40  # one talks alone


def test_babble_records_how_far_its_loudest_talker_leads():
    """Each frame of a babble gets its loudest talker's lead; few talkers leave one of them
    louder than the rest together more often than many do."""
    rng = np.random.default_rng(0)
    tuples = [(u.x, u.lab) for u in (_tone_utt(rng) for _ in range(6))]
    B._init_worker(tuples, np.arange(len(tuples)), tuples, [], [], "train")
    leads: dict[int, list[float]] = {}
    for i in range(80):
        info: dict = {}
        B._babble(32000, np.random.default_rng([3, i]), info)
        assert info["babble_lead"].shape == (200,)
        lead = info["babble_lead"].astype(np.float32)
        leads.setdefault(info["babble_talkers"], []).append(np.nanmean(lead >= 0))
    few, many = leads[3] + leads[4], leads[7] + leads[8]  # share of frames one talker leads
    assert np.mean(few) > np.mean(many) + 0.15


def test_shoebox_room_has_its_direct_sound_first_and_decays_in_its_reverberation_time():
    impulse = np.zeros(8000, np.float32)
    impulse[0] = 1.0
    rir = A.shoebox_room(impulse, np.random.default_rng(5), rt60=(0.5, 0.5)).astype(np.float64)
    assert rir[0] == pytest.approx(1.0, abs=1e-5) and np.all(np.abs(rir[1:]) < 1.0)
    energy = rir[1:] ** 2
    assert energy.sum() > 1.0  # metres away in a room: more reverberation than direct sound
    decay = np.cumsum(energy[::-1])[::-1]  # Schroeder: T20 extrapolated to 60 dB
    db = 10 * np.log10(decay / decay[0])
    t20 = (np.argmax(db < -25) - np.argmax(db < -5)) / 8000 * 3
    assert 0.35 < t20 < 0.75


def test_room_impulse_response_has_its_direct_to_reverberant_ratio_and_decays():
    impulse = np.zeros(16000, np.float32)
    impulse[0] = 1.0
    rir = A.room(impulse, np.random.default_rng(5), rt60=(0.5, 0.5), drr_db=(-3.0, -3.0))
    assert rir[0] == pytest.approx(1.0, abs=1e-5)
    assert np.sum(rir[1:] ** 2) == pytest.approx(10**0.3, rel=1e-3)  # tail 3 dB above direct
    tail = rir[1:4000] ** 2  # 0.5 s: 60 dB down by its end
    assert tail[:400].sum() > 1e4 * tail[-400:].sum()


def _mixed_clips(kinds: list[tuple[str, str]], mixing) -> list:
    """Clips of these (kind, noise) draws, mixed as ``mixing`` says, from fake utterances; the
    same draws whatever ``mixing`` is, so two calls show what it changes."""
    rng = np.random.default_rng(0)
    tuples = [(u.x, u.lab) for u in (_tone_utt(rng) for _ in range(6))]
    B._init_worker(tuples, np.arange(len(tuples)), tuples, [], [], "train", mixing)
    return [B.make_clip((7, i, 32000, kind, nk, (5.0, 10.0) if kind == "speech" else None, False))
            for i, (kind, nk) in enumerate(kinds)]  # fmt: skip


def test_water_joins_only_street_and_office_noise():
    kinds = [("noise", "street_office"), ("speech", "street_office"), ("noise", "music"),
             ("speech", "babble")]  # fmt: skip
    dry, wet = _mixed_clips(kinds, B.Mixing(water=0.0)), _mixed_clips(kinds, B.Mixing(water=1.0))
    for (pd, ld, _), (pw, lw, _) in zip(dry[:2], wet[:2], strict=True):
        np.testing.assert_array_equal(ld, lw)
        assert not np.array_equal(pd, pw)
    for (pd, *_), (pw, *_) in zip(dry[2:], wet[2:], strict=True):
        np.testing.assert_array_equal(pd, pw)


def test_water_is_bursts_of_bubbles_ringing_between_270_hz_and_2_2_khz():
    x = A.water(4 * 8000, np.random.default_rng(5))
    frames = x[: len(x) // 256 * 256].reshape(-1, 256)
    spec = np.abs(np.fft.rfft(frames * np.hanning(256), axis=1))
    loud = (frames**2).mean(axis=1) > 0.5  # frames with a bubble ringing, not the hiss alone
    peak_hz = spec[loud].argmax(axis=1) * 8000 / 256
    assert 0.2 < loud.mean() < 0.8  # bubbling, then quiet, then bubbling again
    assert np.mean((peak_hz > 250) & (peak_hz < 2300 * 1.6)) > 0.9  # the glide ends higher
    assert np.median(peak_hz) < 2300


def test_speed_perturbation_moves_pitch_and_length_together():
    t = np.arange(16000) / 8000
    x = np.zeros(24000, np.float32)
    x[4000:20000] = np.sin(2 * np.pi * 200 * t)
    u = B._make_utt(x)
    fast, slow = B._speed(u, 28), B._speed(u, 22)  # 1.12 and 0.88 times as fast
    for v, f in ((fast, 28 / 25), (slow, 22 / 25)):
        assert len(v.x) == pytest.approx(len(u.x) / f, abs=2 * B.SUB)
        assert v.lab.sum() == pytest.approx(u.lab.sum() / f, abs=3)  # labels made again
        peak = np.abs(np.fft.rfft(v.x)).argmax() * 8000 / len(v.x)
        assert peak == pytest.approx(200 * f, rel=0.01)


def test_speed_perturbation_moves_only_the_voices():
    """Callees and babble talkers change speed; noise without voices, the noise under a callee
    (music here) and whether a babble is in a room stay the same draws."""
    kinds = [("speech", "music"), ("speech", "babble"), ("noise", "babble"), ("noise", "music")]
    plain = _mixed_clips(kinds, B.Mixing(far_babble=0.5, speed_perturb=0.0))
    sped = _mixed_clips(kinds, B.Mixing(far_babble=0.5, speed_perturb=1.0))
    for (pp, _, mp), (ps, _, ms) in zip(plain[:3], sped[:3], strict=True):
        assert not np.array_equal(pp, ps)
        assert mp.get("babble_far") == ms.get("babble_far")
    assert plain[0][2]["snr"] == sped[0][2]["snr"]
    assert not np.array_equal(plain[0][1], sped[0][1])  # the callee's labels follow its speed
    np.testing.assert_array_equal(plain[3][0], sped[3][0])
