"""The farmland experiment on FLAIR-HUB: does a multimodal model beat the aerial-only one?

The FLAIR-HUB generator (:mod:`flairlc.data.synthetic.hub`) draws herbaceous vegetation,
agricultural land and plowed land from one aerial colour and texture law: from the air they look
alike, while their Sentinel-2 seasonal profiles differ. On a synthetic FLAIR-HUB "farmland" (ROIs
drawn mostly from agricultural tags) two models are trained with the same budget and scored on the
``test`` ROIs of ``split_1``:

- ``"aerial"``: the model reading ``AERIAL_RGBI`` alone (R, G, B, NIR);
- ``"multimodal"``: the same model family reading ``AERIAL_RGBI``, ``DEM_ELEV`` (elevation,
  DSM − DTM) and ``SENTINEL2_TS``.

The multimodal model should lift the IoU of those *seasonal classes* far above the aerial-only
model's. ``tests/test_hub_fusion_benefit.py`` runs one seed; ``benchmarks/bench_hub_fusion_stability.py``
runs several seeds and thread counts, which set the test's margin.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import lightning as L

from flairlc import nomenclature
from flairlc.data.synthetic.scene import AERIAL_PIXEL_M
from flairlc.demo.farmland import fit_and_score_seasonal
from flairlc.training import FlairHubDataModule, SegmentationTask

#: CoSIA indices of herbaceous vegetation, agricultural land and plowed land.
SEASONAL_CLASSES = tuple(nomenclature.get("cosia").index_of(n) for n in ("herbaceous vegetation", "agricultural land", "plowed land"))
#: The two arms of the experiment and the FLAIR-HUB modalities each one loads (besides the mask).
VARIANTS: dict[str, tuple[str, ...]] = {"aerial": ("aerial",), "multimodal": ("aerial", "dem", "sentinel")}
#: CoSIA's classes IGN trains (15-18 weighted 0 and left out of mIoU).
ACTIVE_CLASSES = tuple(range(15))
#: Side of a FLAIR-HUB Sentinel-2 patch, pixels.
SENTINEL_PATCH_PX = 10


@dataclass(frozen=True)
class HubFarmlandSettings:
    """Data and training budget of the experiment: the CPU recipe of ``configs/cpu/hub_*.yaml``.

    The defaults take a few minutes per run on 2 idle CPU cores.
    """

    domains: int = 4
    rois_per_domain: int = 6
    #: An ROI is a ``patches_per_side²`` grid of patches.
    patches_per_side: int = 3
    #: Aerial patch side, pixels at 0.2 m.
    patch_size: int = 64
    #: Sentinel-2 dates per ROI.
    dates: int = 12
    #: ROIs in ``test`` and ``valid`` (the rest train); the test ROIs hold the seasonal classes.
    test_rois: int = 6
    valid_rois: int = 1
    #: Land-cover tags of the ROIs: agricultural first.
    roi_tags: tuple[str, ...] = ("AA", "AN", "AF", "AU")
    data_seed: int = 3
    epochs: int = 12
    batch_size: int = 8
    lr: float = 0.001
    encoder_name: str = "resnet18"
    #: U-TAE widths: 2 levels, as FLAIR-HUB's 10 × 10 px series allow.
    utae_widths: tuple[int, ...] = (32, 64)
    utae_heads: int = 8
    utae_d_model: int = 128
    #: The network of both arms: ``"multimodal"`` (one encoder per modality), or ``"utt"``
    #: (U-T&T; its aerial-only arm is then a U-Net).
    architecture: str = "multimodal"
    #: Extra :class:`SegmentationTask` arguments.
    task_overrides: dict[str, Any] = field(default_factory=dict)

    @property
    def sentinel_resolution_m(self) -> float:
        """Sentinel-2 pixel size of the synthetic series: a tenth of the patch footprint, metres."""
        return self.patch_size * AERIAL_PIXEL_M / SENTINEL_PATCH_PX

    def generate(self, root: str | Path) -> Path:
        """Write the farmland under ``root`` (skipped when its split file is already there)."""
        from flairlc.data.hub.modalities import GLOBAL_MTD_DIR, SPLIT_GPKG
        from flairlc.data.synthetic.hub import generate_hub_dataset

        root = Path(root)
        if not (root / GLOBAL_MTD_DIR / SPLIT_GPKG).exists():
            generate_hub_dataset(
                root, domains=self.domains, rois_per_domain=self.rois_per_domain,
                patches_per_side=self.patches_per_side, patch_size=self.patch_size, dates=self.dates,
                seed=self.data_seed, roi_tags=self.roi_tags, test_rois=self.test_rois, valid_rois=self.valid_rois,
            )  # fmt: skip
        return root

    def data(self, variant: str, root: str | Path) -> FlairHubDataModule:
        """The data module of ``variant`` over ``root``."""
        return FlairHubDataModule(str(root), modalities=[*VARIANTS[variant], "mask"], batch_size=self.batch_size,
                                  sat_patch_size=SENTINEL_PATCH_PX)

    def task(self, variant: str) -> SegmentationTask:
        """A fresh task of ``variant``, with the same optimizer, schedule and encoder in both arms."""
        modalities = VARIANTS[variant]
        bands = ["R", "G", "B", "NIR"] + (["elevation"] if "dem" in modalities else [])
        model_kwargs: dict[str, Any] = {"encoder_name": self.encoder_name, "encoder_weights": None}
        utae = {"encoder_widths": list(self.utae_widths), "decoder_widths": list(self.utae_widths),
                "n_head": self.utae_heads, "d_model": self.utae_d_model}
        if self.architecture == "multimodal":
            model = "multimodal"
            model_kwargs["modalities"] = list(modalities)
            if "sentinel" in modalities:
                model_kwargs.update(utae)
        elif self.architecture == "utt":
            model = "utt" if "sentinel" in modalities else "unet"
            if model == "utt":
                model_kwargs.update(utae, fusion_zero_init=True)
        else:
            raise ValueError(f"architecture must be 'multimodal' or 'utt', got {self.architecture!r}")
        kwargs: dict[str, Any] = dict(
            model=model, model_kwargs=model_kwargs, nomenclature="cosia", bands=bands,
            active_classes=list(ACTIVE_CLASSES), optimizer="adamw", lr=self.lr, scheduler="cosine",
            aerial_scaling="standardize", sentinel_scaling="reflectance", sat_patch_size=SENTINEL_PATCH_PX,
            sentinel_resolution_m=self.sentinel_resolution_m,
        )  # fmt: skip
        kwargs.update(self.task_overrides)
        return SegmentationTask(**kwargs)


@dataclass(frozen=True)
class HubFarmlandScore:
    """One trained model's scores on the farmland's test ROIs.

    Attributes:
        variant: ``"aerial"`` or ``"multimodal"``.
        architecture: the network (:attr:`HubFarmlandSettings.architecture`).
        seed: training seed.
        threads: torch intra-op threads during training.
        seasonal_iou: mean IoU over the seasonal classes present in the test ROIs.
        seasonal_classes: the class names averaged in ``seasonal_iou``.
        seasonal_class_iou: IoU of each of those classes.
        miou: mIoU over the trained classes.
    """

    variant: str
    architecture: str
    seed: int
    threads: int
    seasonal_iou: float
    seasonal_classes: list[str]
    seasonal_class_iou: list[float]
    miou: float

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return asdict(self)


def train_and_score(
    variant: str,
    root: str | Path,
    settings: HubFarmlandSettings = HubFarmlandSettings(),
    seed: int = 0,
    work_dir: str | Path | None = None,
) -> HubFarmlandScore:
    """Train ``variant`` on the farmland's train ROIs, then score it on its test ROIs.

    Args:
        variant: ``"aerial"`` or ``"multimodal"``.
        root: the farmland root (see :meth:`HubFarmlandSettings.generate`).
        settings: data and training budget.
        seed: seed of the weights, the shuffling and the dropout.
        work_dir: Lightning's ``default_root_dir`` (nothing is logged or checkpointed).
    """
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {', '.join(VARIANTS)}, got {variant!r}")
    L.seed_everything(seed, verbose=False)
    data = settings.data(variant, root)
    task = settings.task(variant)
    seasonal, threads = fit_and_score_seasonal(task, data, settings.epochs, SEASONAL_CLASSES,
                                               f"the test ROIs of {root}", work_dir)
    return HubFarmlandScore(variant=variant, architecture=settings.architecture, seed=seed, threads=threads, **seasonal)
