"""How a raster is mapped: the options of ``flairlc map`` and ``map-area``, declared once.

A :class:`MapOptions` value travels whole from the command line to the tile: ``flairlc map`` and
``map-area`` build their options from its fields (defaults, choices and help), make one value,
and pass it to :func:`~flairlc.mapping.map_raster`, or to :meth:`~flairlc.mapping.job.MapJob.create`,
which stores the options that decide the map in ``job.json`` (:meth:`MapOptions.spec`) and hands
the value to every tile.

This module imports nothing beyond the standard library (the command line builds its parser from
it without importing PyTorch); :mod:`flairlc.mapping` re-exports :class:`MapOptions`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

#: ``precision``: float32, or bfloat16 autocast around the model (GPUs).
PRECISIONS = ("32", "bf16")
#: ``runtime``: how the network runs (:mod:`flairlc.mapping.runtime`).
RUNTIMES = ("torch", "compile", "onnx")
#: ``resolution_policy``: what an input at another resolution does (:mod:`flairlc.mapping.inputs`).
RESOLUTION_POLICIES = ("resample", "error")
#: ``coverage_policy``: what an input covering only part of the aerial image does
#: (:mod:`flairlc.mapping.coverage`).
COVERAGE_POLICIES = ("error", "warn")


def _option(default: Any, help: str | None = None, choices: tuple[str, ...] | None = None,
            minimum: int | None = None, decides_map: bool = True) -> Any:
    """A field of :class:`MapOptions`: ``help`` puts it on the command line (as ``--NAME``);
    ``decides_map=False`` marks an option that changes how fast the map is made, never the map."""
    metadata = {"help": help, "choices": choices, "minimum": minimum, "decides_map": decides_map}
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class MapOptions:
    """How :func:`~flairlc.mapping.map_raster` and a map job's tiles cut a raster into windows and
    run them through the model. Lengths are in pixels of the aerial image (0.2 m).

    Attributes:
        window: window side; None: for aerial-only models the side up to ``max_window`` that
            covers the raster with the fewest predicted pixels
            (:func:`~flairlc.mapping.blending.fit_window`), for models that read Sentinel-2 512
            (the FLAIR patch they were trained on). A map job resolves it once for its area.
        max_window: largest side of the default window (memory grows with it: a batch of 4
            windows through a ResNet34 U-Net on CPU peaks 1.7 GB higher at 1 024², 0.5 GB at 512²).
        overlap: least overlap between neighbouring windows (stride = window - overlap); less
            than the window.
        batch_size: windows per predictor call.
        precision: ``"32"``, or ``"bf16"``: bfloat16 autocast around the model (GPUs; the blending
            stays float32).
        runtime: ``"torch"``, ``"compile"`` (``torch.compile``) or ``"onnx"`` (ONNX Runtime, CPU):
            applied where the model is loaded (``flairlc map``, a job's
            :func:`~flairlc.mapping.job.load_predictor`); :func:`~flairlc.mapping.map_raster`
            runs the predictor it is given.
        read_threads: threads reading windows, each through its own file handles (None: one per
            available CPU, at most 8, half as many for JPEG2000,
            :func:`~flairlc.mapping.pipeline.default_read_threads`).
            Does not change the map.
        aerial_bands: the aerial image's bands in its order, e.g. ``"NIR,R,G"`` (a sequence is
            accepted and joined); None: by band count (3: R, G, B; 4: + NIR; 5: + elevation).
        resolution_policy: an input at another resolution (aerial and elevation 0.2 m,
            Sentinel-2 10 m): ``"resample"`` it with a warning, or ``"error"``.
        coverage_policy: an elevation raster or Sentinel-2 date covering only part of the aerial
            image, a series without the cloud masks the model needs, or Sentinel-2 dates outside
            the survey year: ``"error"``, or ``"warn"`` and map what is covered.
        probabilities: also write the class probabilities (uint8, x 255). A map job writes one
            COG per tile; :func:`~flairlc.mapping.map_raster` writes them to its
            ``probabilities_path``, which it then needs.
        prefetch: batches read ahead by background threads while the model runs (0: windows
            read in turn on the model's thread). Does not change the map.
        channels_last: run the network in channels-last memory format when the predictor offers
            it (``use_channels_last``; 1.3x faster on CPU). Does not change the map.
        band_width: width of the column bands of the blending buffer, which takes about
            ``4 K window (band_width + 2 window)`` bytes on the device (123 MB for 13 classes,
            window 512, 4096 px). Does not change the map.

    Raises:
        ValueError: a value out of its range or not one of its choices, in one line naming the
            option (:class:`MapOptionError`).
    """

    window: int | None = _option(None, "window side in pixels (default: aerial-only models, the side up to "
                                       "--max-window that covers the raster with the fewest predicted pixels; "
                                       "Sentinel-2 models, 512)", minimum=1)
    max_window: int = _option(1024, "largest default window side in pixels", minimum=1)
    overlap: int = _option(128, "overlap between windows in pixels", minimum=0)
    batch_size: int = _option(4, "windows per call of the model", minimum=1)
    precision: str = _option("32", "bf16: bfloat16 autocast around the model (GPUs)", PRECISIONS)
    runtime: str = _option("torch", "compile: the network compiled by torch.compile on its device, any model (tens "
                                    "of seconds to compile, once per process); onnx: an aerial U-Net in ONNX Runtime, "
                                    "CPU only, fastest on CPUs (pip install 'flairlc[onnx]')", RUNTIMES)
    read_threads: int | None = _option(None, "threads reading windows, each with its own file handles (default: one "
                                             "per available CPU, at most 8; half as many for JPEG2000, each with 2 "
                                             "decoder threads); the map does not depend on it",
                                       minimum=1, decides_map=False)
    aerial_bands: str | None = _option(None, "the aerial raster's bands in order when not the default, e.g. NIR,R,G")
    resolution_policy: str = _option(
        "resample", "an input at another resolution (aerial/elevation 0.2 m, Sentinel-2 10 m): resample it with a "
                    "warning or refuse it", RESOLUTION_POLICIES)
    coverage_policy: str = _option(
        "error", "an elevation raster or Sentinel-2 date covering only part of the aerial image, a series without "
                 "the cloud masks the model needs, or Sentinel-2 dates outside the orthophoto's survey year: refuse "
                 "or warn and map what is covered (nodata elsewhere). No overlap at all is always an error",
        COVERAGE_POLICIES)
    probabilities: bool = _option(False)
    prefetch: int = _option(2, minimum=0, decides_map=False)
    channels_last: bool = _option(True, decides_map=False)
    band_width: int = _option(4096, minimum=1, decides_map=False)

    def __post_init__(self) -> None:
        if self.aerial_bands is not None:
            object.__setattr__(self, "aerial_bands", _bands_text(self.aerial_bands))
        for f in fields(self):
            _check_field(f.name, getattr(self, f.name), f.default, f.metadata)
        limit = "window" if self.window is not None else "max_window"
        if self.overlap >= getattr(self, limit):
            raise MapOptionError("overlap", self.overlap, f"must be less than {{{limit}}} ({getattr(self, limit)})",
                                 limit)

    def spec(self) -> dict[str, Any]:
        """The options that decide the map, as JSON values: ``job.json``'s ``"map"``. Those that
        only change how fast it is made (``read_threads``, ``prefetch``, ``channels_last``,
        ``band_width``) are left out: a job may be resumed with others."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.metadata["decides_map"]}

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> MapOptions:
        """The options of a ``job.json``'s ``"map"``; a missing option takes its default, so the
        job folders of earlier versions still open.

        Raises:
            ValueError: an unknown option or a bad value, naming it.
        """
        unknown = sorted(set(spec) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"unknown map option(s) {', '.join(unknown)}: expected some of "
                             f"{', '.join(f.name for f in fields(cls))}")
        return cls(**spec)


class MapOptionError(ValueError):
    """A bad value of a :class:`MapOptions` field: ``option`` (the field), its ``value`` and the
    ``problem``, where ``{other}`` names another field. ``str()`` spells options as Python
    keywords; :meth:`message` as the command line does (``--batch-size``)."""

    def __init__(self, option: str, value: Any, problem: str, other: str | None = None) -> None:
        self.option, self.value, self.problem, self.other = option, value, problem, other
        super().__init__(self.message())

    def message(self, spell: Callable[[str], str] = lambda name: name) -> str:
        """The error in one line, each option written ``spell(name)``."""
        problem = self.problem.format(**{self.other: spell(self.other)}) if self.other else self.problem
        return f"{spell(self.option)} {self.value!r}: {problem}"


def _check_field(name: str, value: Any, default: Any, metadata: Mapping[str, Any]) -> None:
    """Raise :class:`MapOptionError` unless ``value`` is of the default's kind, in its range or
    one of its choices."""
    if value is None and default is None:
        return
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise MapOptionError(name, value, "must be true or false")
    elif isinstance(default, int) or (default is None and metadata["minimum"] is not None):
        if not isinstance(value, int) or isinstance(value, bool):
            raise MapOptionError(name, value, "must be a whole number")
        if metadata["minimum"] is not None and value < metadata["minimum"]:
            raise MapOptionError(name, value, f"must be at least {metadata['minimum']}")
    elif metadata["choices"] is not None and value not in metadata["choices"]:
        raise MapOptionError(name, value, f"expected one of {', '.join(metadata['choices'])}")
    elif not isinstance(value, str):
        raise MapOptionError(name, value, "must be text")


def _bands_text(bands: str | Sequence[str]) -> str:
    """``bands`` as canonical comma-separated names (``"nir, r,g"`` -> ``"NIR,R,G"``)."""
    from flairlc.data.bands import normalize_bands  # (imports PyTorch through flairlc.data)

    try:
        return ",".join(normalize_bands(bands))
    except (ValueError, TypeError, AttributeError) as error:
        raise MapOptionError("aerial_bands", bands, str(error)) from None
