"""How much of the bare training step the training pipeline delivers (issue #21).

For each model and each number of DataLoader workers, in the same run and alternating round by
round (so that a shared machine's load falls on every figure alike):

- **trainer**: samples/s through the real ``Trainer.fit`` with the real ``FlairDataModule``
  (loading, collate, host-to-device copies, Lightning's loop, logging and its progress bar, as
  ``flairlc fit`` runs them);
- **bare**: samples/s of the same task's ``training_step`` + backward + optimizer step on the same
  batches, moved to the device once beforehand, under the same precision context: no loader, no
  Lightning loop;
- **loader**: batches/s of the DataLoader alone (same workers, no model), and on CUDA the same
  loader followed by the host-to-device copy (``non_blocking``) with and without ``pin_memory``.

Each round times ``--steps`` steps after ``--warmup`` untimed ones, with one device
synchronisation at each end of the timed span (a synchronisation per step would itself stall the
pipeline); reported are the medians over ``--rounds`` rounds and the ratio trainer / bare, the
share of the bare step the pipeline delivers. "overhead" is the time per step that neither the bare
step nor (without workers) the loading explains: hooks, transfers, logging.

    python benchmarks/bench_training_feed.py --patch-size 256 --batch-size 4 --num-workers 0 1

On a GPU (the paper's settings, channels-last bf16, batch 10, 8 workers):

    python benchmarks/bench_training_feed.py --accelerator gpu --precision bf16-mixed --channels-last \\
        --patch-size 512 --dates 20 --batch-size 10 --num-workers 8 --warmup 5 --steps 20 --rounds 3

(with ``PYTHONPATH`` on an older ``src`` for the figures of the code before a change).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import CSVLogger

from flairlc.data.synthetic import generate_dataset
from flairlc.training import FlairDataModule, SegmentationTask

MODELS = {
    "unet": ["aerial", "mask"],
    "utae": ["sentinel", "mask"],
    "utt": ["aerial", "sentinel", "mask"],
}


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (CUDA only: CPU work is synchronous)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class SpanTimer(Callback):
    """Wall time of training batches ``warmup`` to ``warmup + steps`` (loading included)."""

    def __init__(self, warmup: int, steps: int) -> None:
        self.warmup, self.steps = warmup, steps
        self.start: float | None = None
        self.seconds: float | None = None

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        done = trainer.global_step
        if done == self.warmup:
            synchronize(pl_module.device)
            self.start = time.perf_counter()
        elif done == self.warmup + self.steps:
            synchronize(pl_module.device)
            self.seconds = time.perf_counter() - self.start


def make_data(model: str, root: Path, args: argparse.Namespace, workers: int) -> FlairDataModule:
    return FlairDataModule(str(root), modalities=MODELS[model], batch_size=args.batch_size, num_workers=workers,
                           sat_patch_size=args.sat_patch_size, val_fraction=0.0)


def make_task(model: str, args: argparse.Namespace) -> SegmentationTask:
    L.seed_everything(0, verbose=False)
    return SegmentationTask(model=model, sat_patch_size=args.sat_patch_size, channels_last=args.channels_last)


def trainer_rate(model: str, root: Path, args: argparse.Namespace, workers: int, log_dir: Path) -> float:
    """Samples/s of ``Trainer.fit`` with the real data module, progress bar and logger."""
    task = make_task(model, args)
    data = make_data(model, root, args, workers)
    timer = SpanTimer(args.warmup, args.steps)
    trainer = L.Trainer(
        accelerator=args.accelerator, devices=1, precision=args.precision, max_steps=args.warmup + args.steps,
        logger=CSVLogger(log_dir), enable_checkpointing=False, enable_progress_bar=True,
        enable_model_summary=False, limit_val_batches=0, callbacks=[timer],
    )
    trainer.fit(task, data)
    return args.batch_size * args.steps / timer.seconds


def device_batches(model: str, root: Path, args: argparse.Namespace, device: torch.device) -> list[dict[str, Any]]:
    """The first ``warmup + steps`` training batches, in the trainer's order, moved to ``device`` once."""
    L.seed_everything(0, verbose=False)
    data = make_data(model, root, args, 0)
    data.setup("fit")
    data.trainer = None
    batches = []
    for batch in data.train_dataloader():
        batches.append({k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()})
        if len(batches) == args.warmup + args.steps:
            return batches
    raise SystemExit(f"the synthetic root holds {len(batches)} batches, {args.warmup + args.steps} needed")


def bare_rate(model: str, batches: list[dict[str, Any]], args: argparse.Namespace, device: torch.device) -> float:
    """Samples/s of training_step + backward + optimizer step on batches already on the device."""
    task = make_task(model, args).to(device)
    task.train()
    # Lightning's own precision plugin gives the same autocast context as in Trainer.fit.
    precision = L.Trainer(accelerator=args.accelerator, devices=1, precision=args.precision, logger=False,
                          enable_progress_bar=False, enable_model_summary=False).precision_plugin
    optimizer = task.configure_optimizers()
    start = 0.0
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*self.log.*")  # no trainer: self.log is a no-op
        for index, batch in enumerate(batches):
            if index == args.warmup:
                synchronize(device)
                start = time.perf_counter()
            optimizer.zero_grad()
            with precision.forward_context():
                loss = task.training_step(batch, index)
            loss.backward()
            optimizer.step()
    synchronize(device)
    return args.batch_size * args.steps / (time.perf_counter() - start)


def loader_rates(model: str, root: Path, args: argparse.Namespace, workers: int, device: torch.device) -> dict[str, float]:
    """Batches/s of the DataLoader alone; on CUDA, also with the copy to the device, unpinned and pinned."""
    rates = {}
    variants = [("loader", False, False)]
    if device.type == "cuda":
        variants += [("loader + copy", False, True), ("loader + copy, pinned", True, True)]
    for name, pin, copy in variants:
        L.seed_everything(0, verbose=False)
        data = make_data(model, root, args, workers)
        data.hparams["pin_memory"] = pin
        data.setup("fit")
        data.trainer = None
        iterator = iter(data.train_dataloader())
        start = 0.0
        for index in range(args.warmup + args.steps):
            if index == args.warmup:
                synchronize(device)
                start = time.perf_counter()
            batch = next(iterator)
            if copy:
                batch = {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
        synchronize(device)
        rates[name] = args.steps / (time.perf_counter() - start)
        del iterator
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patch-size", type=int, default=256)
    parser.add_argument("--dates", type=int, default=20)
    parser.add_argument("--sat-patch-size", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--num-workers", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--accelerator", default="cpu")
    parser.add_argument("--precision", default="32-true")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=["unet", "utt"])
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device("cuda" if args.accelerator in ("gpu", "cuda") else "cpu")
    # A batch must not end the epoch within the timed steps: enough patches for them and more.
    patches = args.batch_size * (args.warmup + args.steps + 2)
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch) / "flair"
        generate_dataset(root, domains=2, areas_per_domain=2, patches_per_area=patches // 4 + 1,
                         patch_size=args.patch_size, dates=args.dates, test_domains=0, seed=0)
        for model in args.models:
            batches = device_batches(model, root, args, device)
            for workers in args.num_workers:
                measured: dict[str, list[float]] = {"trainer": [], "bare": []}
                for _ in range(args.rounds):
                    measured["trainer"].append(trainer_rate(model, root, args, workers, Path(scratch) / "logs"))
                    measured["bare"].append(bare_rate(model, batches, args, device))
                loaders = loader_rates(model, root, args, workers, device)
                rows.append((model, workers, {k: statistics.median(v) for k, v in measured.items()}, measured, loaders))
    name = torch.cuda.get_device_name() if device.type == "cuda" else (platform.processor() or platform.machine())
    print(f"\n{name}, {torch.get_num_threads()} torch threads, {args.patch_size}×{args.patch_size} px, T = {args.dates}, "
          f"S = {args.sat_patch_size}, batch {args.batch_size}, precision {args.precision}, "
          f"channels-last {args.channels_last}; medians of {args.rounds} rounds of {args.steps} steps "
          f"after {args.warmup}\n")
    print("| model | workers | trainer samples/s | bare samples/s | trainer / bare | ms/step trainer | ms/step bare "
          "| loader ms/batch | overhead ms/step | loader batches/s (+ copy, + pinned copy) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for model, workers, median, _, loaders in rows:
        step_trainer = 1000 * args.batch_size / median["trainer"]
        step_bare = 1000 * args.batch_size / median["bare"]
        step_loader = 1000 / loaders["loader"]
        overhead = step_trainer - step_bare - (step_loader if workers == 0 else 0.0)
        loader_text = ", ".join(f"{rate:.2f}" for rate in loaders.values())
        print(f"| {model} | {workers} | {median['trainer']:.2f} | {median['bare']:.2f} "
              f"| **{median['trainer'] / median['bare']:.2f}** | {step_trainer:.0f} | {step_bare:.0f} "
              f"| {step_loader:.1f} | {overhead:.0f} | {loader_text} |")
    print("\nrounds (trainer; bare), samples/s:")
    for model, workers, _, measured, _ in rows:
        print(f"  {model}, {workers} workers: " + ", ".join(f"{r:.2f}" for r in measured["trainer"])
              + "; " + ", ".join(f"{r:.2f}" for r in measured["bare"]))


if __name__ == "__main__":
    main()
