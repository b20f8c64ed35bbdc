"""Faster runtimes for mapping: the network compiled by ``torch.compile``, or run by ONNX Runtime.

``--runtime compile`` (:func:`compile_network`) compiles the task's network with TorchInductor
on its device, CPU or GPU, for any model; its weights are frozen into the compiled code
(inference only). Compiling takes tens of seconds once per process and window shape, and pays
off on large rasters and tiled jobs.

``--runtime onnx``: ONNX Runtime's CPU kernels run FLAIR's ResNet34 U-Net faster than PyTorch on
the CPUs measured (``benchmarks/RESULTS.md``). :class:`OnnxPredictor` wraps a trained
:class:`~flairlc.inference.TrainedModel`: the input scaling, the band selection, the inactive
classes and the softmax stay in PyTorch, exactly as the task does them; only the network runs in
ONNX Runtime, exported once (``torch.onnx.export``, dynamic batch and window size). Its
probabilities equal the task's to float rounding (``tests/test_map_area.py`` checks the maps).

    flairlc map --runtime compile ...
    flairlc map --runtime onnx ...          (pip install "flairlc[onnx]")
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import torch

from flairlc.map_options import RUNTIMES


class OnnxPredictor:
    """A :class:`~flairlc.mapping.predictor.Predictor` whose network runs in ONNX Runtime.

    Args:
        task: the trained model (:class:`~flairlc.inference.TrainedModel`, an aerial-only U-Net
            without metadata).
        threads: ONNX Runtime's intra-op threads (default: torch's thread count).
        path: where to write the exported network (default a temporary file, removed with the
            predictor).

    Raises:
        ValueError: a model that reads Sentinel-2 or metadata (only its network is exported).
        RuntimeError: ONNX Runtime is not installed.
    """

    def __init__(self, task: Any, threads: int | None = None, path: str | Path | None = None) -> None:
        if task.architecture != "unet" or task.use_metadata:
            raise ValueError("--runtime onnx runs aerial-only U-Nets without metadata; "
                             f"this model is {task.architecture!r}"
                             + (" with metadata" if task.use_metadata else ""))
        try:
            import onnxruntime
        except ImportError:
            raise RuntimeError('--runtime onnx needs ONNX Runtime: pip install "flairlc[onnx]"') from None
        self.task = task.eval()
        self._directory = None
        if path is None:
            self._directory = tempfile.TemporaryDirectory(prefix="flairlc-onnx-")
            path = Path(self._directory.name) / "network.onnx"
        self.path = Path(path)
        example = torch.zeros((1, len(task.bands), 64, 64))
        with torch.inference_mode(False), torch.no_grad():
            torch.onnx.export(task.net, (example,), str(self.path), input_names=["aerial"], output_names=["logits"],
                              dynamic_axes={"aerial": {0: "batch", 2: "height", 3: "width"},
                                            "logits": {0: "batch", 2: "height", 3: "width"}},
                              opset_version=17, dynamo=False)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = onnxruntime.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])

    def __getattr__(self, name: str) -> Any:
        # num_classes, bands, nomenclature, uses_sentinel, reference_date…: the task's.
        if name in ("task", "session", "path", "_directory"):
            raise AttributeError(name)
        return getattr(self.task, name)

    def use_channels_last(self, enabled: bool = True) -> None:
        """No-op: ONNX Runtime picks its own layouts."""

    @torch.inference_mode()
    def predict_proba(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Probabilities ``(B, K, H, W)`` of raw batches, as :meth:`SegmentationTask.predict_proba`."""
        aerial = self.task.aerial_scaler(self.task.select_bands(batch["aerial"].cpu())).float().contiguous()
        (logits,) = self.session.run(None, {"aerial": aerial.numpy()})
        return self.task.predictable(torch.from_numpy(logits)).float().softmax(dim=1)


def compile_network(task: Any) -> Any:
    """Compile the task's network by ``torch.compile``, in place, for inference; returns the task.

    TorchInductor compiles the network on first use, on the device the task is on, with its
    weights frozen into the compiled code (no training afterwards). The scaling, band selection,
    inactive classes and softmax stay the task's own code. The first batch's shapes are compiled
    as they are; a batch of another size (a raster's last, smaller batch) is compiled once more
    with the batch size left free, and a batch of 1 once (PyTorch's rules): at most three
    compilations per process, none per raster after that.

    Args:
        task: the trained task (any model, on its device).
    """
    task.eval().net.compile(options={"freezing": True})
    return task


def with_runtime(task: Any, runtime: str, threads: int | None = None) -> Any:
    """``task`` itself for ``"torch"``, with its network compiled for ``"compile"``
    (:func:`compile_network`), or wrapped in :class:`OnnxPredictor` for ``"onnx"`` (CPU only,
    ``threads`` intra-op threads)."""
    if runtime not in RUNTIMES:
        raise ValueError(f"runtime must be one of {RUNTIMES}, not {runtime!r}")
    if runtime == "compile":
        return compile_network(task)
    return task if runtime == "torch" else OnnxPredictor(task, threads)
