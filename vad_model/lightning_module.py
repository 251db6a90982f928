"""Thin LightningModule around ``TdnnLstmVad``: loss, optimiser, validation AUC/F1."""

from __future__ import annotations

import numpy as np
import pytorch_lightning as pl
import torch
import torch.nn.functional as F

from vad_model.datamodule import IGNORE
from vad_model.metrics import f1, roc_auc
from vad_model.network import TdnnLstmVad


class VadLitModule(pl.LightningModule):
    def __init__(
        self,
        lr: float = 3e-3,
        weight_decay: float = 1e-4,
        channels: int = 128,
        hidden: int = 64,
        schedule_epochs: int | None = None,
        pos_weight: float = 1.0,
    ) -> None:
        """schedule_epochs: length of the one-cycle LR schedule when it differs from max_epochs
        (a run cut short on purpose: ``--epochs 2 --schedule-epochs 7``). pos_weight: weight of
        the speech frames in the loss; above 1 moves the 0.5 operating point towards recall."""
        super().__init__()
        self.save_hyperparameters()
        self.net = TdnnLstmVad(channels=channels, hidden=hidden)
        self._val: list[tuple[np.ndarray, np.ndarray]] = []

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        return self.net(audio)

    def _loss(self, batch):
        """Mean BCE over the frames that count (labels IGNORE stay out of it)."""
        audio, labels = batch
        logits = self.net(audio)
        labels = labels[:, : logits.shape[1]]
        counted = (labels != IGNORE).to(logits.dtype)
        w = torch.tensor(self.hparams.pos_weight, dtype=logits.dtype)
        frame_loss = F.binary_cross_entropy_with_logits(
            logits, labels.clamp(min=0), pos_weight=w, reduction="none"
        )
        loss = (frame_loss * counted).sum() / counted.sum().clamp(min=1)
        return loss, logits, labels

    def training_step(self, batch, batch_idx):
        loss, _, _ = self._loss(batch)
        self.log("train_loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch, batch_idx):
        loss, logits, labels = self._loss(batch)
        self.log("val_loss", loss, prog_bar=True)
        self._val.append(
            (torch.sigmoid(logits).flatten().cpu().numpy(), labels.flatten().cpu().numpy())
        )

    def on_validation_epoch_end(self) -> None:
        if not self._val:
            return
        probs = np.concatenate([p for p, _ in self._val])
        labels = np.concatenate([y for _, y in self._val])
        self._val.clear()
        auc = roc_auc(probs, labels)
        self.log("val_auc", 0.0 if np.isnan(auc) else auc, prog_bar=True)
        self.log("val_f1", f1(probs >= 0.5, labels), prog_bar=True)

    def configure_optimizers(self):
        opt = torch.optim.AdamW(
            self.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay
        )
        steps = int(self.trainer.estimated_stepping_batches)
        if self.hparams.schedule_epochs and self.trainer.max_epochs and self.trainer.max_epochs > 0:
            steps = steps * self.hparams.schedule_epochs // self.trainer.max_epochs
        steps = max(steps, 1)
        sched = torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=self.hparams.lr, total_steps=steps, pct_start=0.1
        )
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
