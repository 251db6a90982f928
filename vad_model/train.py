"""Train the VAD and export the shipped TorchScript model.

    python -m vad_model.data.build_dataset --split train --clips 40000 \
        --far-babble 0.5 --near-room 0.3 --water 0.5                        # once, ~6 min
    python -m vad_model.train --epochs 8 --pos-weight 1.5 --export vad_model/weights/vad.pt  # ~52 min

That one run from random weights lands level with the shipped model (vad_model/README.md,
"One run from scratch"). The shipped model itself was trained in stages (the README has the
exact commands): a one-cycle run, then ``--init <weights> --epochs 1-3 --lr ...`` fine-tunes.

Checkpoints and CSV logs go to ``--out`` (default ``vad_model/.cache/runs``); the best
checkpoint by validation ROC-AUC is exported. ``--fast-dev-run`` runs one batch of each.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import LearningRateMonitor, ModelCheckpoint, TQDMProgressBar
from pytorch_lightning.loggers import CSVLogger

from vad_model.datamodule import VadDataModule
from vad_model.export import export_torchscript
from vad_model.lightning_module import VadLitModule
from vad_model.network import count_parameters

CACHE = Path(__file__).resolve().parent / ".cache"


def _network_weights(path: Path) -> dict:
    """The plain network's state dict from a Lightning checkpoint or a TorchScript export."""
    if path.suffix == ".ckpt":
        # our own Lightning checkpoint (it holds paths and hparams, hence weights_only=False)
        state = torch.load(path, map_location="cpu", weights_only=False)["state_dict"]
        return {k.removeprefix("net."): v for k, v in state.items() if k.startswith("net.")}
    return torch.jit.load(str(path), map_location="cpu").state_dict()


def main(argv: list[str] | None = None) -> Path | None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--data", type=Path, default=CACHE / "train")
    ap.add_argument("--out", type=Path, default=CACHE / "runs")
    ap.add_argument("--epochs", type=int, default=7)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--concat", type=int, default=3, help="4 s clips joined per training sequence")
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--channels", type=int, default=128)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument(
        "--pos-weight",
        type=float,
        default=1.0,
        help="loss weight of speech frames (>1 trades false alarms for recall at threshold 0.5)",
    )
    ap.add_argument(
        "--mask-buried-db",
        type=float,
        default=None,
        help="leave out of the loss the speech frames whose callee is this many dB or more under "
        "the noise in that frame (needs the set's speech_snr.npy)",
    )
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--limit-train-batches", type=float, default=1.0)
    ap.add_argument("--fast-dev-run", action="store_true")
    ap.add_argument(
        "--schedule-epochs",
        type=int,
        default=None,
        help="one-cycle LR schedule length in epochs, if longer than --epochs (stop early on purpose)",
    )
    ap.add_argument(
        "--init",
        type=Path,
        default=None,
        help="start from these network weights: a Lightning checkpoint of ours (a second stage) "
        "or an exported TorchScript model such as the shipped vad_model/weights/vad.pt",
    )
    ap.add_argument(
        "--export", type=Path, default=None, help="write the best model as TorchScript here"
    )
    a = ap.parse_args(argv)

    pl.seed_everything(a.seed, workers=True)
    torch.set_num_threads(a.threads)
    dm = VadDataModule(
        str(a.data), batch_size=a.batch_size, concat=a.concat, mask_buried_db=a.mask_buried_db
    )
    model = VadLitModule(
        lr=a.lr,
        channels=a.channels,
        hidden=a.hidden,
        schedule_epochs=a.schedule_epochs,
        pos_weight=a.pos_weight,
    )
    if a.init is not None:
        model.net.load_state_dict(_network_weights(a.init))
        print(f"initialised from {a.init}")
    print(f"parameters: {count_parameters(model.net):,}")
    ckpt = ModelCheckpoint(
        dirpath=a.out / "checkpoints",
        monitor="val_auc",
        mode="max",
        save_last=True,
        filename="vad-{epoch:02d}-{val_auc:.4f}",
    )
    trainer = pl.Trainer(
        max_epochs=a.epochs,
        accelerator="cpu",
        devices=1,
        deterministic=True,
        callbacks=[ckpt, TQDMProgressBar(refresh_rate=20), LearningRateMonitor()],
        logger=CSVLogger(a.out, name="logs"),
        fast_dev_run=a.fast_dev_run,
        limit_train_batches=a.limit_train_batches,
        gradient_clip_val=1.0,
        log_every_n_steps=20,
        enable_model_summary=True,
    )
    trainer.fit(model, datamodule=dm)
    if a.export is None:
        return None
    best = ckpt.best_model_path
    if best and not a.fast_dev_run:
        model = VadLitModule.load_from_checkpoint(best, weights_only=False)  # our own file
        print(f"best checkpoint: {best} (val_auc {float(ckpt.best_model_score):.4f})")
    path = export_torchscript(model.net, a.export)
    print(f"exported TorchScript: {path} ({path.stat().st_size / 1024:.0f} KiB)")
    return path


if __name__ == "__main__":
    main()
