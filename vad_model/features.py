"""Causal log-mel features at 8 kHz, as a TorchScript-able ``nn.Module``.

Frame ``i`` (10 ms hop, 25 ms Hann window) covers samples ``[80*(i+1) - 200, 80*(i+1))``:
it ends at the newest sample, so features never look ahead. The 120 samples of left context
are carried between chunks in streaming use (zeros at the start of a call), which makes the
features of a chunked signal identical to those of the whole signal.
"""

from __future__ import annotations

import math

import torch
from torch import nn

SAMPLE_RATE = 8000
HOP = 80  # 10 ms
WIN = 200  # 25 ms
N_FFT = 256
N_MELS = 40
F_MIN = 60.0
F_MAX = 3800.0
CONTEXT = WIN - HOP  # samples carried between chunks


def _hz_to_mel(f: float) -> float:
    return 2595.0 * math.log10(1.0 + f / 700.0)


def _mel_to_hz(m: torch.Tensor) -> torch.Tensor:
    return 700.0 * (10 ** (m / 2595.0) - 1.0)


def mel_filterbank(
    n_mels: int = N_MELS,
    n_fft: int = N_FFT,
    sr: int = SAMPLE_RATE,
    fmin: float = F_MIN,
    fmax: float = F_MAX,
) -> torch.Tensor:
    """Triangular HTK-style mel filters, shape [n_fft // 2 + 1, n_mels]."""
    freqs = torch.linspace(0, sr / 2, n_fft // 2 + 1, dtype=torch.float64)
    pts = _mel_to_hz(
        torch.linspace(_hz_to_mel(fmin), _hz_to_mel(fmax), n_mels + 2, dtype=torch.float64)
    )
    fb = torch.zeros(n_fft // 2 + 1, n_mels, dtype=torch.float64)
    for m in range(n_mels):
        lo, c, hi = pts[m], pts[m + 1], pts[m + 2]
        up = (freqs - lo) / (c - lo)
        down = (hi - freqs) / (hi - c)
        fb[:, m] = torch.clamp(torch.minimum(up, down), min=0.0)
    return fb.float()


class LogMel(nn.Module):
    """int16-scaled float audio [B, N] (+ left context [B, 120]) -> log-mel [B, N // 80, 40].

    The windowed DFT is one matmul with a fixed basis, so the module scripts cleanly and
    runs fast for the 2-frame chunks of streaming use.
    """

    def __init__(self) -> None:
        super().__init__()
        n = torch.arange(WIN, dtype=torch.float64)
        window = 0.5 - 0.5 * torch.cos(2 * math.pi * (n + 0.5) / WIN)
        k = torch.arange(N_FFT // 2 + 1, dtype=torch.float64)
        ang = 2 * math.pi * n[:, None] * k[None, :] / N_FFT
        basis = torch.cat(
            [window[:, None] * torch.cos(ang), -window[:, None] * torch.sin(ang)], dim=1
        )
        self.register_buffer("basis", basis.float())  # [200, 258]
        self.register_buffer("mel", mel_filterbank())  # [129, 40]
        self.hop = HOP
        self.win = WIN
        self.context = CONTEXT

    def forward(
        self, audio: torch.Tensor, context: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """audio [B, N] in [-1, 1], context [B, 120] -> (features [B, N // 80, 40], new context)."""
        x = torch.cat([context, audio], dim=1)
        t = audio.shape[1] // self.hop
        x = x[:, : self.context + t * self.hop]
        frames = x.unfold(1, self.win, self.hop)  # [B, t, 200]
        spec = frames @ self.basis
        half = self.basis.shape[1] // 2
        power = spec[..., :half] ** 2 + spec[..., half:] ** 2
        feats = torch.log(power @ self.mel + 1e-6)
        return feats, x[:, x.shape[1] - self.context :]
