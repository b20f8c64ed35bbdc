"""Spread of the fine-tuning test's result over seeds and torch thread counts.

``tests/test_published.py`` fine-tunes an imported 19-class FLAIR-INC model (random published
weights) to 3 classes on a small synthetic dataset and asserts that every class gets a
test IoU above 0. This script runs the same function for several seeds and thread counts, one
process per run, and prints each run's per-class IoUs and the smallest, to set and check that bar:

    python benchmarks/finetune_spread.py --seeds 0 1 2 3 4 --threads 1 2
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path


def run(seed: int, work: Path) -> list[float]:
    """One run in this process: the test's data, an imported model of ``seed``, its fine-tuning."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from test_published import FINE_TUNING_DATA, fine_tune_three_classes, flair_inc_file

    from flairlc.training.published import import_published_model

    root = FINE_TUNING_DATA.generate(work / "flair", seed=0)
    path, _ = flair_inc_file(work, 3, seed=seed)
    import_published_model(path, "flair-inc", work / "inc.ckpt")
    return fine_tune_three_classes(root, work / "inc.ckpt", work, seed=seed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--worker", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        import torch

        seed, threads = args.worker
        torch.set_num_threads(threads)
        with tempfile.TemporaryDirectory() as work:
            print(json.dumps(run(seed, Path(work))))
        return
    print("| seed | threads | IoU built | IoU woody | IoU open | min |")
    print("|---:|---:|---:|---:|---:|---:|")
    for threads in args.threads:
        for seed in args.seeds:
            out = subprocess.run([sys.executable, __file__, "--worker", str(seed), str(threads)],
                                 capture_output=True, text=True, check=True).stdout
            iou = json.loads(out.strip().splitlines()[-1])
            print(f"| {seed} | {threads} | " + " | ".join(f"{v:.3f}" for v in iou) + f" | {min(iou):.3f} |", flush=True)


if __name__ == "__main__":
    main()
