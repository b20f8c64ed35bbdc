"""Time the FLAIR models: forward and forward+backward, per sample, at FLAIR patch sizes.

Each model runs on random inputs: aerial ``(B, 5, H, H)`` (``--sizes``, default 512) and, for U-TAE
and U-T&T, a Sentinel-2 series ``(B, T, 10, S, S)`` with ``T`` in ``--dates`` and ``S`` =
``--sat-size`` (default 40). Times are medians over ``--repeats`` runs after ``--warmup`` runs,
divided by the batch size. Prints a markdown table.

    python benchmarks/bench_models.py --device cpu --batch-size 1 --repeats 3
    python benchmarks/bench_models.py --device cuda --bf16 --channels-last --batch-size 8
"""

from __future__ import annotations

import argparse
import contextlib
import platform
import statistics
import time
from collections.abc import Callable
from functools import partial

import torch

from flairlc.models import count_parameters, create_model


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _median_seconds(
    fn: Callable[[], None], device: torch.device, warmup: int, repeats: int
) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _inputs(
    name: str, batch: int, size: int, dates: int, sat_size: int, device: torch.device,
    channels_last: bool,
) -> dict[str, torch.Tensor]:  # fmt: skip
    inputs: dict[str, torch.Tensor] = {}
    if name in ("unet", "utt"):
        aerial = torch.rand(batch, 5, size, size, device=device)
        inputs["aerial"] = (
            aerial.contiguous(memory_format=torch.channels_last) if channels_last else aerial
        )
    if name in ("utae", "utt"):
        inputs["sentinel"] = torch.rand(batch, dates, 10, sat_size, sat_size, device=device)
        inputs["dates_days"] = torch.sort(
            torch.randint(-150, 250, (batch, dates), device=device)
        ).values
    return inputs


def _logits(out: object) -> torch.Tensor:
    if isinstance(out, torch.Tensor):
        return out
    logits, aux = out  # type: ignore[misc]
    return logits if aux is None else logits + aux.mean()


def _forward(
    model: torch.nn.Module,
    runner: Callable[..., object],
    inputs: dict[str, torch.Tensor],
    autocast: Callable[[], contextlib.AbstractContextManager[object]],
) -> None:
    model.eval()
    with torch.no_grad(), autocast():
        runner(**inputs)


def _forward_backward(
    model: torch.nn.Module,
    runner: Callable[..., object],
    inputs: dict[str, torch.Tensor],
    autocast: Callable[[], contextlib.AbstractContextManager[object]],
) -> None:
    model.train()
    model.zero_grad(set_to_none=True)
    with autocast():
        loss = _logits(runner(**inputs)).float().mean()
    loss.backward()


def bench(args: argparse.Namespace) -> list[dict[str, object]]:
    """Time every (model, size, T) combination; one result dict per row."""
    device = torch.device(args.device)
    autocast: Callable[[], contextlib.AbstractContextManager[object]] = (
        partial(torch.autocast, device_type=device.type, dtype=torch.bfloat16)
        if args.bf16
        else contextlib.nullcontext
    )
    rows: list[dict[str, object]] = []
    for name in args.models:
        torch.manual_seed(0)
        model = create_model(name).to(device)
        if args.channels_last:
            model = model.to(memory_format=torch.channels_last)
        runner = torch.compile(model) if args.compile else model
        for size in args.sizes if name != "utae" else [None]:
            for dates in args.dates if name != "unet" else [None]:
                inputs = _inputs(
                    name, args.batch_size, size or 0, dates or 0, args.sat_size, device,
                    args.channels_last,
                )  # fmt: skip

                forward = partial(_forward, model, runner, inputs, autocast)
                forward_backward = partial(_forward_backward, model, runner, inputs, autocast)
                fwd = _median_seconds(forward, device, args.warmup, args.repeats)
                fwd_bwd = _median_seconds(forward_backward, device, args.warmup, args.repeats)
                rows.append(
                    {
                        "model": name,
                        "params_m": count_parameters(model) / 1e6,
                        "aerial": f"{size}×{size}" if size else "–",
                        "sentinel": f"T={dates}, S={args.sat_size}" if dates else "–",
                        "fwd_ms": 1000 * fwd / args.batch_size,
                        "fwd_bwd_ms": 1000 * fwd_bwd / args.batch_size,
                    }
                )
    return rows


def markdown(rows: list[dict[str, object]]) -> str:
    """The results as a markdown table."""
    lines = [
        "| model | params (M) | aerial | Sentinel-2 | forward (ms/sample) | fwd+bwd (ms/sample) |",
        "|---|---:|---|---|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['params_m']:.2f} | {r['aerial']} | {r['sentinel']} "
            f"| {r['fwd_ms']:.1f} | {r['fwd_bwd_ms']:.1f} |"
        )
    return "\n".join(lines)


def main() -> None:
    """Parse arguments, run, print the machine line and the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--models", nargs="+", default=["unet", "utae", "utt"])
    parser.add_argument("--sizes", nargs="+", type=int, default=[512], help="aerial sizes, px")
    parser.add_argument("--dates", nargs="+", type=int, default=[12, 50], help="values of T")
    parser.add_argument("--sat-size", type=int, default=40, help="Sentinel-2 window S, px")
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--bf16", action="store_true", help="bfloat16 autocast")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = (
        torch.cuda.get_device_name() if args.device == "cuda" else platform.processor() or "cpu"
    )
    print(
        f"device: {device}; torch {torch.__version__}; threads {torch.get_num_threads()}; "
        f"batch {args.batch_size}; repeats {args.repeats} (median); "
        f"bf16={args.bf16} channels_last={args.channels_last} compile={args.compile}\n"
    )
    print(markdown(bench(args)))


if __name__ == "__main__":
    main()
