"""Training throughput (samples/s) of each model through the real Lightning training step.

A synthetic FLAIR root is generated once; each model trains for ``--steps`` optimizer steps
(after ``--warmup`` steps that are not timed) with data loading in the loop. Reported: median
over steps of samples/s, and the ratios to U-Net and to the first setting measured in the same run.

Settings (``--settings``): ``eager`` (the network as it is), ``cl`` (channels-last network,
``SegmentationTask(channels_last=True)``), ``cl-compile`` (channels-last and compiled by
``torch.compile`` when the Trainer starts, ``compile_network=True``; the compilation falls in
the warm-up steps, which are not timed).

    python benchmarks/bench_training.py --patch-size 512 --dates 20 --batch-size 2 --steps 6
    python benchmarks/bench_training.py --models unet --settings eager cl cl-compile
    python benchmarks/bench_training.py --accelerator gpu --precision bf16-mixed --batch-size 10 \
        --num-workers 8 --settings eager cl cl-compile --warmup 5 --steps 20
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

from flairlc.data.synthetic import generate_dataset
from flairlc.training import FlairDataModule, SegmentationTask

MODELS = {
    "unet": ["aerial", "mask"],
    "utae": ["sentinel", "mask"],
    "utt": ["aerial", "sentinel", "mask"],
}


class StepTimer(Callback):
    """Wall time of each training batch, loading included (synchronized on GPUs)."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self._last: float | None = None

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        now = time.perf_counter()
        if self._last is not None:
            self.times.append(now - self._last)
        self._last = now


SETTINGS = {
    "eager": {},
    "cl": {"channels_last": True},
    "cl-compile": {"channels_last": True, "compile_network": True},
}


def measure(model: str, setting: str, root: Path, args: argparse.Namespace) -> float:
    """Median samples/s of one model in one setting."""
    L.seed_everything(0, verbose=False)
    data = FlairDataModule(str(root), modalities=MODELS[model], batch_size=args.batch_size,
                           num_workers=args.num_workers, sat_patch_size=args.sat_patch_size, val_fraction=0.0)
    task = SegmentationTask(model=model, sat_patch_size=args.sat_patch_size, **SETTINGS[setting])
    timer = StepTimer()
    trainer = L.Trainer(
        accelerator=args.accelerator, devices=1, precision=args.precision, max_steps=args.warmup + args.steps + 1,
        logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        limit_val_batches=0, callbacks=[timer],
    )
    trainer.fit(task, data)
    timed = timer.times[args.warmup:]
    return args.batch_size / statistics.median(timed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patch-size", type=int, default=512)
    parser.add_argument("--dates", type=int, default=20)
    parser.add_argument("--sat-patch-size", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--num-workers", type=int, default=0)
    parser.add_argument("--accelerator", default="cpu")
    parser.add_argument("--precision", default="32-true")
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--settings", nargs="+", choices=list(SETTINGS), default=["eager"])
    args = parser.parse_args()
    needed = args.batch_size * (args.warmup + args.steps + 2)
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch) / "flair"
        generate_dataset(root, domains=2, areas_per_domain=2, patches_per_area=max(1, needed // 2 + 1),
                         patch_size=args.patch_size, dates=args.dates, test_domains=0, seed=0)
        results = {(model, setting): measure(model, setting, root, args)
                   for model in args.models for setting in args.settings}
    device = torch.cuda.get_device_name() if args.accelerator == "gpu" else (platform.processor() or platform.machine())
    print(f"\n{device}, {torch.get_num_threads()} threads, {args.patch_size}×{args.patch_size} px, T = {args.dates}, "
          f"S = {args.sat_patch_size}, batch {args.batch_size}, precision {args.precision}, median of {args.steps} steps\n")
    first = args.settings[0]
    print(f"| model | setting | samples/s | vs U-Net | vs {first} |")
    print("|---|---|---:|---:|---:|")
    for (model, setting), rate in results.items():
        unet = results.get(("unet", setting))
        print(f"| {model} | {setting} | {rate:.2f} | {f'{rate / unet:.2f}×' if unet else '—'} "
              f"| {rate / results[(model, first)]:.2f}× |")


if __name__ == "__main__":
    main()
