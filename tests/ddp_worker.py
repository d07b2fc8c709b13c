"""Run under ``torchrun --standalone --nproc_per_node 2 tests/ddp_worker.py RUN OUT`` by test_adl.py.

Each rank trains the same tiny ADL run (process group from torchrun's environment, gloo on
CPU) and writes ITS OWN decisions and a checksum of its final weights to OUT/rank<r>.json, so the
test can compare ranks. Not collected by pytest (no test_ prefix).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fixtures_data import make_multisensor_dataset, tiny_train_config  # noqa: E402

from rawadapt.train.api import run_training  # noqa: E402


def main() -> None:
    run_dir, out = Path(sys.argv[1]), Path(sys.argv[2])
    torch.set_num_threads(1)
    ds = make_multisensor_dataset(sensors=("a", "b", "c"), per_sensor={"source": 6, "target": 6, "test": 2}, size=32)
    cfg = tiny_train_config(
        "adl",
        target="a",
        iters=12,
        pretrain_iters=4,
        finetune_iters=2,
        data={"target_pairs": 6, "patch": 16},
        adl={"val_crop": 16},
    )
    decisions = []

    def on_step(ctx, values):  # type: ignore[no-untyped-def]
        if ctx.stage_name == "adaptive":
            decisions.append([values["domain"], int(values["accepted"]), round(float(values["val_psnr"]), 6)])

    model_box = {}

    def keep(ctx, values):  # type: ignore[no-untyped-def]
        model_box["model"] = ctx.model
        on_step(ctx, values)

    run_training(cfg, run_dir, dataset=ds, progress=False, on_step=keep)
    h = hashlib.sha256()
    for t in model_box["model"].state_dict().values():
        h.update(t.detach().cpu().numpy().tobytes())
    rank = int(os.environ["RANK"])
    (out / f"rank{rank}.json").write_text(
        json.dumps(
            {"rank": rank, "world": int(os.environ["WORLD_SIZE"]), "decisions": decisions, "weights": h.hexdigest()}
        )
    )


if __name__ == "__main__":
    main()
