"""The VAD network: causal TDNN (dilated 1-D convolutions) + LSTM, one probability per 20 ms.

A plain ``nn.Module`` (no Lightning). ``forward_chunk`` is the only code path: a whole
signal is one chunk from the zero state, a stream is many 160-sample chunks carrying the
state, so batch and streaming probabilities agree by construction.

Shapes: audio [B, N] float in [-1, 1] with N a multiple of 160 -> probabilities [B, N // 160].
Look-ahead: none. Output frame j covers samples [160 j, 160 j + 160) and sees only samples
before 160 (j + 1).
"""

from __future__ import annotations

import torch
from torch import nn

from vad_model.features import CONTEXT, N_MELS, LogMel

FRAME = 160  # samples per output frame (20 ms at 8 kHz)


class CausalConv(nn.Module):
    """Conv1d -> BatchNorm -> ReLU over time with only left context (carried in ``buf``)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, dilation: int) -> None:
        super().__init__()
        self.pad = (kernel - 1) * dilation
        self.conv = nn.Conv1d(c_in, c_out, kernel, dilation=dilation, bias=False)
        self.bn = nn.BatchNorm1d(c_out)

    def forward(self, x: torch.Tensor, buf: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x [B, C, T], buf [B, C, pad] -> (y [B, C', T], new buf)."""
        xx = torch.cat([buf, x], dim=2)
        y = torch.relu(self.bn(self.conv(xx)))
        return y, xx[:, :, xx.shape[2] - self.pad :]


class TdnnLstmVad(nn.Module):
    """log-mel (10 ms) -> frame pairs (20 ms) -> 3 dilated causal convs -> LSTM -> sigmoid."""

    def __init__(
        self,
        channels: int = 128,
        hidden: int = 64,
        kernel: int = 3,
        dilations: tuple[int, ...] = (1, 2, 4),
    ) -> None:
        super().__init__()
        self.features = LogMel()
        self.in_norm = nn.BatchNorm1d(2 * N_MELS)
        layers = []
        c = 2 * N_MELS
        for d in dilations:
            layers.append(CausalConv(c, channels, kernel, d))
            c = channels
        self.tdnn = nn.ModuleList(layers)
        self.lstm = nn.LSTM(channels, hidden, batch_first=True)
        self.head = nn.Linear(hidden, 1)
        self.channels = channels
        self.hidden = hidden
        self.n_in = 2 * N_MELS
        self.kernel = kernel
        self.dilations = list(dilations)  # read by the numpy streaming runtime
        self.context = CONTEXT
        self.frame = FRAME

    @torch.jit.export
    def initial_state(self, batch: int = 1) -> list[torch.Tensor]:
        """Zero state: [audio context, one buffer per conv, LSTM h, LSTM c]."""
        ref = self.head.weight
        state = [torch.zeros(batch, self.context, dtype=ref.dtype, device=ref.device)]
        c = self.n_in
        for layer in self.tdnn:
            state.append(torch.zeros(batch, c, layer.pad, dtype=ref.dtype, device=ref.device))
            c = self.channels
        state.append(torch.zeros(1, batch, self.hidden, dtype=ref.dtype, device=ref.device))
        state.append(torch.zeros(1, batch, self.hidden, dtype=ref.dtype, device=ref.device))
        return state

    @torch.jit.export
    def forward_chunk(
        self, audio: torch.Tensor, state: list[torch.Tensor]
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """audio [B, N] (N multiple of 160), state -> (logits [B, N // 160], new state)."""
        feats, ctx = self.features(audio, state[0])
        b, t, f = feats.shape
        x = feats.reshape(b, t // 2, 2 * f).transpose(1, 2)  # [B, 80, T/2]
        x = self.in_norm(x)
        new_state = [ctx]
        i = 1
        for layer in self.tdnn:
            x, buf = layer(x, state[i])
            new_state.append(buf)
            i += 1
        y, (h, c) = self.lstm(x.transpose(1, 2), (state[i], state[i + 1]))
        new_state.append(h)
        new_state.append(c)
        return self.head(y).squeeze(-1), new_state

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        """audio [B, N] -> logits [B, N // 160] from the zero state (training and batch use)."""
        n = audio.shape[1] // self.frame * self.frame
        logits, _ = self.forward_chunk(audio[:, :n], self.initial_state(audio.shape[0]))
        return logits


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
