"""Streaming speed of the VAD on one CPU core: real-time factor and p99 time per 20 ms push.

    python scripts/bench_vad.py                  # shipped model, 60 s of audio
    python scripts/bench_vad.py --kind energy --seconds 10

Pushes 160-sample (20 ms, 8 kHz) frames one at a time into ``stream()``, as the controller's
media path does, with ``torch.set_num_threads(1)``. RTF = compute time / audio time; the
target is <= 0.005 (200 concurrent calls per core).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from vad_model import load_vad  # noqa: E402
from vad_model.evaluate import SAMPLE, load_eval_set  # noqa: E402


def bench(kind: str = "tdnn_lstm", seconds: float = 60.0, weights: str | None = None) -> dict:
    """Streaming 20 ms pushes: CPU-time 'rtf', 'mean_us', 'p50_us', 'p99_us'; 'wall_rtf', 'wall_p99_us'."""
    torch.set_num_threads(1)
    vad = load_vad(kind, weights)
    audio, _, _ = load_eval_set(SAMPLE)
    audio = np.asarray(audio, dtype=np.int16)
    n = int(seconds * 8000) // 160 * 160
    pcm = np.tile(audio, n // len(audio) + 1)[:n]
    stream = vad.stream()
    for i in range(0, 160 * 50, 160):  # warm-up
        stream.push(pcm[i : i + 160])
    stream = vad.stream()
    wall = np.empty(n // 160)
    cpu = np.empty(n // 160)
    for k in range(n // 160):
        f = pcm[k * 160 : (k + 1) * 160]
        t, c = time.perf_counter(), time.thread_time()
        stream.push(f)
        cpu[k] = time.thread_time() - c
        wall[k] = time.perf_counter() - t
    return {
        "rtf": float(cpu.sum() / (n / 8000)),
        "mean_us": float(cpu.mean() * 1e6),
        "p50_us": float(np.percentile(cpu, 50) * 1e6),
        "p99_us": float(np.percentile(cpu, 99) * 1e6),
        "wall_rtf": float(wall.sum() / (n / 8000)),
        "wall_p99_us": float(np.percentile(wall, 99) * 1e6),
        "frames": int(len(cpu)),
    }


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--kind", default="tdnn_lstm", choices=["tdnn_lstm", "energy"])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--weights", default=None)
    a = ap.parse_args(argv)
    r = bench(a.kind, a.seconds, a.weights)
    print(f"VAD {a.kind}: {r['frames']} pushes of 20 ms, one thread")
    print(
        f"  real-time factor {r['rtf']:.5f}  (target <= 0.005; {0.02 / max(r['mean_us'] * 1e-6, 1e-9):.0f} "
        f"streams per core)"
    )
    print(
        f"  per frame: mean {r['mean_us']:.1f} us, p50 {r['p50_us']:.1f} us, p99 {r['p99_us']:.1f} us"
    )
    print(
        f"  (CPU time of this thread; wall clock: RTF {r['wall_rtf']:.5f}, p99 {r['wall_p99_us']:.1f} us,"
    )
    print("   which also counts time the machine gave to other processes)")
    return r


if __name__ == "__main__":
    main()
