"""Evaluate the shipped VAD against webrtcvad and Silero VAD on the dev set.

    python -m vad_model.data.build_dataset --split dev          # sources disjoint from training
    python -m vad_model.evaluate                                # full table + ROC PNG
    python -m vad_model.evaluate --data vad_model/sample --no-speed   # bundled sample (tests)

Metrics, per system, all on 20 ms frames at 8 kHz:
    auc / f1        frame ROC-AUC and F1 (threshold 0.5) on the "mix" subset (speech in every
                    noise type at -5..20 dB SNR, short bursts, noise-only and quiet clips,
                    random telephone channel)
    fa_<noise>      false-alarm rate (fraction of frames flagged) on noise-only clips per type
    burst_recall    share of speech bursts shorter than 300 ms detected (a flagged frame from
                    the burst's start to 2 frames after its end)
    seg_acc         clip-level accuracy on 1-3 s segments (speech / noise-only); a segment is
                    called speech when >= 200 ms in a row are flagged
    fa_babble_*     babble false alarms split by 3-4 / 5-8 talkers and bright / dulled (a second
                    table; the dev index records each babble's make-up)
    fa_lead_*       babble false alarms by how far the frame's loudest talker stands over the
                    others together (a third table, from the set's babble_lead.npy)
    seg_speech_found / seg_noise_rejected
                    seg_acc split by the segment's truth (a fourth table)
    recall_snr_*    the mixes' speech frames found, by how far the callee stands over the
                    noise in that very frame (a fifth table, from the set's speech_snr.npy):
                    the labels keep an utterance's quiet frames, which low SNRs bury
    rtf / p99_ms    streaming real-time factor and 99th-percentile time per call of the
                    detector's own frame (20 ms ours/webrtc, 32 ms Silero), one thread, in
                    CPU time of the calling thread (other load on the machine excluded)
webrtcvad (modes 0-3) and Silero (the JIT file bundled in the ``silero-vad`` package, 8 kHz,
256-sample chunks) are optional: missing packages are reported and skipped.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from vad_model import metrics as M
from vad_model.serve import DEFAULT_WEIGHTS, FRAME, load_vad

CACHE = Path(__file__).resolve().parent / ".cache"
SAMPLE = Path(__file__).resolve().parent / "sample"
NOISES = ["babble", "music", "tones", "street_office", "stationary"]
TARGETS = {
    "auc": ">=0.97",
    "f1": "",
    "fa_babble": "<=0.10",
    "fa_music": "<=0.02",
    "fa_tones": "<=0.02",
    "fa_street_office": "<=0.02",
    "fa_stationary": "<=0.02",
    "burst_recall": ">=0.85",
    "seg_acc": ">=0.99",
    "rtf": "<=0.005",
    "p99_ms": "",
    "size_kb": "<2048",
}

# Babble false alarms by the babble's make-up (a second table): few talkers leave one voice
# standing out, much like a callee under babble; many blur into a murmur; dulled ones sound
# distant. Needs the talkers in the dev set's index (built since 2026-12-03).
BABBLE_MAKEUP = {
    "fa_babble_3_4_talkers": lambda c: c["babble_talkers"] <= 4,
    "fa_babble_5_8_talkers": lambda c: c["babble_talkers"] >= 5,
    "fa_babble_bright": lambda c: not c["babble_dulled"],
    "fa_babble_dulled": lambda c: c["babble_dulled"],
}
# Babble false alarms by how far, in that 20 ms frame, the loudest background talker stands over
# the others together (a third table). Where it leads by >= 0 dB the frame sounds like a callee at
# >= 0 dB SNR under babble, which the mixes label speech: the labels contradict each other there.
# Needs babble_lead.npy beside the dev set (built since 2026-12-04).
BABBLE_LEAD_DB = {
    "fa_lead_under_0db": (-np.inf, 0.0),
    "fa_lead_0_6db": (0.0, 6.0),
    "fa_lead_6db_up": (6.0, np.inf),
}

# Speech frames of the mixes found, by the callee's power over the noise's in that 20 ms frame
# (a fifth table): under about -6 dB a frame is the noise alone to the ear, and only the
# utterance around it says it is speech. Needs speech_snr.npy beside the set (since 2026-12-07).
SPEECH_SNR_DB = {
    "recall_snr_under_m6db": (-np.inf, -6.0),
    "recall_snr_m6_0db": (-6.0, 0.0),
    "recall_snr_0_6db": (0.0, 6.0),
    "recall_snr_6db_up": (6.0, np.inf),
}

SEG_SPLIT = ["seg_speech_found", "seg_noise_rejected"]


# --------------------------------------------------------------------------- data
def load_eval_set(data_dir: Path) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """(int16 audio, uint8 labels, index) from a built dev set or the bundled FLAC sample."""
    data_dir = Path(data_dir)
    index = json.loads((data_dir / "index.json").read_text())["clips"]
    labels = np.load(data_dir / "labels.npy")
    if (data_dir / "audio.npy").exists():
        audio = np.load(data_dir / "audio.npy", mmap_mode="r")
    else:
        import soundfile as sf

        audio, sr = sf.read(str(data_dir / "audio.flac"), dtype="int16")
        if sr != 8000:
            raise ValueError(f"sample rate {sr}, expected 8000")
    return audio, labels, index


def load_per_frame(data_dir: Path, name: str) -> np.ndarray | None:
    """A per-20 ms-frame array the build wrote beside the labels (``babble_lead``: the loudest
    babble talker's lead, NaN outside babble; ``speech_snr``: the callee over the noise, NaN
    outside speech); None for sets built before it was recorded."""
    path = Path(data_dir) / f"{name}.npy"
    return np.load(path) if path.exists() else None


def babble_lead_shares(lead: np.ndarray, index: list[dict]) -> dict[str, float]:
    """Share of the babble-only frames in each BABBLE_LEAD_DB band (silent frames left out);
    empty without babble-only clips."""
    clips = [clip_frames(lead, c) for c in index if c["subset"] == "noise_babble"]
    frames = np.concatenate(clips or [np.zeros(0, np.float16)])
    if np.isnan(frames).all():
        return {}
    return {
        col.removeprefix("fa_"): float(band.sum() / np.count_nonzero(~np.isnan(frames)))
        for col, band in _bands(frames, BABBLE_LEAD_DB).items()
    }


def _bands(per_frame: np.ndarray, bands: dict[str, tuple[float, float]]) -> dict[str, np.ndarray]:
    """Each band's frames, [low, high) in dB (NaN frames fall in none)."""
    return {col: (per_frame >= lo) & (per_frame < hi) for col, (lo, hi) in bands.items()}


def clip_frames(per_frame: np.ndarray, c: dict) -> np.ndarray:
    """One clip's share of a per-20 ms-frame array (labels, babble lead)."""
    return np.asarray(per_frame[c["offset"] // FRAME : c["offset"] // FRAME + c["frames"]])


def clip_arrays(audio, labels, c):
    a = np.asarray(audio[c["offset"] : c["offset"] + c["frames"] * FRAME], dtype=np.int16)
    return a, clip_frames(labels, c).astype(np.uint8, copy=False)


# --------------------------------------------------------------------------- systems
class Ours:
    def __init__(self, weights: Path, kind: str = "tdnn_lstm"):
        self.vad = load_vad(kind, weights if kind != "energy" else None)
        self.name = "ours (tdnn+lstm)" if kind != "energy" else "energy vad"

    def probs(self, pcm):
        return self.vad.speech_probs(pcm)

    def speed(self, pcm):
        s = self.vad.stream()
        return _time_calls(lambda f: s.push(f), pcm, FRAME)


class WebRtc:
    def __init__(self, mode: int):
        import webrtcvad

        self.vad = webrtcvad.Vad(mode)
        self.name = f"webrtcvad mode {mode}"

    def probs(self, pcm):
        n = len(pcm) // FRAME
        out = np.empty(n, np.float32)
        for j in range(n):
            out[j] = self.vad.is_speech(pcm[j * FRAME : (j + 1) * FRAME].tobytes(), 8000)
        return out

    def speed(self, pcm):
        return _time_calls(lambda f: self.vad.is_speech(f.tobytes(), 8000), pcm, FRAME)


class Silero:
    CHUNK = 256

    def __init__(self):
        import importlib.resources as ir

        path = ir.files("silero_vad") / "data" / "silero_vad.jit"
        self.model = torch.jit.load(str(path), map_location="cpu").eval()
        self.name = "silero vad (8k)"

    def probs(self, pcm):
        """Chunk probabilities mapped causally onto 20 ms frames (latest finished chunk)."""
        self.model.reset_states()
        x = torch.from_numpy(pcm.astype(np.float32) / 32768.0)
        nch = len(pcm) // self.CHUNK
        cp = np.zeros(nch, np.float32)
        with torch.inference_mode():
            for i in range(nch):
                cp[i] = float(self.model(x[i * self.CHUNK : (i + 1) * self.CHUNK][None], 8000))
        n = len(pcm) // FRAME
        ends = (np.arange(n) + 1) * FRAME
        idx = ends // self.CHUNK - 1
        return np.where(idx >= 0, cp[np.clip(idx, 0, max(nch - 1, 0))] if nch else 0.0, 0.0).astype(
            np.float32
        )

    def speed(self, pcm):
        self.model.reset_states()
        x = torch.from_numpy(pcm.astype(np.float32) / 32768.0)

        def call(f):
            with torch.inference_mode():
                return self.model(torch.from_numpy(f.astype(np.float32) / 32768.0)[None], 8000)

        del x
        return _time_calls(call, pcm, self.CHUNK)


def _time_calls(fn, pcm, step):
    """(real-time factor, p99 ms per call), measured in CPU time of this thread.

    CPU time rather than wall time, so other load on a shared machine does not count; the
    wall-clock figures are in ``scripts/bench_vad.py``.
    """
    times = []
    for i in range(0, len(pcm) - step + 1, step):
        f = pcm[i : i + step]
        t = time.thread_time()
        fn(f)
        times.append(time.thread_time() - t)
    times = np.array(times[10:] or times)
    return float(times.sum() / (len(times) * step / 8000)), float(np.percentile(times, 99) * 1000)


# --------------------------------------------------------------------------- evaluation
def evaluate_system(
    sys_,
    audio,
    labels,
    index,
    threshold: float,
    lead: np.ndarray | None = None,
    speech_snr: np.ndarray | None = None,
) -> tuple[dict, tuple]:
    by_subset: dict[str, list] = {}
    babble = []  # (probabilities, meta) of the babble-only clips, for BABBLE_MAKEUP
    mix = []  # the same for the mixes, for SPEECH_SNR_DB
    for c in index:
        a, y = clip_arrays(audio, labels, c)
        p = sys_.probs(a)[: len(y)]
        by_subset.setdefault(c["subset"], []).append((p, y[: len(p)]))
        if c["subset"] == "noise_babble":
            babble.append((p, c))
        elif c["subset"] == "mix":
            mix.append((p, c))
    row: dict = {}
    roc = None
    if "mix" in by_subset:
        p = np.concatenate([q for q, _ in by_subset["mix"]])
        y = np.concatenate([t for _, t in by_subset["mix"]])
        row["auc"] = M.roc_auc(p, y)
        row["f1"] = M.f1(p >= threshold, y)
        roc = M.roc_curve(p, y)
        if speech_snr is not None:
            frame_snr = np.concatenate([clip_frames(speech_snr, c)[: len(q)] for q, c in mix])
            for col, band in _bands(frame_snr, SPEECH_SNR_DB).items():
                if band.any():
                    row[col] = float(np.mean(p[band] >= threshold))
    for nk in NOISES:
        clips = by_subset.get(f"noise_{nk}")
        if clips:
            row[f"fa_{nk}"] = float(np.mean(np.concatenate([q for q, _ in clips]) >= threshold))
    for col, keep in BABBLE_MAKEUP.items():
        flagged = [p >= threshold for p, c in babble if "babble_talkers" in c and keep(c)]
        if flagged:
            row[col] = float(np.mean(np.concatenate(flagged)))
    if lead is not None and babble:
        flagged = np.concatenate([p >= threshold for p, _ in babble])
        frame_lead = np.concatenate([clip_frames(lead, c)[: len(p)] for p, c in babble])
        for col, band in _bands(frame_lead, BABBLE_LEAD_DB).items():
            if band.any():
                row[col] = float(np.mean(flagged[band]))
    if "bursts" in by_subset:
        hit = tot = 0
        for p, y in by_subset["bursts"]:
            h, t = M.burst_hits(p >= threshold, y, max_frames=15)
            hit, tot = hit + h, tot + t
        row["burst_recall"] = hit / tot if tot else float("nan")
        row["n_bursts"] = tot
    if "segments" in by_subset:
        truth = np.array([M.clip_is_speech(y.astype(bool)) for _, y in by_subset["segments"]])
        called = np.array([M.clip_is_speech(p >= threshold) for p, _ in by_subset["segments"]])
        row["seg_acc"] = float(np.mean(truth == called))
        row["n_segments"] = len(truth)
        if truth.any() and not truth.all():  # which way the segment decision errs
            row["seg_speech_found"] = float(np.mean(called[truth]))
            row["seg_noise_rejected"] = float(np.mean(~called[~truth]))
    return row, roc


def build_systems(weights: Path, anchors: bool, energy: bool):
    systems, skipped = [Ours(weights)], []
    if energy:
        systems.append(Ours(weights, kind="energy"))
    if anchors:
        try:
            systems += [WebRtc(m) for m in range(4)]
        except ImportError as e:
            skipped.append(f"webrtcvad: {e} (pip install webrtcvad-wheels)")
        try:
            systems.append(Silero())
        except (ImportError, FileNotFoundError, RuntimeError) as e:
            skipped.append(f"silero: {e} (pip install --no-deps silero-vad)")
    return systems, skipped


MAIN_COLUMNS = [
    "auc",
    "f1",
    *[f"fa_{n}" for n in NOISES],
    "burst_recall",
    "seg_acc",
    "rtf",
    "p99_ms",
    "size_kb",
]


def format_table(rows: dict[str, dict], cols: list[str] = MAIN_COLUMNS, label="system") -> str:
    head = f"| {label} | " + " | ".join(cols) + " |"
    lines = [head, "|" + "---|" * (len(cols) + 1)]
    for name, r in rows.items():
        cells = []
        for c in cols:
            v = r.get(c)
            if v is None or (isinstance(v, float) and np.isnan(v)):
                cells.append("-")
            elif c == "rtf":
                cells.append(f"{v:.4f}")
            elif c in ("p99_ms", "size_kb"):
                cells.append(f"{v:.2f}" if c == "p99_ms" else f"{v:.0f}")
            elif isinstance(v, int):  # a count
                cells.append(str(v))
            else:
                cells.append(f"{v:.3f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    if any(c in TARGETS for c in cols):
        lines.append("| target | " + " | ".join(TARGETS.get(c, "") for c in cols) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--data", type=Path, default=CACHE / "dev")
    ap.add_argument("--weights", type=Path, default=DEFAULT_WEIGHTS)
    ap.add_argument("--threshold", type=float, default=0.5)
    ap.add_argument("--no-anchors", action="store_true", help="skip webrtcvad and Silero")
    ap.add_argument("--energy", action="store_true", help="also score the energy fallback VAD")
    ap.add_argument("--no-speed", action="store_true")
    ap.add_argument("--speed-seconds", type=float, default=60.0)
    ap.add_argument("--roc", type=Path, default=None, help="ROC plot PNG (needs matplotlib)")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument(
        "--reuse-anchors", action="store_true", help="cache webrtcvad/Silero results in .cache"
    )
    a = ap.parse_args(argv)

    torch.set_num_threads(1)
    audio, labels, index = load_eval_set(a.data)
    lead = load_per_frame(a.data, "babble_lead")
    speech_snr = load_per_frame(a.data, "speech_snr")
    hours = sum(c["frames"] for c in index) * FRAME / 8000 / 3600
    print(f"eval set {a.data}: {len(index)} clips, {hours:.2f} h")
    systems, skipped = build_systems(a.weights, not a.no_anchors, a.energy)
    for s in skipped:
        print(f"skipped anchor: {s}")
    rows, rocs = {}, {}
    speech_clip = None
    if not a.no_speed:  # a long real-ish signal for timing: the first dev clips joined
        speech_clip = np.concatenate([clip_arrays(audio, labels, c)[0] for c in index])[
            : int(a.speed_seconds * 8000)
        ]
    anchor_cache = _anchor_cache_path(a.data, a.threshold) if a.reuse_anchors else None
    cached = json.loads(anchor_cache.read_text()) if anchor_cache and anchor_cache.exists() else {}
    for s in systems:
        t0 = time.perf_counter()
        if not isinstance(s, Ours) and s.name in cached:
            row = dict(cached[s.name]["row"])
            roc = tuple(np.array(v) for v in cached[s.name]["roc"])
            if speech_clip is not None:  # speed is always measured afresh
                row["rtf"], row["p99_ms"] = s.speed(speech_clip)
            rows[s.name], rocs[s.name] = row, roc
            print(f"  {s.name}: quality metrics reused from {anchor_cache}")
            continue
        row, roc = evaluate_system(s, audio, labels, index, a.threshold, lead, speech_snr)
        if speech_clip is not None:
            row["rtf"], row["p99_ms"] = s.speed(speech_clip)
        if anchor_cache and not isinstance(s, Ours):
            keep = np.unique(np.linspace(0, len(roc[0]) - 1, 2000).astype(int))
            cached[s.name] = {"row": row, "roc": [roc[0][keep].tolist(), roc[1][keep].tolist()]}
            anchor_cache.write_text(json.dumps(cached))
        if isinstance(s, Ours) and s.vad.kind != "energy":
            row["size_kb"] = a.weights.stat().st_size / 1024
        rows[s.name], rocs[s.name] = row, roc
        print(f"  {s.name}: {time.perf_counter() - t0:.1f} s")
    table = format_table(rows)
    print(table)
    shares = babble_lead_shares(lead, index) if lead is not None else {}
    lead_title = "false alarms on babble-only frames by the loudest talker's lead over the rest"
    if shares:
        lead_title += " (frames: " + ", ".join(f"{k} {v:.0%}" for k, v in shares.items()) + ")"
    for title, cols in (
        ("false alarms on babble-only clips by make-up", list(BABBLE_MAKEUP)),
        (lead_title, list(BABBLE_LEAD_DB)),
        ("segments over 1 s: speech ones called speech, noise-only ones called noise", SEG_SPLIT),
        (
            "speech frames of the mixes found, by the callee's level over the noise in the frame",
            list(SPEECH_SNR_DB),
        ),
    ):
        cols = [c for c in cols if any(c in r for r in rows.values())]
        if cols:
            print(f"\n{title}:")
            print(format_table({n: r for n, r in rows.items() if any(c in r for c in cols)}, cols))
    if a.roc:
        _plot(rocs, rows, a.roc)
        print(f"ROC plot: {a.roc}")
    result = {
        "data": str(a.data),
        "threshold": a.threshold,
        "rows": rows,
        "babble_lead_shares": shares,
        "skipped": skipped,
        "table": table,
    }
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(result, indent=1))
    return result


def _anchor_cache_path(data: Path, threshold: float) -> Path:
    """Anchor results depend only on the data set: cache them beside it, keyed by its size/mtime."""
    st = (Path(data) / "labels.npy").stat()
    return CACHE / f"anchors_{Path(data).name}_{st.st_size}_{int(st.st_mtime)}_{threshold}.json"


def _plot(rocs, rows, path: Path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 5))
    for name, roc in rocs.items():
        if roc is None:
            continue
        fpr, tpr = roc
        style = "o" if len(fpr) <= 3 else "-"
        ax.plot(
            fpr, tpr, style, label=f"{name} (AUC {rows[name].get('auc', float('nan')):.3f})", ms=4
        )
    ax.plot([0, 1], [0, 1], ":", color="grey")
    ax.set_xlabel("false-positive rate (frames)")
    ax.set_ylabel("true-positive rate (frames)")
    ax.set_title("VAD frame ROC, 8 kHz telephony dev mixes")
    ax.legend(loc="lower right", fontsize=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


if __name__ == "__main__":
    main()
