"""Frame metrics in numpy (no sklearn): ROC curve, ROC-AUC, F1, burst recall, clip decisions."""

from __future__ import annotations

import numpy as np


def roc_curve(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(false-positive rates, true-positive rates) over all thresholds, ties grouped."""
    scores = np.asarray(scores, dtype=np.float64).ravel()
    labels = np.asarray(labels).ravel().astype(bool)
    order = np.argsort(-scores, kind="mergesort")
    s, y = scores[order], labels[order]
    distinct = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]
    tps = np.cumsum(y)[distinct]
    fps = (distinct + 1) - tps
    p, n = max(y.sum(), 1), max((~y).sum(), 1)
    return np.r_[0.0, fps / n], np.r_[0.0, tps / p]


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve; nan when only one class is present."""
    labels = np.asarray(labels).ravel().astype(bool)
    if labels.all() or not labels.any():
        return float("nan")
    fpr, tpr = roc_curve(scores, labels)
    return float(np.trapezoid(tpr, fpr))


def f1(pred: np.ndarray, labels: np.ndarray) -> float:
    pred = np.asarray(pred).ravel().astype(bool)
    labels = np.asarray(labels).ravel().astype(bool)
    tp = np.sum(pred & labels)
    denom = 2 * tp + np.sum(pred & ~labels) + np.sum(~pred & labels)
    return float(2 * tp / denom) if denom else 1.0


def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) of each run of True."""
    m = np.r_[False, np.asarray(mask).astype(bool), False]
    d = np.flatnonzero(np.diff(m.astype(np.int8)))
    return list(zip(d[::2].tolist(), d[1::2].tolist(), strict=True))


def burst_hits(
    pred: np.ndarray, labels: np.ndarray, max_frames: int, slack: int = 2
) -> tuple[int, int]:
    """(detected, total) speech runs shorter than ``max_frames``.

    A burst counts as detected when any frame from its start to ``slack`` frames after its
    end is flagged (a causal detector answers a little late).
    """
    hit = total = 0
    for s, e in runs(labels):
        if e - s < max_frames:
            total += 1
            hit += bool(np.any(pred[s : min(len(pred), e + slack)]))
    return hit, total


def clip_is_speech(pred: np.ndarray, min_run: int = 10) -> bool:
    """Clip-level decision: speech when at least ``min_run`` consecutive frames (200 ms) are flagged."""
    return any(e - s >= min_run for s, e in runs(pred))
