"""Done-criterion of the training engine: a tiny ``finetune`` run on the built-in ``synth``
benchmark (tiny build) beats the noisy input's PSNR on the target test set.

The settings are the smallest that pass reliably (checked over seeds and targets, about 500
iterations of ~12 ms on 2 cores): a BatchNorm DnCNN learns from few iterations much faster than
the tiny U-Net, and the phones are used as sources because their images all have exposure
ratio 1 (the DSLR sources' x10/x100 amplified images have noise the ISO alone does not describe).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rawadapt.cli.main import main

CONFIG = """
model: {arch: dncnn, kwargs: {depth: 4, width: 16}}
data: {patch: 32, batch: 8, mixing: pooled, sources: [GP, IP, N6, S6]}
optim: {lr: 3.0e-3}
finetune_lr_factor: 0.2
eval_every: 0
log_every: 50
tensorboard: false
"""


def test_tiny_finetune_on_synth_beats_noisy_input(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RAWADAPT_SYNTH_SIZE", "tiny")  # built once per test session in its cache
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(CONFIG)
    run = tmp_path / "ft"
    with pytest.raises(SystemExit) as exc:
        main(
            [
                "train",
                "finetune",
                "--data",
                "synth",
                "--target",
                "G4",
                "--target-pairs",
                "6",
                "--pretrain-iters",
                "400",
                "--finetune-iters",
                "100",
                "--config",
                str(cfg),
                "--out",
                str(run),
                "--json",
                "--no-progress",
            ]
        )
    out = capsys.readouterr()
    assert exc.value.code == 0, out.err[-2000:]
    m = json.loads(out.out.strip().splitlines()[-1])
    assert m["target"] == "G4" and m["n_test"] >= 2 and m["split"]["target_pool"] == 6
    # the denoiser improves on the noisy input it was given (per-image mean PSNR, data range 1)
    assert m["psnr"] > m["psnr_noisy"] + 0.05, (m["psnr"], m["psnr_noisy"])
    assert m["ssim"] >= m["ssim_noisy"] - 1e-3
