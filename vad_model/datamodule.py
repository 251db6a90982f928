"""LightningDataModule over a dataset built by ``vad_model.data.build_dataset``.

Training samples are ``concat`` random 4 s clips joined end to end (12 s by default), with a
random gain, so the LSTM sees changes of noise type and level inside one sequence. The
last ``val_fraction`` of the clips is held out for validation (the dev set is kept for
``vad_model.evaluate`` only).

``mask_buried_db``: training speech frames whose callee lies that many dB or more under the
noise in that very frame (the set's ``speech_snr.npy``) get the label ``IGNORE`` and stay out
of the loss: to the ear they are the noise alone, and a babble there would be taught as
speech. Validation keeps every label, so its AUC compares with runs that masked nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

FRAME = 160
IGNORE = -1.0  # a training label left out of the loss


def load_store(data_dir: Path) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """(audio int16 flat, labels uint8 flat, clip index) of a built dataset."""
    data_dir = Path(data_dir)
    audio = np.load(data_dir / "audio.npy", mmap_mode="r")
    labels = np.load(data_dir / "labels.npy", mmap_mode="r")
    index = json.loads((data_dir / "index.json").read_text())["clips"]
    return audio, labels, index


class ClipSet(Dataset):
    """Fixed-length clips; in training mode each item is ``concat`` clips with random gain.
    With ``speech_snr`` and ``mask_buried_db`` the buried speech frames are labelled IGNORE."""

    def __init__(
        self,
        audio,
        labels,
        clips: list[dict],
        concat: int = 1,
        train: bool = False,
        speech_snr=None,
        mask_buried_db: float | None = None,
    ):
        self.audio, self.labels, self.clips = audio, labels, clips
        self.concat, self.train = concat, train
        self.speech_snr, self.mask_buried_db = speech_snr, mask_buried_db

    def __len__(self) -> int:
        return len(self.clips)

    def _clip(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        c = self.clips[i]
        n = c["frames"]
        a = np.asarray(self.audio[c["offset"] : c["offset"] + n * FRAME], dtype=np.float32) / 32768
        frames = slice(c["offset"] // FRAME, c["offset"] // FRAME + n)
        lab = np.asarray(self.labels[frames], dtype=np.float32)
        if self.mask_buried_db is not None:
            snr = np.asarray(self.speech_snr[frames], dtype=np.float32)
            lab[(lab > 0) & (snr <= -self.mask_buried_db)] = IGNORE
        return a, lab

    def __getitem__(self, i: int):
        idx = [i]
        if self.train and self.concat > 1:
            idx += torch.randint(0, len(self.clips), (self.concat - 1,)).tolist()
        parts = [self._clip(j) for j in idx]
        audio = []
        for a, _ in parts:
            if self.train:
                a = np.clip(a * 10 ** (float(torch.empty(1).uniform_(-10, 6)) / 20), -1, 1)
            audio.append(a)
        return torch.from_numpy(np.concatenate(audio)), torch.from_numpy(
            np.concatenate([lab for _, lab in parts])
        )


class VadDataModule(pl.LightningDataModule):
    """Train/val loaders over one built dataset directory (clips of equal length)."""

    def __init__(
        self,
        data_dir: str | Path,
        batch_size: int = 16,
        concat: int = 3,
        val_fraction: float = 0.05,
        num_workers: int = 0,
        mask_buried_db: float | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.train_set: ClipSet | None = None
        self.val_set: ClipSet | None = None

    def setup(self, stage: str | None = None) -> None:
        audio, labels, index = load_store(Path(self.hparams.data_dir))
        frames = {c["frames"] for c in index}
        if len(frames) != 1:
            raise ValueError(f"training clips must share one length, got {sorted(frames)[:5]}")
        n_val = max(1, int(len(index) * self.hparams.val_fraction))
        mask = self.hparams.mask_buried_db
        snr_path = Path(self.hparams.data_dir) / "speech_snr.npy"
        if mask is not None and not snr_path.exists():
            raise FileNotFoundError(
                f"{snr_path} is missing: rebuild the set with build_dataset to mask buried frames"
            )
        self.train_set = ClipSet(
            audio,
            labels,
            index[:-n_val],
            self.hparams.concat,
            train=True,
            speech_snr=np.load(snr_path, mmap_mode="r") if mask is not None else None,
            mask_buried_db=mask,
        )
        self.val_set = ClipSet(audio, labels, index[-n_val:], 1, train=False)

    def train_dataloader(self) -> DataLoader:
        return DataLoader(
            self.train_set,
            batch_size=self.hparams.batch_size,
            shuffle=True,
            num_workers=self.hparams.num_workers,
            drop_last=len(self.train_set) > self.hparams.batch_size,
        )

    def val_dataloader(self) -> DataLoader:
        return DataLoader(
            self.val_set, batch_size=64, shuffle=False, num_workers=self.hparams.num_workers
        )
