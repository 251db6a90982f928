"""Noise generators and telephone-channel effects, pure numpy (sox only for GSM).

All signals are float32 mono at 8 kHz in [-1, 1]. Every function takes an explicit
``numpy.random.Generator`` so the dataset is reproducible from one seed.
"""

from __future__ import annotations

import shutil
import subprocess

import numpy as np

SR = 8000


# --------------------------------------------------------------------------- noise
def colored_noise(n: int, rng: np.random.Generator, exponent: float) -> np.ndarray:
    """Noise with power spectrum ~ 1/f**exponent (0 white, 1 pink, 2 brown)."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1.0 / SR)
    f[0] = f[1]
    spec *= f ** (-exponent / 2.0)
    x = np.fft.irfft(spec, n)
    return _unit(x)


def hum(n: int, rng: np.random.Generator) -> np.ndarray:
    """Mains hum: 50 or 60 Hz with random harmonics (buzz), plus a little hiss."""
    f0 = rng.choice([50.0, 60.0]) * rng.uniform(0.99, 1.01)
    t = np.arange(n) / SR
    x = np.zeros(n)
    for h in range(1, int(rng.integers(3, 30))):
        if f0 * h > 3900:
            break
        x += (
            rng.uniform(0, 1)
            / h ** rng.uniform(0.3, 1.5)
            * np.sin(2 * np.pi * f0 * h * t + rng.uniform(0, 6.3))
        )
    return _unit(x + 0.02 * rng.standard_normal(n))


def _sines(freqs, n, phase0=0.0):
    t = np.arange(n) / SR
    return sum(np.sin(2 * np.pi * f * t + phase0) for f in freqs) / max(len(freqs), 1)


def cadence(
    n: int, rng: np.random.Generator, pattern: list[tuple[tuple[float, ...], int]]
) -> np.ndarray:
    """Repeat a cadence ``[(freqs, ms), ...]`` (empty freqs = silence) from a random phase."""
    seg = []
    for freqs, ms in pattern:
        m = int(ms * SR / 1000)
        seg.append(_sines(freqs, m) if freqs else np.zeros(m))
    one = np.concatenate(seg)
    reps = n // len(one) + 2
    full = np.tile(one, reps)
    start = int(rng.integers(0, len(one)))
    return full[start : start + n]


DTMF_ROWS = [697, 770, 852, 941]
DTMF_COLS = [1209, 1336, 1477, 1633]


def dtmf(n: int, rng: np.random.Generator) -> np.ndarray:
    out = np.zeros(n)
    pos = int(rng.integers(0, 1600))
    while pos < n:
        on = int(rng.integers(40, 200) * 8)
        off = int(rng.integers(40, 400) * 8)
        f = (DTMF_ROWS[rng.integers(4)], DTMF_COLS[rng.integers(4)])
        m = min(on, n - pos)
        out[pos : pos + m] = _sines(f, m)
        pos += on + off
    return out


def fsk(n: int, rng: np.random.Generator) -> np.ndarray:
    """V.21-like FSK (fax/modem handshake): 300 baud random bits."""
    f0, f1 = ((980, 1180), (1650, 1850))[rng.integers(2)]
    baud = 300
    spb = SR // baud
    bits = rng.integers(0, 2, n // spb + 2)
    freq = np.where(np.repeat(bits, spb)[:n] > 0, f1, f0)
    return np.sin(2 * np.pi * np.cumsum(freq) / SR)


def ced(n: int, rng: np.random.Generator) -> np.ndarray:
    """2100 Hz answer tone with phase reversals every 450 ms."""
    t = np.arange(n) / SR
    rev = np.pi * ((np.arange(n) // int(0.45 * SR)) % 2)
    return np.sin(2 * np.pi * 2100 * t + rev)


SIT_SETS = [(913.8, 1370.6, 1776.7), (985.2, 1428.5, 1776.7), (913.8, 1428.5, 1776.7)]

# Training tones: China's plan (450 Hz) plus fax/SIT/DTMF.
TRAIN_TONES = {
    "cn_ringback": [((450,), 1000), ((), 4000)],
    "cn_busy": [((450,), 350), ((), 350)],
    "cn_congestion": [((450,), 700), ((), 700)],
    "cn_dial": [((450,), 1000)],
    "cn_callwaiting": [((450,), 400), ((), 4000)],
    "fax_cng": [((1100,), 500), ((), 3000)],
}
# Dev tones: other countries' plans, never trained on.
DEV_TONES = {
    "us_ringback": [((440, 480), 2000), ((), 4000)],
    "uk_ringback": [((400, 450), 400), ((), 200), ((400, 450), 400), ((), 2000)],
    "eu_busy": [((425,), 500), ((), 500)],
    "us_busy": [((480, 620), 500), ((), 500)],
    "us_reorder": [((480, 620), 250), ((), 250)],
    "us_dial": [((350, 440), 1000)],
    "fax_cng": [((1100,), 500), ((), 3000)],
}


def tones(n: int, rng: np.random.Generator, tone_set: str = "train") -> np.ndarray:
    """A random telephone tone signal from the train or dev tone plan."""
    table = TRAIN_TONES if tone_set == "train" else DEV_TONES
    r = rng.uniform()
    if r < 0.15:
        x = dtmf(n, rng)
    elif r < 0.25:
        freqs = SIT_SETS[rng.integers(len(SIT_SETS))]
        ms = 274 if rng.uniform() < 0.5 else 380
        x = cadence(n, rng, [((freqs[0],), ms), ((freqs[1],), ms), ((freqs[2],), ms), ((), 2000)])
    elif r < 0.32:
        x = fsk(n, rng)
    elif r < 0.38:
        x = ced(n, rng)
    else:
        name = list(table)[rng.integers(len(table))]
        x = cadence(n, rng, table[name])
    if rng.uniform() < 0.5:  # tones usually sit on a line-noise floor
        x = x + 10 ** (rng.uniform(-50, -25) / 20) * colored_noise(n, rng, rng.uniform(0, 2))
    return x.astype(np.float32)


def synth_music(n: int, rng: np.random.Generator) -> np.ndarray:
    """Crude synthetic music: chords and a melody of harmonic notes with envelopes + drums."""
    out = np.zeros(n)
    bpm = rng.uniform(60, 160)
    beat = int(SR * 60 / bpm)
    root = rng.uniform(100, 300)
    scale = np.array([0, 2, 4, 5, 7, 9, 11, 12])
    pos = 0
    while pos < n:
        dur = beat * int(rng.choice([1, 1, 2, 4]))
        m = min(dur, n - pos)
        t = np.arange(m) / SR
        env = np.exp(-t * rng.uniform(1, 8))
        chord = root * 2 ** (scale[rng.integers(0, 8, 3)] / 12)
        mel = root * 2 ** (rng.integers(12, 24) / 12)
        note = np.zeros(m)
        for f in list(chord) + [mel]:
            for h in range(1, 6):
                if f * h < 3800:
                    note += np.sin(2 * np.pi * f * h * t) / h ** rng.uniform(1, 2)
        out[pos : pos + m] += note * env
        if rng.uniform() < 0.5:  # drum hit
            k = min(int(0.08 * SR), m)
            out[pos : pos + k] += rng.standard_normal(k) * np.exp(-np.arange(k) / (0.015 * SR)) * 2
        pos += dur
    return _unit(out)


def _transients(n: int, rng: np.random.Generator, rate_hz: float, decay_ms=(3, 60)) -> np.ndarray:
    out = np.zeros(n)
    count = rng.poisson(rate_hz * n / SR)
    for _ in range(count):
        k = int(rng.uniform(*decay_ms) * 8 * 4)
        p = int(rng.integers(0, n))
        k = min(k, n - p)
        burst = rng.standard_normal(k) * np.exp(-np.arange(k) / (k / 4 + 1))
        if rng.uniform() < 0.5:  # resonant knock
            burst *= np.sin(2 * np.pi * rng.uniform(200, 2500) * np.arange(k) / SR)
        out[p : p + k] += burst * rng.uniform(0.2, 1.0)
    return out


def street(n: int, rng: np.random.Generator) -> np.ndarray:
    """Traffic rumble with pass-bys, horns and knocks (synthetic)."""
    rumble = colored_noise(n, rng, rng.uniform(1.5, 2.5))
    t = np.arange(n) / SR
    am = 1 + 0.8 * np.sin(2 * np.pi * rng.uniform(0.05, 0.5) * t + rng.uniform(0, 6)) ** 2
    x = rumble * am + 0.3 * colored_noise(n, rng, 1.0)
    if rng.uniform() < 0.4:  # horn
        m = int(rng.uniform(0.2, 1.0) * SR)
        p = int(rng.integers(0, max(1, n - m)))
        f = rng.uniform(300, 500)
        x[p : p + m] += (
            0.8
            * _unit(sum(np.sin(2 * np.pi * f * h * np.arange(m) / SR) / h for h in range(1, 8)))[
                : n - p
            ]
        )
    x += _transients(n, rng, rng.uniform(0.2, 2.0))
    return _unit(x)


def office(n: int, rng: np.random.Generator) -> np.ndarray:
    """HVAC noise, typing-like clicks, occasional beeps (synthetic)."""
    x = 0.5 * colored_noise(n, rng, rng.uniform(0.5, 1.5))
    x += _transients(n, rng, rng.uniform(2, 10), decay_ms=(1, 8)) * rng.uniform(0.5, 3)
    if rng.uniform() < 0.3:
        x += 0.3 * cadence(
            n,
            rng,
            [
                ((rng.uniform(800, 3000),), int(rng.integers(50, 300))),
                ((), int(rng.integers(500, 3000))),
            ],
        )
    if rng.uniform() < 0.3:
        x += 0.3 * hum(n, rng)
    return _unit(x)


def water(n: int, rng: np.random.Generator) -> np.ndarray:
    """Bubbling, gurgling or pouring water (synthetic): bursts of bubbles over a faint hiss.

    Each bubble rings at its Minnaert frequency (3.26 m/s over its radius, 1.5-12 mm: 270 Hz
    to 2.2 kHz), damped as a bubble in water is and gliding up as it rises (van den Doel,
    "Physically based models for liquid sounds", 2005). A pitched, syllable-rate sound that
    a VAD trained on hiss and knocks alone takes for a voice.
    """
    out = 0.05 * colored_noise(n, rng, rng.uniform(0.5, 1.5))
    step = max(1, int(SR / rng.uniform(3, 80)))  # samples per bubble: a slow gurgle to a pour
    edges = np.r_[0, np.cumsum(rng.exponential(rng.uniform(0.2, 1.5), 63) * SR).astype(int)]
    gate = np.zeros(n, bool)  # bubbling comes in bursts, the first from the start
    for a, b in zip(edges[::2], edges[1::2], strict=True):
        gate[a:b] = True
    r_lo, r_hi = sorted(rng.uniform(np.log(1.5e-3), np.log(12e-3), 2))
    for p in np.flatnonzero(gate)[::step]:
        p = int(p + rng.integers(0, step))
        r = np.exp(rng.uniform(r_lo, r_hi))
        f0 = 3.26 / r
        d = 0.043 * f0 + 0.0014 * f0**1.5  # 1/s
        k = min(int(6.9 / d * SR), n - p)
        if k <= 0:
            continue
        t = np.arange(k) / SR
        f = f0 * (1 + rng.uniform(0.1, 0.6) * d * t)  # the glide up
        out[p : p + k] += (
            np.sqrt(r / 12e-3)
            * np.exp(-d * t)
            * np.sin(2 * np.pi * np.cumsum(f) / SR + rng.uniform(0, 6))
        )
    return _unit(out)


def room(
    x: np.ndarray, rng: np.random.Generator, rt60=(0.3, 0.9), drr_db=(-8.0, 2.0)
) -> np.ndarray:
    """A talker a few metres away in a room: the direct sound plus an exponentially decaying
    diffuse tail (synthetic impulse response) at a direct-to-reverberant ratio in ``drr_db``."""
    t60 = rng.uniform(*rt60)
    n = int(t60 * SR)
    t = np.arange(n) / SR
    tail = rng.standard_normal(n) * 10 ** (-3 * t / t60)
    tail[: int(0.002 * SR)] = 0.0  # the first reflections arrive after the direct sound
    tail *= 10 ** (-rng.uniform(*drr_db) / 20) / np.sqrt(np.sum(tail**2))
    tail[0] = 1.0
    return _convolve(x, tail)


def shoebox_room(
    x: np.ndarray, rng: np.random.Generator, rt60=(0.3, 0.9), distance_m=(1.0, 4.0)
) -> np.ndarray:
    """A talker ``distance_m`` from the phone in a furnished-size shoebox room: an image-source
    impulse response (pyroomacoustics; walls absorbing for ``rt60`` by Sabine, air absorption),
    discrete early reflections and a tail whose highs die first, unlike ``room``'s diffuse one.
    Direct sound scaled to 1 and put at sample 0, as in ``room``."""
    import pyroomacoustics as pra  # data builds only; not a serving dependency

    while True:  # a room, a phone and a talker at that distance, inside the walls
        dims = rng.uniform([3.0, 3.0, 2.5], [8.0, 6.0, 3.2])
        t60 = rng.uniform(*rt60)
        phone = rng.uniform([0.5, 0.5, 0.7], dims - [0.5, 0.5, 0.7])
        way = rng.standard_normal(3) * [1.0, 1.0, 0.2]
        talker = phone + rng.uniform(*distance_m) * way / np.linalg.norm(way)
        if np.all(talker > 0.3) and np.all(talker < dims - 0.3):
            break
    absorption, max_order = pra.inverse_sabine(t60, dims)
    box = pra.ShoeBox(
        dims,
        fs=SR,
        materials=pra.Material(absorption),
        max_order=min(max_order, 40),  # later images are below the 8 kHz noise floor anyway
        air_absorption=True,
    )
    box.add_source(talker)
    box.add_microphone(phone)
    box.compute_rir()
    h = np.asarray(box.rir[0][0], np.float64)
    direct = int(np.argmax(np.abs(h)))
    return _convolve(x, h[direct:] / h[direct])


def _convolve(x: np.ndarray, h: np.ndarray) -> np.ndarray:
    """``x`` through the impulse response ``h`` (FFT), cut to the length of ``x``."""
    m = len(x) + len(h) - 1
    f = 1 << (m - 1).bit_length()
    return np.fft.irfft(np.fft.rfft(x, f) * np.fft.rfft(h, f), f)[: len(x)].astype(np.float32)


def _unit(x: np.ndarray) -> np.ndarray:
    """Scale to unit RMS (silence stays silence)."""
    x = np.asarray(x, dtype=np.float64)
    r = np.sqrt(np.mean(x**2))
    return (x / r if r > 1e-9 else x).astype(np.float32)


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.asarray(x, dtype=np.float64) ** 2)) + 1e-12)


# --------------------------------------------------------------------------- channel
def bandpass(
    x: np.ndarray, lo: float = 300.0, hi: float = 3400.0, width: float = 100.0
) -> np.ndarray:
    """Telephone band-pass: FFT mask with raised-cosine edges."""
    n = len(x)
    spec = np.fft.rfft(x)
    f = np.fft.rfftfreq(n, 1.0 / SR)
    lo_ramp = np.clip((f - (lo - width)) / (2 * width), 0, 1)
    hi_ramp = np.clip(((hi + width) - f) / (2 * width), 0, 1)
    mask = (0.5 - 0.5 * np.cos(np.pi * lo_ramp)) * (0.5 - 0.5 * np.cos(np.pi * hi_ramp))
    return np.fft.irfft(spec * mask, n).astype(np.float32)


def mulaw(x: np.ndarray) -> np.ndarray:
    """G.711 mu-law encode/decode (mu=255, 8-bit)."""
    mu = 255.0
    x = np.clip(x, -1, 1)
    y = np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu)
    q = np.round(y * 127) / 127
    return (np.sign(q) * ((1 + mu) ** np.abs(q) - 1) / mu).astype(np.float32)


def alaw(x: np.ndarray) -> np.ndarray:
    """G.711 A-law encode/decode (A=87.6, 8-bit)."""
    a = 87.6
    x = np.clip(x, -1, 1)
    ax = np.abs(x)
    y = np.where(
        ax < 1 / a,
        a * ax / (1 + np.log(a)),
        (1 + np.log(np.maximum(a * ax, 1e-12))) / (1 + np.log(a)),
    )
    q = np.round(y * 127) / 127
    inv = np.where(
        q < 1 / (1 + np.log(a)), q * (1 + np.log(a)) / a, np.exp(q * (1 + np.log(a)) - 1) / a
    )
    return (np.sign(x) * inv).astype(np.float32)


def gsm(x: np.ndarray) -> np.ndarray:
    """GSM 06.10 full-rate round trip through sox; identity if sox is missing."""
    sox = shutil.which("sox")
    if sox is None:
        return x
    pcm = (np.clip(x, -1, 1) * 32767).astype("<i2").tobytes()
    raw = ["-t", "raw", "-r", "8000", "-e", "signed", "-b", "16", "-c", "1"]
    enc = subprocess.run(
        [sox, "-D", *raw, "-", "-t", "gsm", "-"], input=pcm, capture_output=True, check=True
    ).stdout
    dec = subprocess.run(
        [sox, "-D", "-t", "gsm", "-r", "8000", "-c", "1", "-", *raw, "-"],
        input=enc,
        capture_output=True,
        check=True,
    ).stdout
    y = np.frombuffer(dec, dtype="<i2").astype(np.float32) / 32768
    out = np.zeros_like(x)
    out[: min(len(y), len(x))] = y[: len(x)]
    return out


def packet_loss(x: np.ndarray, rng: np.random.Generator, p: float) -> np.ndarray:
    """Drop 20 ms packets with probability p: silence or repeat of the last packet (PLC)."""
    y = x.copy()
    frame = 160
    conceal = rng.uniform() < 0.5
    for i in range(len(x) // frame):
        if rng.uniform() < p:
            s = slice(i * frame, (i + 1) * frame)
            if conceal and i > 0:
                y[s] = y[(i - 1) * frame : i * frame] * 0.7
            else:
                y[s] = 0
    return y


def clip(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Overdrive then hard-clip."""
    peak = np.max(np.abs(x)) + 1e-9
    level = peak * rng.uniform(0.1, 0.6)
    return np.clip(x, -level, level) / level * min(peak, 0.99)


def channel(
    x: np.ndarray, rng: np.random.Generator, strength: float = 1.0
) -> tuple[np.ndarray, list[str]]:
    """Random telephone channel chain. Returns (signal, names of effects applied)."""
    fx = []
    if rng.uniform() < 0.7 * strength:
        x = bandpass(x, rng.uniform(200, 400), rng.uniform(3000, 3600))
        fx.append("bandpass")
    if rng.uniform() < 0.1 * strength:
        x = clip(x, rng)
        fx.append("clip")
    r = rng.uniform()
    if r < 0.2 * strength:
        x = gsm(x)
        fx.append("gsm")
    elif r < 0.5 * strength:
        x = mulaw(x)
        fx.append("mulaw")
    elif r < 0.7 * strength:
        x = alaw(x)
        fx.append("alaw")
    if rng.uniform() < 0.15 * strength:
        x = packet_loss(x, rng, rng.uniform(0.01, 0.1))
        fx.append("loss")
    return x, fx
