"""A few training steps on a tiny synthetic dataset keep the training code alive."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vad_model import load_vad, train


def _tiny_dataset(path, clips=12, frames=50):
    rng = np.random.default_rng(0)
    audio, labels, index = [], [], []
    t = np.arange(frames * 160) / 8000
    for i in range(clips):
        lab = np.zeros(frames, np.uint8)
        x = 300 * rng.standard_normal(frames * 160)
        if i % 2:
            lab[10:40] = 1
            buzz = sum(np.sin(2 * np.pi * 140 * h * t) / h for h in range(1, 12)) * 3000
            x[1600:6400] += buzz[1600:6400]
        audio.append(x.astype(np.int16))
        labels.append(lab)
        index.append(
            {
                "kind": "speech" if i % 2 else "noise",
                "subset": "mix",
                "offset": i * frames * 160,
                "frames": frames,
            }
        )
    path.mkdir()
    np.save(path / "audio.npy", np.concatenate(audio))
    np.save(path / "labels.npy", np.concatenate(labels))
    (path / "index.json").write_text(json.dumps({"clips": index}))


def test_fast_dev_run_trains_and_exports(tmp_path):
    data = tmp_path / "data"
    _tiny_dataset(data)
    out = train.main(
        [
            "--data",
            str(data),
            "--out",
            str(tmp_path / "runs"),
            "--fast-dev-run",
            "--batch-size",
            "4",
            "--concat",
            "2",
            "--threads",
            "1",
            "--channels",
            "16",
            "--hidden",
            "8",
            "--export",
            str(tmp_path / "vad.pt"),
        ]
    )
    vad = load_vad(path=out)
    pcm = np.zeros(1600, np.int16)
    p = vad.speech_probs(pcm)
    s = vad.stream()
    assert p.shape == (10,)
    assert abs(s.push(pcm[:160]) - p[0]) < 1e-5


def test_a_few_real_steps_reduce_the_loss(tmp_path):
    """Not just wiring: 30 steps on the tiny set should beat the initial loss."""
    import pytorch_lightning as pl
    import torch

    from vad_model.datamodule import VadDataModule
    from vad_model.lightning_module import VadLitModule

    data = tmp_path / "data"
    _tiny_dataset(data, clips=16)
    pl.seed_everything(0)
    dm = VadDataModule(data, batch_size=8, concat=1, val_fraction=0.25)
    dm.setup()
    model = VadLitModule(lr=1e-2, channels=16, hidden=8)
    batch = next(iter(dm.val_dataloader()))
    before = model._loss(batch)[0].item()
    trainer = pl.Trainer(
        max_steps=30,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
    )
    trainer.fit(model, datamodule=dm)
    model.eval()
    with torch.no_grad():
        after = model._loss(batch)[0].item()
    assert after < before


def test_staged_training_init_and_schedule(tmp_path):
    """The shipped recipe's flags: a cut-short schedule, then a stage started from its checkpoint."""
    data = tmp_path / "data"
    _tiny_dataset(data)
    common = ["--data", str(data), "--batch-size", "4", "--concat", "2", "--threads", "1",
              "--channels", "16", "--hidden", "8"]  # fmt: skip
    out1 = tmp_path / "runs1"
    train.main([*common, "--out", str(out1), "--epochs", "1", "--schedule-epochs", "3"])
    ckpts = sorted((out1 / "checkpoints").glob("vad-epoch=*.ckpt"))
    assert ckpts
    path = train.main([*common, "--out", str(tmp_path / "runs2"), "--epochs", "1", "--lr", "1e-3",
                       "--init", str(ckpts[0]), "--export", str(tmp_path / "vad.pt")])  # fmt: skip
    assert load_vad(path=path).speech_probs(np.zeros(320, np.int16)).shape == (2,)
    # a further stage may start from an exported TorchScript file (the shipped weights)
    exported = train._network_weights(path)
    staged = train._network_weights(
        sorted((tmp_path / "runs2" / "checkpoints").glob("vad-*.ckpt"))[0]
    )
    assert exported.keys() == staged.keys()
    assert all(np.allclose(exported[k], staged[k]) for k in exported)
    again = train.main([*common, "--out", str(tmp_path / "runs3"), "--epochs", "1", "--lr", "1e-4",
                        "--init", str(path), "--export", str(tmp_path / "vad3.pt")])  # fmt: skip
    assert load_vad(path=again).speech_probs(np.zeros(320, np.int16)).shape == (2,)


def test_pos_weight_weighs_speech_frames_in_the_loss(tmp_path):
    """``--pos-weight`` reaches the loss: speech frames count w times, noise frames once."""
    import torch
    import torch.nn.functional as F

    from vad_model.lightning_module import VadLitModule

    data = tmp_path / "data"
    _tiny_dataset(data)
    common = ["--data", str(data), "--batch-size", "4", "--concat", "2", "--threads", "1",
              "--channels", "16", "--hidden", "8", "--epochs", "1"]  # fmt: skip
    train.main([*common, "--out", str(tmp_path / "runs"), "--pos-weight", "2.5"])
    ckpt = sorted((tmp_path / "runs" / "checkpoints").glob("vad-*.ckpt"))[0]
    model = VadLitModule.load_from_checkpoint(ckpt, weights_only=False).eval()
    assert model.hparams.pos_weight == 2.5
    audio = torch.from_numpy(np.load(data / "audio.npy")[: 2 * 8000].astype(np.float32) / 32768)
    labels = torch.from_numpy(np.load(data / "labels.npy")[:100].astype(np.float32))
    batch = (audio.reshape(2, 8000), labels.reshape(2, 50))
    with torch.no_grad():
        loss, logits, y = model._loss(batch)
    expected = (2.5 * y * F.softplus(-logits) + (1 - y) * F.softplus(logits)).mean()
    assert y.any() and not y.all()
    assert abs(loss.item() - expected.item()) < 1e-5


def test_buried_speech_frames_stay_out_of_the_loss(tmp_path):
    """``--mask-buried-db``: training speech frames whose callee is that far under the noise
    (the set's speech_snr.npy) are labelled IGNORE and count nowhere in the loss; the
    validation clips keep every label."""
    import torch
    import torch.nn.functional as F

    from vad_model.datamodule import IGNORE, VadDataModule
    from vad_model.lightning_module import VadLitModule

    data = tmp_path / "data"
    _tiny_dataset(data)
    common = ["--data", str(data), "--batch-size", "4", "--concat", "1", "--threads", "1",
              "--channels", "16", "--hidden", "8", "--epochs", "1"]  # fmt: skip
    with pytest.raises(FileNotFoundError, match="speech_snr.npy"):
        train.main([*common, "--out", str(tmp_path / "r0"), "--mask-buried-db", "6"])
    labels = np.load(data / "labels.npy")
    snr = np.where(labels > 0, 10.0, np.nan).astype(np.float16)
    snr[np.flatnonzero(labels)[::3]] = -8.0  # a third of the speech frames lie under the noise
    snr[np.flatnonzero(labels)[1::3]] = -6.0  # exactly at the line: masked too
    np.save(data / "speech_snr.npy", snr)

    dm = VadDataModule(data, batch_size=4, concat=1, val_fraction=0.25, mask_buried_db=6)
    dm.setup()
    _, lab = dm.train_set[1]
    want = labels[50:100].astype(np.float32)
    want[snr[50:100] <= -6] = IGNORE
    np.testing.assert_array_equal(lab.numpy(), want)
    assert (lab == IGNORE).sum() == 20 and (lab == 1).sum() == 10
    assert not (dm.val_set[0][1] == IGNORE).any()  # validation keeps every label

    model = VadLitModule(channels=16, hidden=8, pos_weight=2.0).eval()
    audio = torch.stack([dm.train_set[i][0] for i in range(4)])
    y = torch.stack([dm.train_set[i][1] for i in range(4)])
    with torch.no_grad():
        loss, logits, _ = model._loss((audio, y))
        keep = y != IGNORE
        frame = 2.0 * y * F.softplus(-logits) + (1 - y) * F.softplus(logits)
        assert abs(loss.item() - frame[keep].mean().item()) < 1e-5
        unmasked, _, _ = model._loss((audio, y.clamp(min=0)))
    assert abs(loss.item() - unmasked.item()) > 1e-4  # the buried frames did count before

    path = train.main([*common, "--out", str(tmp_path / "r1"), "--mask-buried-db", "6",
                       "--export", str(tmp_path / "vad.pt")])  # fmt: skip
    assert load_vad(path=path).speech_probs(np.zeros(320, np.int16)).shape == (2,)
