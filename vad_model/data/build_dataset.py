"""Build the train / dev datasets from offline sources, reproducibly from one seed.

    python -m vad_model.data.build_dataset --split train --clips 7000 --seed 1234
    python -m vad_model.data.build_dataset --split dev --seed 4321

Output (under ``vad_model/.cache/<split>/``, never committed):
    audio.npy   int16, all clips concatenated (8 kHz)
    labels.npy  uint8, one label per 20 ms frame (1 = foreground speech), from the clean
                speech before mixing
    babble_lead.npy  float16 per 20 ms frame: where the clip holds babble, how far its loudest
                talker stands over the others together (dB); NaN elsewhere
    speech_snr.npy   float16 per 20 ms frame: where the frame is labelled speech, the callee's
                power over the noise's in that frame (dB, within +-40); NaN elsewhere.
                ``vad_model.train --mask-buried-db`` leaves out of the loss the speech frames
                buried under the noise
    index.json  one entry per clip: offset/frames/kind/noise/snr/effects/subset

Frame labels: clean foreground speech is cut in 10 ms frames; a frame is speech when its
energy is within 30 dB of the utterance's 95th-percentile frame, over the whole band and
above 100 Hz alike (below 100 Hz lie the recordings' DC steps, thumps and rumble, not
voices); gaps under 100 ms are
bridged, islands under 30 ms dropped; a 20 ms label is speech if either 10 ms half is.
Babble (3-8 other talkers mixed) is labelled noise: background voices are noise. It is mixed
dry unless ``--far-babble`` puts a share of it in a reverberant room, as people a few metres
from the phone are (a diffuse tail, or image-source rooms with ``--room-model shoebox``;
``--near-room`` puts the callee faintly in a room too). ``--water`` adds
bubbling water to a share of the street/office noise; ``--speed-perturb`` plays a share of
the utterances (callees' and babble talkers') 0.88-1.12 times as fast. All are off for the
dev set.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from multiprocessing import Pool
from pathlib import Path

import numpy as np
from tqdm import tqdm

from vad_model.data import augment as A
from vad_model.data import sources

SR = 8000
SUB = 80  # 10 ms
FRAME = 160  # 20 ms label / model frame
CACHE = Path(__file__).resolve().parents[1] / ".cache"


# --------------------------------------------------------------------------- decoding
def decode(path: str, max_seconds: float | None = None) -> np.ndarray:
    """Any audio file -> float32 mono 8 kHz via sox (handles wav, gsm, ogg)."""
    sources.check_path(path)
    cmd = [
        "sox",
        "-V1",
        "-D",
        path,
        "-t",
        "raw",
        "-r",
        "8000",
        "-e",
        "signed",
        "-b",
        "16",
        "-c",
        "1",
        "-",
    ]
    if max_seconds:
        cmd += ["trim", "0", str(max_seconds)]
    out = subprocess.run(cmd, capture_output=True, check=False).stdout
    return np.frombuffer(out, dtype="<i2").astype(np.float32) / 32768


LABEL_HIGHPASS_HZ = 100.0


def speech_labels_10ms(x: np.ndarray) -> np.ndarray:
    """Per-10-ms speech mask of a clean utterance (see module docstring). A frame must be near
    the utterance's level above LABEL_HIGHPASS_HZ too: the dev prompts open each file on a DC
    step that decays over 200 ms at speech level, and amateur recordings carry rumble, which
    were labelled speech (12-14 % of the dev prompts' speech frames; 18 % of ktuberling's,
    10 % of klettres', 5 % of tuxpaint's)."""
    n = len(x) // SUB
    if n == 0:
        return np.zeros(0, np.uint8)

    def level(y):
        return 10 * np.log10(np.mean(y.reshape(n, SUB).astype(np.float64) ** 2, axis=1) + 1e-10)

    x = x[: n * SUB]
    e = level(x)
    # a veto, not a new level: the filter's ringing must not lend a silent frame speech
    e_hp = level(A.bandpass(x, LABEL_HIGHPASS_HZ, SR, 40.0))
    ref = np.percentile(e, 95)
    lab = (e > ref - 30) & (e_hp > np.percentile(e_hp, 95) - 30) & (e > -70)
    lab = _close_gaps(lab, 10)
    lab = _drop_islands(lab, 3)
    return lab.astype(np.uint8)


def _runs(mask: np.ndarray):
    """Yield (start, end, value) runs of a boolean array."""
    if len(mask) == 0:
        return
    change = np.flatnonzero(np.diff(mask.astype(np.int8))) + 1
    starts = np.concatenate([[0], change])
    ends = np.concatenate([change, [len(mask)]])
    for s, e in zip(starts, ends, strict=True):
        yield int(s), int(e), bool(mask[s])


def _close_gaps(mask, max_gap):
    m = mask.copy()
    runs = list(_runs(mask))
    for i, (s, e, v) in enumerate(runs):
        if not v and 0 < i < len(runs) - 1 and e - s < max_gap:
            m[s:e] = True
    return m


def _drop_islands(mask, min_len):
    m = mask.copy()
    for s, e, v in _runs(mask):
        if v and e - s < min_len:
            m[s:e] = False
    return m


# --------------------------------------------------------------------------- corpora
@dataclass
class Utt:
    x: np.ndarray  # float32, unit RMS over speech frames
    lab: np.ndarray  # uint8 per 10 ms


def _make_utt(x: np.ndarray) -> Utt | None:
    x = x[: len(x) // SUB * SUB]
    lab = speech_labels_10ms(x)
    if lab.sum() < 5:
        return None
    sp = x.reshape(-1, SUB)[lab.astype(bool)]
    x = x / (A.rms(sp) + 1e-9)
    return Utt(x.astype(np.float32), lab)


def _load_file(path):
    return _make_utt(decode(path, max_seconds=12))


def mandarin_phrases(syllables: dict[str, list[np.ndarray]], rng) -> list[tuple[Utt, str]]:
    """Join each speaker's single syllables into 2-10 syllable pseudo-phrases.

    Gaps of 0-60 ms as in fluent speech, now and then a 150-400 ms pause, a random gain per
    syllable for stress; every syllable used once per speaker."""
    out = []
    for group, sylls in sorted(syllables.items()):
        order = rng.permutation(len(sylls))
        k = 0
        while k < len(order):
            n = int(rng.integers(2, 11))
            parts = []
            for j in order[k : k + n]:
                gap = rng.uniform(0.15, 0.4) if rng.uniform() < 0.1 else rng.uniform(0, 0.06)
                parts += [np.zeros(int(gap * SR), np.float32), sylls[j] * rng.uniform(0.6, 1.2)]
            k += n
            u = _make_utt(np.concatenate(parts[1:]))
            if u is not None:
                out.append((u, group))
    return out


def sampling_table(groups: list[str], families: dict[str, float] | None, seed: int, size=50_000):
    """Indices into the recorded utterances, drawn so that each family gets its weight and
    each speaker group inside it an equal share; identity when ``families`` is None."""
    if families is None:
        return np.arange(len(groups))
    count = Counter(groups)
    speakers = Counter(g.split("/")[0] for g in count)  # speaker groups per family
    w = np.array([families[g.split("/")[0]] / speakers[g.split("/")[0]] / count[g] for g in groups])
    return np.random.default_rng(seed).choice(len(groups), size=size, p=w / w.sum())


def _espeak_one(args):
    voice, seed = args
    rng = np.random.default_rng(seed)
    base = voice.split("+")[0]
    if base == "cmn":
        text = "".join(rng.choice(sources.ZH_PHRASES, int(rng.integers(1, 4))))
    elif base.startswith("en"):
        text = " ".join(rng.choice(sources.EN_PHRASES, int(rng.integers(1, 3))))
    else:
        words = []
        for _ in range(int(rng.integers(2, 9))):
            if rng.uniform() < 0.4:
                words.append(str(int(rng.integers(0, 10 ** int(rng.integers(1, 7))))))
            else:
                cons, vow = "bcdfghjklmnprstvwz", "aeiou"
                words.append(
                    "".join(
                        rng.choice(list(cons)) + rng.choice(list(vow))
                        for _ in range(int(rng.integers(1, 4)))
                    )
                )
        text = " ".join(words) + rng.choice([".", "?", ",", "!"])
    cmd = [
        "espeak-ng",
        "-v",
        voice,
        "-s",
        str(int(rng.integers(110, 260))),
        "-p",
        str(int(rng.integers(15, 85))),
        "--stdout",
        text,
    ]
    wav = subprocess.run(cmd, capture_output=True, check=False).stdout
    if not wav:
        return None
    pcm = subprocess.run(
        [
            "sox",
            "-V1",
            "-D",
            "-t",
            "wav",
            "-",
            "-t",
            "raw",
            "-r",
            "8000",
            "-e",
            "signed",
            "-b",
            "16",
            "-c",
            "1",
            "-",
        ],
        input=wav,
        capture_output=True,
        check=False,
    ).stdout
    return _make_utt(np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768)


def load_corpora(split: str, pool_: sources.SourcePool, seed: int, n_espeak: int, workers: int):
    """Decode the split's speech files, synthesise espeak-ng utterances, decode music.

    Returns (recorded utterances, their speaker groups, espeak-ng utterances, music, sfx)."""
    labels = f"hp{LABEL_HIGHPASS_HZ:g}"  # utterances cached with the labeller that made them
    cache = CACHE / f"corpus_{split}_{seed}_{n_espeak}_{len(pool_.speech_files)}_{labels}.npz"
    if cache.exists():
        z = np.load(cache, allow_pickle=True)  # our own cache file, written below
        return (
            [Utt(*u) for u in z["real"]],
            list(z["groups"]),
            [Utt(*u) for u in z["tts"]],
            list(z["music"]),
            list(z["sfx"]),
        )
    rng = np.random.default_rng(seed)
    syllable_files = [f for f in pool_.speech_files if f.startswith(sources.MANDARIN_SYLLABLES)]
    files = [f for f in pool_.speech_files if not f.startswith(sources.MANDARIN_SYLLABLES)]
    with Pool(workers) as p:
        decoded = tqdm(
            p.imap(_load_file, files, chunksize=8), total=len(files), desc=f"{split}: decode speech"
        )
        real = [
            (u, sources.speaker_group(f))
            for f, u in zip(files, decoded, strict=True)
            if u is not None
        ]
        syllables: dict[str, list[np.ndarray]] = {}
        for f, x in zip(
            syllable_files,
            tqdm(
                p.imap(decode, syllable_files, chunksize=16),
                total=len(syllable_files),
                desc=f"{split}: decode Mandarin syllables",
            ),
            strict=True,
        ):
            if len(x) > SUB:
                syllables.setdefault(sources.speaker_group(f), []).append(x)
        # its own generator, so the espeak-ng draws below stay those of a pool without syllables
        real += mandarin_phrases(syllables, np.random.default_rng([seed, 7]))
        real, groups = [u for u, _ in real], [g for _, g in real]
        jobs = []
        for i in range(n_espeak):
            v = pool_.espeak_voices[rng.integers(len(pool_.espeak_voices))]
            v = (
                sources.check_voice(v)
                + sources.ESPEAK_VARIANTS[rng.integers(len(sources.ESPEAK_VARIANTS))]
            )
            jobs.append((v, seed * 100003 + i))
        tts = [
            u
            for u in tqdm(
                p.imap(_espeak_one, jobs, chunksize=8), total=len(jobs), desc=f"{split}: espeak-ng"
            )
            if u is not None
        ]
        music = [
            m
            for m in tqdm(
                p.imap(_decode_long, pool_.music_files),
                total=len(pool_.music_files),
                desc=f"{split}: decode music",
            )
            if len(m) > SR
        ]
        sfx = [m for m in p.imap(_decode_long, pool_.sfx_files) if len(m) > 100]
    CACHE.mkdir(parents=True, exist_ok=True)

    def as_tuples(us):
        arr = np.empty(len(us), dtype=object)
        for k, u in enumerate(us):
            arr[k] = (u.x, u.lab)
        return arr

    np.savez(
        cache,
        real=as_tuples(real),
        groups=np.array(groups),
        tts=as_tuples(tts),
        music=_objects(music),
        sfx=_objects(sfx),
    )
    return real, groups, tts, music, sfx


def _objects(items):
    arr = np.empty(len(items), dtype=object)
    for k, v in enumerate(items):
        arr[k] = v
    return arr


def _decode_long(path):
    return decode(path, max_seconds=180)


# --------------------------------------------------------------------------- clip synthesis
_G: dict = {}


@dataclass(frozen=True)
class Mixing:
    """Optional changes to how training clips are mixed; all off builds the dev and sample
    sets as they have always been (none of them moves another draw of a clip)."""

    babble_min_snr: float | None = None  # callee under babble at least this many dB above it
    far_babble: float = 0.0  # share of babble clips whose talkers are in a reverberant room
    near_room: float = 0.0  # share of the callee's speech clips faintly in a room
    water: float = 0.0  # share of street/office clips with bubbling or pouring water
    room_model: str = "tail"  # far babble's rooms: "tail" (augment.room) or "shoebox"
    speed_perturb: float = 0.0  # share of utterances played 0.88-1.12 times as fast


AS_BUILT = Mixing()


def _init_worker(real, real_table, tts, music, sfx, tone_set, mixing: Mixing = AS_BUILT):
    _G.update(
        real=real,
        real_table=real_table,
        tts=tts,
        music=music,
        sfx=sfx,
        tone_set=tone_set,
        mixing=mixing,
    )


def _utt(rng, used: list | None = None) -> Utt:
    real = rng.uniform() < 0.5 or not _G["tts"] or _G.get("real_only", False)
    if real:
        u = _G["real"][_G["real_table"][rng.integers(len(_G["real_table"]))]]
    else:
        u = _G["tts"][rng.integers(len(_G["tts"]))]
    if used is not None:
        used.append("recorded" if real else "espeak")
    u = Utt(u.x, u.lab) if isinstance(u, Utt) else Utt(*u)
    speed_rng = _G.get("speed_rng")
    if speed_rng is not None and speed_rng.uniform() < _G["mixing"].speed_perturb:
        u = _speed(u, int(speed_rng.integers(22, 29)))
    return u


def _speed(u: Utt, down: int) -> Utt:
    """The utterance ``down`` / 25 times as fast (0.88-1.12): pitch, formants and tempo move
    together, as they differ between speakers (the speed perturbation of ASR training, Ko et
    al. 2015); 44 speaker groups become many more. Labels are made again from the result."""
    from scipy.signal import resample_poly  # requirements-dev: data builds only

    return _make_utt(resample_poly(u.x, 25, down).astype(np.float32)) or u


ROOMS = {"tail": A.room, "shoebox": A.shoebox_room}


def _babble(n, rng, info: dict | None = None) -> np.ndarray:
    """3-8 talkers, each a stream of utterances at its own level, in the callee's room (a
    ``far_babble`` share of clips: reverberant, as people a few metres from the phone are) or
    mixed dry; ``info`` gets how many, whether dulled or far, and each frame's lead of its
    loudest talker (``_lead_db``; the evaluation reports by each)."""
    room_rng = rng.spawn(1)[0]  # a stream of its own: every other draw stays as it was
    far = room_rng.uniform() < _G["mixing"].far_babble
    k = int(rng.integers(3, 9))
    out = np.zeros(n, np.float32)
    powers = []
    for _ in range(k):
        stream = np.zeros(n, np.float32)
        pos = int(rng.integers(-SR, SR // 2))
        while pos < n:
            u = _utt(rng)
            s0 = max(pos, 0)
            seg = u.x[s0 - pos :][: n - s0]
            stream[s0 : s0 + len(seg)] += seg
            pos += len(u.x) + int(rng.integers(0, SR // 4))
        g = 10 ** (rng.uniform(-6, 6) / 20)
        if far:
            stream = ROOMS[_G["mixing"].room_model](stream, room_rng)
        talker = stream * g
        powers.append(np.mean(talker[: n // FRAME * FRAME].reshape(-1, FRAME) ** 2, axis=1))
        out += talker
    dull = rng.uniform() < 0.5
    if dull:  # distant talkers: duller
        out = A.bandpass(out, 100, rng.uniform(1500, 3500), 300)
    if info is not None:
        info.update(
            babble_talkers=k,
            babble_dulled=bool(dull),
            babble_far=bool(far),
            babble_lead=_lead_db(np.stack(powers)),
        )
    return A._unit(out)


def _lead_db(powers: np.ndarray) -> np.ndarray:
    """Per 20 ms frame, how far the loudest talker stands over the others together (dB), from
    the talkers' frame powers (talkers x frames); 40 where one talks alone, NaN where all are
    silent (40 dB under the loudest frame). At >= 0 dB a voice is as loud against the rest as a
    callee at >= 0 dB SNR against babble, which the mixes label speech."""
    loudest = powers.max(axis=0)
    rest = powers.sum(axis=0) - loudest
    lead = np.minimum(10 * np.log10(np.maximum(loudest, 1e-20) / np.maximum(rest, 1e-20)), 40.0)
    lead[loudest < 1e-4 * loudest.max(initial=0.0)] = np.nan
    return lead.astype(np.float16)


def _music(n, rng) -> np.ndarray:
    if _G["music"] and rng.uniform() < 0.8:
        m = _G["music"][rng.integers(len(_G["music"]))]
        if len(m) <= n:
            m = np.tile(m, n // len(m) + 1)
        s = int(rng.integers(0, len(m) - n + 1))
        return A._unit(m[s : s + n])
    return A.synth_music(n, rng)


def _stationary(n, rng) -> np.ndarray:
    r = rng.uniform()
    if r < 0.6:
        return A.colored_noise(n, rng, float(rng.choice([0.0, 1.0, 2.0, rng.uniform(0, 2)])))
    return A.hum(n, rng)


def _street_office(n, rng) -> np.ndarray:
    x = A.street(n, rng) if rng.uniform() < 0.5 else A.office(n, rng)
    if _G["sfx"] and rng.uniform() < 0.5:
        for _ in range(int(rng.integers(1, 4))):
            s = _G["sfx"][rng.integers(len(_G["sfx"]))][:n]
            p = int(rng.integers(0, n - len(s) + 1))
            x[p : p + len(s)] += A._unit(s) * rng.uniform(0.5, 2)
    water_rng = rng.spawn(1)[0]  # a stream of its own: every other draw stays as it was
    if water_rng.uniform() < _G["mixing"].water:  # a kettle, a tap, an aquarium nearby
        x = x + A.water(n, water_rng) * water_rng.uniform(0.5, 2)
    return x


NOISE_FNS = {  # and "babble": _babble, which also notes its talkers in the clip's meta
    "music": _music,
    "tones": lambda n, rng: A.tones(n, rng, _G["tone_set"]),
    "stationary": _stationary,
    "street_office": _street_office,
}
NOISE_P = {"babble": 0.3, "music": 0.2, "tones": 0.2, "stationary": 0.15, "street_office": 0.15}


def _noise(n, rng, kind=None, meta: dict | None = None):
    if kind is None:
        kind = rng.choice(list(NOISE_P), p=list(NOISE_P.values()))
    x = _babble(n, rng, meta) if kind == "babble" else NOISE_FNS[kind](n, rng)
    if kind != "stationary" and rng.uniform() < 0.3:  # plus a floor of line noise
        x = x + 10 ** (rng.uniform(-40, -15) / 20) * A.colored_noise(n, rng, rng.uniform(0, 2))
    return x.astype(np.float32), str(kind)


def _place_speech(n, rng, burst: bool, used: list | None = None):
    """Foreground speech track and its 10 ms labels; ``used`` collects the utterances' kinds."""
    sp = np.zeros(n, np.float32)
    lab = np.zeros(n // SUB, np.uint8)
    count = int(rng.integers(1, 5)) if burst else int(rng.integers(1, 4))
    for _ in range(count):
        u = _utt(rng, used)
        if burst:  # a 60-300 ms chunk from inside the speech region
            idx = np.flatnonzero(u.lab)
            ln = int(rng.integers(6, 31))
            c = int(idx[rng.integers(len(idx))])
            s = max(0, min(c - ln // 2, len(u.lab) - ln))
            seg_x = u.x[s * SUB : (s + ln) * SUB].copy()
            seg_l = u.lab[s : s + ln].copy()
            fade = np.minimum(
                1, np.minimum(np.arange(len(seg_x)), np.arange(len(seg_x))[::-1]) / 40
            )
            seg_x *= fade
        else:
            seg_x, seg_l = u.x, u.lab
            if len(seg_l) > len(lab):
                s = int(rng.integers(0, len(seg_l) - len(lab) + 1))
                seg_x, seg_l = seg_x[s * SUB : (s + len(lab)) * SUB], seg_l[s : s + len(lab)]
        p = _free_place(lab, seg_l, int(rng.integers(0, len(lab) - len(seg_l) + 1)))
        g = 10 ** (rng.uniform(-6, 3) / 20)
        if p is None:  # no room left between the callee's other utterances
            continue
        sp[p * SUB : p * SUB + len(seg_x)] += seg_x * g
        lab[p : p + len(seg_l)] |= seg_l
    return sp, lab


TURN_GAP = 15  # 10 ms frames of pause the callee leaves between two utterances


def _free_place(lab: np.ndarray, seg_l: np.ndarray, p: int) -> int | None:
    """The start nearest ``p`` where ``seg_l``'s speech overlaps none of the clip's speech so
    far, TURN_GAP frames apart; None when there is none. One callee speaks one utterance at a
    time: placed anywhere, two or three of them overlapped in 43 % of the speech frames, a
    babble of the callee labelled speech while the babble-only clips are labelled noise."""
    if not lab.any():
        return p
    busy = np.convolve(lab.astype(np.int32), np.ones(2 * TURN_GAP + 1, np.int32), "same") > 0
    own = np.flatnonzero(seg_l)
    starts = np.arange(len(lab) - len(seg_l) + 1)
    ok = ~busy[starts[:, None] + own[None, :]].any(axis=1)
    if not ok.any():
        return None
    free = starts[ok]
    return int(free[np.argmin(np.abs(free - p))])


def _frame_snr_db(speech: np.ndarray, noise: np.ndarray, lab20: np.ndarray) -> np.ndarray:
    """Per 20 ms frame labelled speech, the callee's power over the noise's (dB, within
    +-40), NaN elsewhere. The labels keep every frame of an utterance within 30 dB of its
    peaks, so at a low clip SNR its quiet frames lie under the noise: those frames hold
    the noise alone to the ear, and a babble there is labelled speech."""
    n = len(lab20) * FRAME
    ps = np.mean(speech[:n].reshape(-1, FRAME) ** 2, axis=1)
    pn = np.mean(noise[:n].reshape(-1, FRAME) ** 2, axis=1)
    snr = np.clip(10 * np.log10(np.maximum(ps, 1e-20) / np.maximum(pn, 1e-20)), -40.0, 40.0)
    snr[~lab20.astype(bool)] = np.nan
    return snr.astype(np.float16)


def make_clip(args):
    """One clip: (int16 audio, uint8 20 ms labels, meta). Deterministic in (seed, i)."""
    seed, i, n, kind, noise_kind, snr_range, real_only = args
    _G["real_only"] = real_only
    rng = np.random.default_rng([seed, i])
    # a stream of its own, not spawned from rng: the rooms' spawned streams stay as they were
    _G["speed_rng"] = np.random.default_rng([seed, i, 1]) if _G["mixing"].speed_perturb else None
    lab10 = np.zeros(n // SUB, np.uint8)
    meta = {"kind": kind}
    if kind in ("speech", "burst", "segment_speech"):
        meta["speech"] = []
        sp, lab10 = _place_speech(n, rng, burst=(kind == "burst"), used=meta["speech"])
        room_rng = rng.spawn(1)[0]  # a stream of its own: every other draw stays as it was
        if room_rng.uniform() < _G["mixing"].near_room:  # the callee's own room, faintly
            sp = A.room(sp, room_rng, rt60=(0.2, 0.6), drr_db=(6.0, 15.0))
            meta["near_room"] = True
        if rng.uniform() < 0.08 and kind == "speech":
            x, meta["noise"], meta["snr"] = (
                sp + 10 ** (-70 / 20) * rng.standard_normal(n),
                "none",
                99.0,
            )
        else:
            nz, meta["noise"] = _noise(n, rng, noise_kind, meta)
            snr = float(rng.uniform(*snr_range))
            floor = _G["mixing"].babble_min_snr
            if meta["noise"] == "babble" and floor is not None and floor > snr_range[0]:
                # the same draw mapped onto [floor, high]: the other clips stay as they were
                lo, hi = snr_range
                snr = floor + (snr - lo) * (hi - floor) / (hi - lo)
            sp_rms = A.rms(sp.reshape(-1, SUB)[lab10.astype(bool)]) if lab10.any() else 1.0
            nz = nz * sp_rms / A.rms(nz) * 10 ** (-snr / 20)
            x = sp + nz
            meta["snr"] = round(snr, 2)
        meta["speech_snr"] = _frame_snr_db(sp, x - sp, lab10.reshape(-1, 2).max(axis=1))
    elif kind == "quiet":
        x = 10 ** (rng.uniform(-90, -45) / 20) * A.colored_noise(n, rng, rng.uniform(0, 2))
        meta["noise"] = "quiet"
    else:
        x, meta["noise"] = _noise(n, rng, noise_kind, meta)
    level = rng.uniform(-45, -8) if rng.uniform() < 0.2 else rng.uniform(-30, -10)
    x = x / (A.rms(x) + 1e-9) * 10 ** (level / 20)
    if np.max(np.abs(x)) > 0.99:
        x = x / np.max(np.abs(x)) * 0.99
    x, meta["fx"] = A.channel(x, rng)
    pcm = np.clip(np.round(x * 32767), -32768, 32767).astype(np.int16)
    lab20 = lab10.reshape(-1, 2).max(axis=1)
    return pcm, lab20, meta


# Per-frame figures a clip's meta carries out of make_clip, each saved as <name>.npy.
PER_FRAME = ("babble_lead", "speech_snr")

TRAIN_MIX = {"speech": 0.40, "burst": 0.12, "noise": 0.43, "quiet": 0.05}


def plan(split: str, clips: int, seed: int):
    """List of (seed, i, n_samples, kind, noise_kind, snr_range, subset[, recorded_speech_only])."""
    rng = np.random.default_rng(seed)
    jobs = []
    four = 4 * SR
    if split == "train" or split == "tiny":
        for i in range(clips):
            kind = rng.choice(list(TRAIN_MIX), p=list(TRAIN_MIX.values()))
            snr = (-5.0, 20.0) if kind == "speech" else (0.0, 20.0)
            jobs.append((seed, i, four, str(kind), None, snr, "mix"))
        return jobs
    if split == "sample":  # tiny bundled eval sample (committed as FLAC under vad_model/sample)
        two = 2 * SR
        jobs = [
            (seed, 0, four, "speech", "stationary", (15.0, 20.0), "mix", True),
            (seed, 1, four, "speech", "babble", (5.0, 10.0), "mix"),
        ]
        for k, nk in enumerate(NOISE_P):
            jobs.append((seed, 2 + k, two, "noise", nk, None, f"noise_{nk}"))
        jobs.append((seed, 10, four, "burst", "stationary", (10.0, 20.0), "bursts"))
        for k in range(4):
            jobs.append(
                (
                    seed,
                    20 + k,
                    int(rng.integers(60, 90)) * FRAME,
                    "segment_speech" if k % 2 == 0 else "noise",
                    None,
                    (10.0, 20.0),
                    "segments",
                )
            )
        return jobs
    # dev: separate subsets for each metric
    i = 0
    scale = max(clips, 1) / 1000.0
    for _ in range(int(500 * scale)):  # the dev distribution: AUC / F1
        kind = rng.choice(list(TRAIN_MIX), p=list(TRAIN_MIX.values()))
        jobs.append(
            (
                seed,
                i,
                four,
                str(kind),
                None,
                (-5.0, 20.0) if kind == "speech" else (0.0, 20.0),
                "mix",
            )
        )
        i += 1
    for nk in NOISE_P:  # noise-only, per type: false alarms
        for _ in range(int(60 * scale)):
            jobs.append((seed, i, four, "noise", nk, None, f"noise_{nk}"))
            i += 1
    for _ in range(int(200 * scale)):  # short bursts: recall
        jobs.append((seed, i, four, "burst", None, (0.0, 20.0), "bursts"))
        i += 1
    for k in range(int(400 * scale)):  # 1-3 s segments: clip accuracy
        n = int(rng.integers(50, 151)) * FRAME
        kind = "segment_speech" if k % 2 == 0 else "noise"
        jobs.append((seed, i, n, kind, None, (0.0, 20.0), "segments"))
        i += 1
    return jobs


def build(
    split: str,
    clips: int,
    seed: int,
    n_espeak: int,
    workers: int,
    out: Path,
    mixing: Mixing = AS_BUILT,
) -> Path:
    corpus = "dev" if split == "sample" else split
    pool_ = sources.pool(corpus)
    real, groups, tts, music, sfx = load_corpora(corpus, pool_, seed, n_espeak, workers)
    real_table = sampling_table(groups, pool_.speech_families, seed)
    if (
        split == "sample"
    ):  # committed: GPL-2 prompts, fillets-ng-data (GPL-2+) music, espeak-ng, synthetic
        music = music[: len(sources._expand(sources.DEV_MUSIC_GLOBS[:1]))]
    real = [(u.x, u.lab) for u in real]
    tts = [(u.x, u.lab) for u in tts]
    tone_set = "train" if split == "train" else "dev"
    jobs = plan(split, clips, seed)
    audio, labels, index = [], [], []
    per_frame: dict[str, list[np.ndarray]] = {name: [] for name in PER_FRAME}
    off_a = off_l = 0
    with Pool(
        workers,
        initializer=_init_worker,
        initargs=(
            real,
            real_table,
            tts,
            music,
            sfx,
            tone_set,
            mixing,
        ),
    ) as p:
        for job, (pcm, lab, meta) in zip(
            jobs,
            tqdm(
                p.imap(make_clip, [(*j[:6], len(j) > 7 and j[7]) for j in jobs], chunksize=16),
                total=len(jobs),
                desc=f"{split}: clips",
            ),
            strict=True,
        ):
            for name, arrays in per_frame.items():
                v = meta.pop(name, None)
                arrays.append(v if v is not None else np.full(len(lab), np.nan, np.float16))
            meta.update(subset=job[6], offset=off_a, frames=len(lab))
            index.append(meta)
            audio.append(pcm)
            labels.append(lab)
            off_a += len(pcm)
            off_l += len(lab)
    out.mkdir(parents=True, exist_ok=True)
    if split == "sample":
        import soundfile as sf

        sf.write(str(out / "audio.flac"), np.concatenate(audio), SR, subtype="PCM_16")
    else:
        np.save(out / "audio.npy", np.concatenate(audio))
    np.save(out / "labels.npy", np.concatenate(labels))
    for name, arrays in per_frame.items():
        np.save(out / f"{name}.npy", np.concatenate(arrays))
    (out / "index.json").write_text(json.dumps({"split": split, "seed": seed, "clips": index}))
    hours = off_a / SR / 3600
    print(
        f"wrote {len(index)} clips, {hours:.2f} h, speech frames {np.concatenate(labels).mean():.1%} -> {out}"
    )
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--split", choices=["train", "dev", "sample"], required=True)
    ap.add_argument(
        "--clips", type=int, default=None, help="train: clip count; dev: scale (1000 = full)"
    )
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--espeak", type=int, default=None, help="espeak-ng utterances to synthesise")
    ap.add_argument(
        "--babble-min-snr",
        type=float,
        default=None,
        help="train: foreground speech under babble at least this many dB above it (a callee "
        "drowned by the voices around them contradicts 'background voices are noise')",
    )
    ap.add_argument(
        "--far-babble",
        type=float,
        default=0.0,
        help="share of babble clips whose talkers are in a reverberant room a few metres from "
        "the phone rather than mixed dry (README: 'Near and far talkers')",
    )
    ap.add_argument(
        "--near-room",
        type=float,
        default=0.0,
        help="share of the callee's speech clips put faintly in a room of its own (direct sound "
        "6-15 dB above the reverberation)",
    )
    ap.add_argument(
        "--water",
        type=float,
        default=0.0,
        help="share of street/office noise clips with bubbling or pouring water in them",
    )
    ap.add_argument(
        "--room-model",
        choices=sorted(ROOMS),
        default="tail",
        help="far babble's rooms: a diffuse exponential tail, or an image-source shoebox room "
        "(pyroomacoustics) with discrete early reflections",
    )
    ap.add_argument(
        "--speed-perturb",
        type=float,
        default=0.0,
        help="share of utterances (callees' and babble talkers') played 0.88-1.12 times as "
        "fast: other voices from the same speakers",
    )
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args(argv)
    for tool in ("sox", "espeak-ng"):
        if shutil.which(tool) is None:
            sys.exit(
                f"{tool} not found: apt-get install -y {' '.join(sources.APT_TRAIN + sources.APT_DEV)}"
            )
    seed = a.seed if a.seed is not None else (1234 if a.split == "train" else 4321)
    if a.split == "sample" and a.out is None:
        a.out = Path(__file__).resolve().parents[1] / "sample"
    clips = a.clips if a.clips is not None else (7000 if a.split == "train" else 1000)
    n_espeak = a.espeak if a.espeak is not None else (1500 if a.split == "train" else 300)
    out = a.out or CACHE / a.split
    mixing = Mixing(
        a.babble_min_snr, a.far_babble, a.near_room, a.water, a.room_model, a.speed_perturb
    )
    build(a.split, clips, seed, n_espeak, a.workers, out, mixing)


if __name__ == "__main__":
    main()
