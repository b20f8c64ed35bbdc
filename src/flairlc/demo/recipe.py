"""flairlc's CPU training recipe: small models and a budget that trains in minutes on 2 cores.

Shared by the demo (:mod:`flairlc.demo.pipeline`) and the farmland experiment
(:mod:`flairlc.demo.farmland`); ``configs/cpu/*.yaml`` hold the same settings for ``flairlc fit``.
U-T&T's series preprocessing is the paper's best (cloud filter and monthly average).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flairlc.data.synthetic import generate_dataset
from flairlc.training import FlairDataModule, SegmentationTask


@dataclass(frozen=True)
class SyntheticSize:
    """Size of a synthetic FLAIR dataset (see :func:`flairlc.data.synthetic.generate_dataset`)."""

    domains: int = 12
    test_domains: int = 3
    areas_per_domain: int = 10
    patches_per_area: int = 5
    #: Aerial patch side, pixels.
    patch_size: int = 64
    #: Sentinel-2 dates per year.
    dates: int = 12
    #: Land-cover tags the areas are drawn from (None: all of them).
    area_tags: tuple[str, ...] | None = None

    def generate(self, root: str | Path, seed: int, progress: bool = False) -> Path:
        """Write the dataset under ``root`` with ``seed`` (skipped when it is already there)."""
        root = Path(root)
        if not (root / "flair-2_aerial_metadata.json").exists():
            generate_dataset(
                root, domains=self.domains, areas_per_domain=self.areas_per_domain,
                patches_per_area=self.patches_per_area, patch_size=self.patch_size,
                dates=self.dates, test_domains=self.test_domains, seed=seed,
                area_tags=self.area_tags, progress=progress,
            )  # fmt: skip
        return root


@dataclass(frozen=True)
class CpuRecipe:
    """Models and training budget of flairlc's CPU recipe.

    The cosine learning-rate decay and the zero-initialized fusion keep U-T&T's benefit stable
    over seeds and thread counts (``benchmarks/RESULTS.md``, fusion stability).
    """

    #: Sentinel-2 window side, 10 m pixels.
    sat_patch_size: int = 16
    epochs: int = 12
    batch_size: int = 8
    lr: float = 0.001
    #: Learning-rate schedule: cosine decay to 0 over the epochs (None: constant).
    scheduler: str | None = "cosine"
    #: Start U-T&T's fusion terms at 0 (see :class:`flairlc.models.fusion.FusionModule`).
    fusion_zero_init: bool = True
    encoder_name: str = "resnet18"
    utae_widths: tuple[int, ...] = (32, 32, 64, 64)
    utae_heads: int = 8
    utae_d_model: int = 128
    #: Random flips and rotations of the training batches.
    augment: bool = False

    def data(self, model: str, root: str, data_class: type[FlairDataModule] = FlairDataModule,
             **kwargs: Any) -> FlairDataModule:
        """The data module of ``model`` (``"unet"`` or ``"utt"``) over ``root``; ``kwargs`` add to it."""
        fusion = model == "utt"
        return data_class(
            root, modalities=["aerial", "mask"] + (["sentinel"] if fusion else []),
            batch_size=self.batch_size, sat_patch_size=self.sat_patch_size,
            filter_clouds=fusion, average_monthly=fusion, **kwargs,
        )  # fmt: skip

    def task(self, model: str, **overrides: Any) -> SegmentationTask:
        """A fresh ``"unet"`` or ``"utt"`` task; ``overrides`` replace :class:`SegmentationTask` arguments."""
        if model not in ("unet", "utt"):
            raise ValueError(f"model must be 'unet' or 'utt', got {model!r}")
        fusion = model == "utt"
        model_kwargs: dict[str, Any] = {"encoder_name": self.encoder_name}
        if fusion:
            widths = list(self.utae_widths)
            model_kwargs.update(encoder_widths=widths, decoder_widths=widths, n_head=self.utae_heads,
                                d_model=self.utae_d_model, fusion_zero_init=self.fusion_zero_init)
        kwargs: dict[str, Any] = dict(
            model=model, model_kwargs=model_kwargs, optimizer="adamw", lr=self.lr,
            scheduler=self.scheduler, aerial_scaling="standardize", sentinel_scaling="reflectance",
            sat_patch_size=self.sat_patch_size, augment=self.augment,
            filter_clouds=fusion, average_monthly=fusion,
        )  # fmt: skip
        kwargs.update(overrides)
        return SegmentationTask(**kwargs)
