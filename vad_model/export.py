"""Export the plain ``nn.Module`` to TorchScript for serving (no Lightning at run time)."""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

import torch
from torch import nn


def export_torchscript(net: nn.Module, path: str | Path) -> Path:
    """Script ``net`` (eval mode, CPU, float32) with ``forward_chunk``/``initial_state`` and save it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    net = copy.deepcopy(net).cpu().float().eval()
    for p in net.parameters():
        p.requires_grad_(False)
    # Not frozen: the streaming runtime reads the weights from the state dict.
    with warnings.catch_warnings():  # torch 2.13 marks TorchScript deprecated; it still works
        warnings.simplefilter("ignore", DeprecationWarning)
        scripted = torch.jit.script(net)
    scripted.save(str(path))
    return path
