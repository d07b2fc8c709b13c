"""Run logging: ``log.csv`` (training), ``eval.csv`` (periodic test-set validation), optional
TensorBoard, and the console (a tqdm bar on stderr, or plain lines with ``progress=False``).

``log.csv`` columns: ``step, stage, stage_step, loss, lr, step_time, data_time`` and then any
other key a stage returns, in first-seen order. When a stage introduces a new key (ADL's
``accepted``, ``val_psnr``...), the file is rewritten once with the wider header, so it always
has one consistent header. ``step_time`` is the wall time of the whole iteration, ``data_time``
the part spent drawing the batch (BasicSR's data-time vs step-time: a data-bound run shows
``data_time`` close to ``step_time``).

On resume, rows after the checkpoint's step are dropped (they will be written again).
Only the main process (rank 0) writes anything.
"""

from __future__ import annotations

import csv
import math
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rawadapt.utils.atomic import atomic_path

LOG_NAME = "log.csv"
EVAL_NAME = "eval.csv"
BASE_FIELDS = ["step", "stage", "stage_step", "loss", "lr", "step_time", "data_time"]
EVAL_FIELDS = ["step", "stage", "n", "psnr", "ssim", "psnr_noisy", "ssim_noisy"]


def _fmt(v: Any) -> Any:
    if isinstance(v, float):
        return "" if math.isnan(v) else f"{v:.6g}"
    return v


class CsvLog:
    """An append-only CSV whose header may grow (rewritten atomically when it does)."""

    def __init__(self, path: Path, fields: list[str]) -> None:
        self.path = path
        self.fields = list(fields)
        if path.exists() and path.stat().st_size > 0:
            with open(path, newline="") as fh:
                header = next(csv.reader(fh), [])
            for f in header:
                if f not in self.fields:
                    self.fields.append(f)

    def _rows(self) -> list[dict[str, str]]:
        if not self.path.exists():
            return []
        with open(self.path, newline="") as fh:
            return list(csv.DictReader(fh))

    def _rewrite(self, rows: Sequence[Mapping[str, Any]]) -> None:
        with atomic_path(self.path) as tmp:
            with open(tmp, "w", newline="") as fh:
                w = csv.DictWriter(fh, fieldnames=self.fields, extrasaction="ignore")
                w.writeheader()
                w.writerows(rows)

    def truncate_after(self, step: int) -> None:
        """Drop rows whose ``step`` is greater than ``step``."""
        if not self.path.exists():
            return
        keep = [r for r in self._rows() if r.get("step", "").isdigit() and int(r["step"]) <= step]
        self._rewrite(keep)

    def write(self, row: Mapping[str, Any]) -> None:
        row = {k: _fmt(v) for k, v in row.items()}
        new = [k for k in row if k not in self.fields]
        if new:
            self.fields.extend(new)
            self._rewrite(self._rows() + [row])
            return
        fresh = not self.path.exists() or self.path.stat().st_size == 0
        with open(self.path, "a", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=self.fields, extrasaction="ignore")
            if fresh:
                w.writeheader()
            w.writerow(row)


def _tensorboard_writer(path: Path) -> Any:
    """A SummaryWriter, or None when tensorboard is not installed (silently: it is optional)."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except Exception:  # noqa: BLE001 - ImportError, or a broken optional install
        return None
    try:
        return SummaryWriter(log_dir=str(path))
    except Exception:  # noqa: BLE001
        return None


def format_duration(seconds: float) -> str:
    """``1:02:03`` style."""
    if not math.isfinite(seconds) or seconds < 0:
        return "?"
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


class RunLogger:
    """Writes the run's logs and drives the console display.

    Parameters
    ----------
    run_dir
        The run folder.
    total
        Total iterations of the run (for the bar and the ETA).
    enabled
        False on non-main ranks: nothing is written or shown.
    progress
        A tqdm bar on stderr; otherwise a plain line every logged step.
    tensorboard
        Also write TensorBoard scalars to ``run_dir/tb`` when available.
    resume_step
        When resuming: global step of the checkpoint (later log rows are dropped).
    """

    def __init__(
        self,
        run_dir: Path,
        *,
        total: int,
        enabled: bool = True,
        progress: bool = True,
        tensorboard: bool = True,
        resume_step: int | None = None,
    ) -> None:
        self.run_dir = Path(run_dir)
        self.total = int(total)
        self.enabled = bool(enabled)
        self.progress = bool(progress) and self.enabled
        self.start_step = int(resume_step or 0)
        self._t0 = time.perf_counter()
        self._bar: Any = None
        self._tb: Any = None
        self.train_log: CsvLog | None = None
        self.eval_log: CsvLog | None = None
        if not self.enabled:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.train_log = CsvLog(self.run_dir / LOG_NAME, BASE_FIELDS)
        self.eval_log = CsvLog(self.run_dir / EVAL_NAME, EVAL_FIELDS)
        if resume_step is not None:
            self.train_log.truncate_after(resume_step)
            self.eval_log.truncate_after(resume_step)
        if tensorboard:
            self._tb = _tensorboard_writer(self.run_dir / "tb")
        if self.progress:
            from tqdm.auto import tqdm

            self._bar = tqdm(
                total=self.total, initial=self.start_step, file=sys.stderr, unit="it", dynamic_ncols=True, leave=True
            )

    # -- console -----------------------------------------------------------------------------
    def message(self, text: str) -> None:
        """A human message on stderr that does not break the progress bar."""
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.write(text, file=sys.stderr)
        else:
            sys.stderr.write(text + "\n")
            sys.stderr.flush()

    def eta(self, step: int) -> float:
        """Seconds left, from this session's mean iteration time."""
        done = step - self.start_step
        if done <= 0:
            return math.nan
        return (time.perf_counter() - self._t0) / done * (self.total - step)

    def advance(self, step: int, stage: str, values: Mapping[str, Any], step_time: float = 0.0) -> None:
        """Update the bar (every iteration; cheap)."""
        if self._bar is None:
            return
        self._bar.update(step - self._bar.n)
        post = {"stage": stage}
        if isinstance(values.get("loss"), float):
            post["loss"] = f"{values['loss']:.4g}"
        if isinstance(values.get("lr"), float):
            post["lr"] = f"{values['lr']:.2e}"
        if isinstance(values.get("data_time"), float) and step_time > 0:
            post["data"] = f"{100 * values['data_time'] / step_time:.0f}%"  # data-bound when high
        self._bar.set_postfix(post, refresh=False)

    # -- files -------------------------------------------------------------------------------
    def log(
        self, step: int, stage: str, stage_step: int, stage_iters: int, values: Mapping[str, Any], step_time: float
    ) -> None:
        """One ``log.csv`` row (+ TensorBoard scalars, + a console line without a bar)."""
        if not self.enabled or self.train_log is None:
            return
        row: dict[str, Any] = {
            "step": step,
            "stage": stage,
            "stage_step": stage_step,
            "step_time": float(step_time),
            **values,
        }
        self.train_log.write(row)
        if self._tb is not None:
            for k, v in values.items():
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    self._tb.add_scalar(f"train/{k}", float(v), step)
        if self._bar is None:
            loss = values.get("loss")
            lr = values.get("lr")
            dt = values.get("data_time")
            parts = [f"step {step}/{self.total}", f"[{stage} {stage_step}/{stage_iters}]"]
            if isinstance(loss, float):
                parts.append(f"loss {loss:.5g}")
            if isinstance(lr, float):
                parts.append(f"lr {lr:.2e}")
            if isinstance(dt, float):
                parts.append(f"data {dt * 1e3:.1f}ms")
            parts.append(f"step {step_time * 1e3:.1f}ms")
            parts.append(f"eta {format_duration(self.eta(step))}")
            self.message(" ".join(parts))

    def log_eval(self, step: int, stage: str, summary: Mapping[str, Any]) -> None:
        """One ``eval.csv`` row with a validation summary (n, psnr, ssim, noisy input's)."""
        if not self.enabled or self.eval_log is None:
            return
        self.eval_log.write({"step": step, "stage": stage, **{k: summary.get(k) for k in EVAL_FIELDS[2:]}})
        if self._tb is not None:
            for k in ("psnr", "ssim"):
                v = summary.get(k)
                if isinstance(v, float) and math.isfinite(v):
                    self._tb.add_scalar(f"test/{k}", v, step)
        self.message(
            f"step {step} [{stage}] test: PSNR {summary.get('psnr', math.nan):.2f} dB "
            f"(noisy {summary.get('psnr_noisy', math.nan):.2f}), SSIM {summary.get('ssim', math.nan):.4f} "
            f"on {summary.get('n')} images"
        )

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        if self._tb is not None:
            self._tb.close()
            self._tb = None
